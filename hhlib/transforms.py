"""Train and eval image transforms (HybridHash docs/method.md §3).

Two kinds, in the ``TRANSFORMS`` registry:

- ``"direct"`` (CIFAR-10, Fashion-MNIST): the image is resized straight to ``img_size``
  (224 in the paper, 32 for a CPU run). It works on uint8 tensors, a whole batch at a time,
  so encoding a 64,000-image in-memory database is not bound by PIL. Grayscale becomes 3
  channels. Training augmentation (random crop with padding, horizontal flip) is optional and
  off by default: the reference code trains CIFAR-10 without it.
- ``"resize_crop"`` (NUS-WIDE, MS-COCO, ImageNet-100): PIL images, shorter side resized to 256,
  then a random 224 crop + horizontal flip for training, a centre 224 crop for evaluation.

Both end with ImageNet mean/std normalisation (the NesT backbone's pretraining statistics).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # docs/method.md §3: ImageNet mean/std normalisation
IMAGENET_STD = (0.229, 0.224, 0.225)


class TensorTransform:
    """Resize uint8 image tensors to ``img_size``, optionally augment, and normalise.

    Args:
        img_size: output side S (docs/method.md §3: 224).
        train: apply the training augmentation below.
        pad: training random crop: zero-pad by ``pad`` pixels then crop S x S at a random
            offset; 0 disables it (the paper's CIFAR-10 setting).
        flip: training random horizontal flip with probability 0.5 (off in the paper's CIFAR setting).
        mean: per-channel mean subtracted after scaling to [0, 1].
        std: per-channel std divided by.
        normalize: False returns [0, 1] values (for showing images).
    """

    def __init__(
        self,
        img_size: int = 224,
        *,
        train: bool = False,
        pad: int = 0,
        flip: bool = False,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        normalize: bool = True,
    ):
        if img_size < 1 or pad < 0:
            raise ValueError(f"img_size must be >= 1 and pad >= 0, got img_size={img_size}, pad={pad}")
        self.img_size = img_size
        self.train = train
        self.pad = pad
        self.flip = flip
        self.normalize = normalize
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        # uint8 v -> (v / 255 - mean) / std as one multiply-add; broadcasting also turns grayscale into 3 channels
        self.scale = 1.0 / (255.0 * std_t) if normalize else torch.full((1, 3, 1, 1), 1.0 / 255.0)
        self.shift = -mean_t / std_t if normalize else torch.zeros(1, 3, 1, 1)

    def __repr__(self) -> str:
        return (
            f"TensorTransform(img_size={self.img_size}, train={self.train}, pad={self.pad}, "
            f"flip={self.flip}, normalize={self.normalize})"
        )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Transform one image or a batch.

        Args:
            images: (C, H, W) or (B, C, H, W) uint8, C = 1 or 3.

        Returns:
            (3, S, S) or (B, 3, S, S) float32, normalised (or in [0, 1] with ``normalize=False``).
        """
        single = images.dim() == 3
        x = self.finish(self.resize(images.unsqueeze(0) if single else images))
        return x[0] if single else x

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        """The deterministic first half: uint8 batch -> float batch at ``img_size``, raw [0, 255] values.

        Training loops over an in-memory split resize it once (hhlib.batches) and run only
        :meth:`finish` per step; the result is the same as calling the transform on each batch.

        Args:
            images: (B, C, H, W) uint8, C = 1 or 3.

        Returns:
            (B, C, S, S) float32 (C is kept: grayscale becomes 3 channels in :meth:`finish`).
        """
        x = images.float()
        if x.shape[-2:] != (self.img_size, self.img_size):
            downsampling = self.img_size < max(x.shape[-2:])
            x = F.interpolate(x, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False,
                              antialias=downsampling)
        return x

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """The random second half: augment (training) and normalise a resized batch.

        Args:
            x: (B, C, S, S) float from :meth:`resize`, on any device (the random draws stay on
                the CPU generator, so a batch on a GPU gets the same crops and flips as on the CPU).

        Returns:
            (B, 3, S, S) float32.
        """
        if self.train:
            x = self._augment(x)  # on raw [0, 255] values, so zero padding is black
        return torch.addcmul(self.shift.to(x.device), x, self.scale.to(x.device))

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            offsets = torch.randint(0, 2 * self.pad + 1, (len(x), 2))
            x = _crop_each(F.pad(x, (self.pad,) * 4), offsets.to(x.device), self.img_size)
        if self.flip:
            mirrored = (torch.rand(len(x)) < 0.5).to(x.device)
            x = torch.where(mirrored.view(-1, 1, 1, 1), x.flip(-1), x)
        return x


def _crop_each(padded: torch.Tensor, offsets: torch.Tensor, size: int) -> torch.Tensor:
    """Crop ``size x size`` from each image at its own (row, column) offset, as one gather.

    Args:
        padded: (B, C, H, W) float.
        offsets: (B, 2) long top-left corners.
        size: crop side.

    Returns:
        (B, C, size, size) float: ``padded[i, :, r:r+size, c:c+size]`` for each i.
    """
    steps = torch.arange(size, device=padded.device)
    rows = (offsets[:, 0, None] + steps).view(-1, 1, size, 1)
    cols = (offsets[:, 1, None] + steps).view(-1, 1, 1, size)
    batch = torch.arange(len(padded), device=padded.device).view(-1, 1, 1, 1)
    channels = torch.arange(padded.shape[1], device=padded.device).view(1, -1, 1, 1)
    return padded[batch, channels, rows, cols]


def resize_crop_transform(
    train: bool,
    img_size: int = 224,
    *,
    resize_size: int | None = None,
    random_crop: str = "crop",
    flip: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Callable:
    """Build the PIL transform of the large-image sets (docs/method.md §3).

    Args:
        train: training (random crop + flip) or evaluation (centre crop).
        img_size: crop side (docs/method.md §3: 224).
        resize_size: shorter side before cropping; None = ``round(img_size * 256 / 224)`` (256 at 224).
        random_crop: ``"crop"`` (RandomCrop, as the reference code) or ``"resized_crop"`` (RandomResizedCrop).
        flip: training horizontal flip (docs/method.md §3: on).
        mean: normalisation mean.
        std: normalisation std.

    Returns:
        A callable: RGB PIL image -> (3, img_size, img_size) float32 tensor.

    Raises:
        ValueError: unknown ``random_crop``.
    """
    resize_size = round(img_size * 256 / 224) if resize_size is None else resize_size  # docs/method.md §3: 256 -> 224
    steps: list[Callable] = [T.Resize(resize_size)]
    if train:
        if random_crop == "crop":
            steps.append(T.RandomCrop(img_size))
        elif random_crop == "resized_crop":
            steps.append(T.RandomResizedCrop(img_size))
        else:
            raise ValueError(f"random_crop must be 'crop' or 'resized_crop', got {random_crop!r}")
        if flip:
            steps.append(T.RandomHorizontalFlip())
    else:
        steps.append(T.CenterCrop(img_size))
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(steps)


def direct_transform(
    train: bool,
    img_size: int = 224,
    *,
    pad: int = 0,
    flip: bool = False,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> TensorTransform:
    """Build the tensor transform of the small in-memory sets (docs/method.md §3: CIFAR-10 resized to 224).

    Args:
        train: apply the (optional) training augmentation.
        img_size: output side (224 in the paper; 32 for CPU runs).
        pad: training random-crop padding in pixels (0 = off, the paper's setting).
        flip: training horizontal flip (off, the paper's setting).
        mean: normalisation mean.
        std: normalisation std.

    Returns:
        A :class:`TensorTransform`.
    """
    return TensorTransform(img_size, train=train, pad=pad, flip=flip, mean=mean, std=std)


TRANSFORMS: dict[str, Callable] = {"direct": direct_transform, "resize_crop": resize_crop_transform}


def build_transform(kind: str, train: bool, img_size: int | None = None, **options) -> Callable:
    """Build a train or eval transform of a registered kind.

    Args:
        kind: a ``TRANSFORMS`` name (``"direct"`` or ``"resize_crop"``).
        train: training or evaluation transform.
        img_size: output side; None = 224 (docs/method.md §3).
        **options: the kind's keyword options (``pad``, ``flip``, ``resize_size``, ``random_crop``, ``mean``, ``std``).

    Returns:
        The transform.

    Raises:
        KeyError: unknown kind (lists the valid names).
    """
    if kind not in TRANSFORMS:
        raise KeyError(f"unknown transform kind {kind!r}: valid names are {', '.join(TRANSFORMS)}")
    return TRANSFORMS[kind](train, 224 if img_size is None else img_size, **options)


def denormalize(
    images: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """Undo the normalisation, for showing images.

    Args:
        images: (3, S, S) or (B, 3, S, S) float normalised images.
        mean: the mean used.
        std: the std used.

    Returns:
        Same shape, float in [0, 1].
    """
    shape = (3, 1, 1) if images.dim() == 3 else (1, 3, 1, 1)
    mean_t = torch.tensor(mean, dtype=images.dtype).view(shape)
    std_t = torch.tensor(std, dtype=images.dtype).view(shape)
    return (images * std_t + mean_t).clamp(0.0, 1.0)
