"""Hashing with multiple representations of each image (Kang, Kim, Choi, ICDM 2012).

"Deep Learning to Hash with Multiple Representations" (deep multi-view hashing, DMVH) describes
each object by several representations (views) and builds a deep network whose hidden layers hold
*view-specific* nodes (each sees one view) and *shared* nodes (they see all views); the top layer
is the code layer. The abstract states this architecture; the paper's pretraining (multi-view
RBMs) and the exact fine-tuning objective could not be checked offline, so hhlib trains the network
end to end with a pairwise similarity-preserving loss (docs/model.md, "Multiple representations").

The representations are computed in batch from the image tensors, deterministically:

- ``pixels``: the grey image, S*S values in [0, 1];
- ``gradients``: HOG-like gradient-orientation histograms: central-difference gradients,
  unsigned orientation in [0, pi) hard-binned into ``orientation_bins`` bins weighted by the
  gradient magnitude, summed over cells of ``cell_size`` pixels, each cell's histogram L2-normalised
  (Dalal & Triggs, CVPR 2005 use 9 bins and 8-pixel cells at 64x128 px; at 32 px hhlib uses 4-pixel
  cells, 8x8 of them);
- ``fourier``: log(1 + |FFT|) of the grey image, the centred ``fourier_size`` x ``fourier_size``
  block of lowest frequencies.

:class:`MultiRepresentationTrunk` is a backbone of :class:`hhlib.model.HybridHash`
(``backbone="multirep"``): it returns the concatenated hidden nodes as a (B, D, 1, 1) map, and the
plain hash head's 1x1 convolution is then the fused code layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "REPRESENTATIONS",
    "MultiRepresentationTrunk",
    "fourier_magnitude",
    "gradient_histograms",
    "grey_pixels",
]

_HHLIB_INPUT_MEAN = (0.485, 0.456, 0.406)  # hhlib.transforms normalises with ImageNet mean/std
_HHLIB_INPUT_STD = (0.229, 0.224, 0.225)
_NORM_EPS = 1e-6  # keeps an empty cell's histogram at zero instead of 0/0


def grey_pixels(images: torch.Tensor) -> torch.Tensor:
    """Grey image: the mean of the three un-normalised channels.

    Args:
        images: (B, 3, S, S) float, hhlib-normalised (ImageNet mean/std).

    Returns:
        (B, 1, S, S) float in [0, 1].
    """
    mean = images.new_tensor(_HHLIB_INPUT_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(_HHLIB_INPUT_STD).view(1, 3, 1, 1)
    return (images * std + mean).clamp(0.0, 1.0).mean(dim=1, keepdim=True)


def gradient_histograms(grey: torch.Tensor, cell_size: int, orientation_bins: int = 9) -> torch.Tensor:
    """HOG-like histograms of gradient orientation per cell, each L2-normalised.

    Gradients are central differences ``[-1, 0, 1]`` with zero padding; the orientation
    ``atan2(gy, gx)`` is folded into [0, pi) and bin ``floor(angle / (pi / bins))`` receives the
    gradient magnitude.

    Args:
        grey: (B, 1, S, S) float.
        cell_size: cell edge in pixels; must divide S.
        orientation_bins: histogram bins over [0, pi) (Dalal & Triggs: 9).

    Returns:
        (B, orientation_bins, S / cell_size, S / cell_size) float, unit L2 norm over the bins of
        each cell (zero where the cell has no gradient).

    Raises:
        ValueError: cell_size does not divide the image edge, or a size is not positive.
    """
    size = grey.shape[-1]
    if cell_size < 1 or orientation_bins < 1 or size % cell_size:
        raise ValueError(f"cell_size {cell_size} must divide the image edge {size} (and bins {orientation_bins} be positive): e.g. cell_size={size // 8 or 1}")
    gx = F.pad(grey, (1, 1, 0, 0))[..., :, 2:] - F.pad(grey, (1, 1, 0, 0))[..., :, :-2]
    gy = F.pad(grey, (0, 0, 1, 1))[..., 2:, :] - F.pad(grey, (0, 0, 1, 1))[..., :-2, :]
    magnitude = torch.sqrt(gx**2 + gy**2)
    angle = torch.remainder(torch.atan2(gy, gx), math.pi)
    bins = torch.clamp((angle / (math.pi / orientation_bins)).long(), max=orientation_bins - 1)
    votes = F.one_hot(bins[:, 0], orientation_bins).permute(0, 3, 1, 2).to(grey.dtype) * magnitude
    cells = F.avg_pool2d(votes, cell_size) * cell_size**2  # sum per cell
    return cells / (cells.norm(dim=1, keepdim=True) + _NORM_EPS)


def fourier_magnitude(grey: torch.Tensor, keep: int) -> torch.Tensor:
    """log(1 + |FFT2|) of the grey image, centred, cropped to the ``keep`` x ``keep`` lowest frequencies.

    Args:
        grey: (B, 1, S, S) float.
        keep: edge of the kept block, 1 <= keep <= S (the zero frequency sits at index keep // 2).

    Returns:
        (B, 1, keep, keep) float >= 0.

    Raises:
        ValueError: keep outside [1, S].
    """
    size = grey.shape[-1]
    if not 1 <= keep <= size:
        raise ValueError(f"fourier keep={keep} must lie in [1, {size}] (the image edge): e.g. keep={size // 2}")
    spectrum = torch.fft.fftshift(torch.fft.fft2(grey.float()), dim=(-2, -1)).abs()
    start = size // 2 - keep // 2
    return torch.log1p(spectrum[..., start : start + keep, start : start + keep]).to(grey.dtype)


REPRESENTATIONS = ("pixels", "gradients", "fourier")


class MultiRepresentationTrunk(nn.Module):
    """View-specific and shared hidden nodes over several representations of each image.

    For each view v: x_v (flattened representation) -> BatchNorm -> h_v = ReLU(W_v x_v).
    Shared nodes: s = ReLU(sum_v U_v x_v). The output is [h_1, ..., h_V, s] as a (B, D, 1, 1) map.

    Args:
        in_chans: input channels (3: hhlib's normalised RGB).
        img_size: input edge S in pixels.
        views: representation names, a subset of :data:`REPRESENTATIONS`.
        hidden: view-specific nodes per view (ours: 256, the width of hhlib's other 32 px trunks).
        shared: shared nodes (ours: 256).
        cell_size: gradient cell edge; None = S // 8 (8x8 cells).
        orientation_bins: gradient histogram bins (Dalal & Triggs: 9).
        fourier_size: kept frequency block edge; None = S // 2.

    Raises:
        KeyError: an unknown view name.
        ValueError: no views, in_chans != 3, or sizes the representations cannot use.
    """

    feature_dim = 256 * len(REPRESENTATIONS) + 256  # with the defaults; an instance holds its own

    def __init__(
        self,
        in_chans: int = 3,
        img_size: int = 32,
        views: tuple[str, ...] = REPRESENTATIONS,
        hidden: int = 256,
        shared: int = 256,
        cell_size: int | None = None,
        orientation_bins: int = 9,
        fourier_size: int | None = None,
    ) -> None:
        super().__init__()
        unknown = [v for v in views if v not in REPRESENTATIONS]
        if unknown:
            raise KeyError(f"unknown representation(s) {unknown}: valid names are {list(REPRESENTATIONS)}")
        if not views or in_chans != 3:
            raise ValueError(f"need at least one view and 3 input channels, got views={views}, in_chans={in_chans}: use the defaults")
        self.views = tuple(views)
        self.cell_size = cell_size if cell_size is not None else max(img_size // 8, 1)
        self.orientation_bins = orientation_bins
        self.fourier_size = fourier_size if fourier_size is not None else max(img_size // 2, 1)
        dims = self.view_dims(img_size)
        self.norms = nn.ModuleDict({v: nn.BatchNorm1d(dims[v]) for v in self.views})
        self.view_layers = nn.ModuleDict({v: nn.Linear(dims[v], hidden) for v in self.views})
        self.shared_layers = nn.ModuleDict({v: nn.Linear(dims[v], shared, bias=False) for v in self.views})
        self.shared_bias = nn.Parameter(torch.zeros(shared))
        self.feature_dim = hidden * len(self.views) + shared
        self.reset_parameters()

    def view_dims(self, img_size: int) -> dict[str, int]:
        """Length of each flattened representation at ``img_size``.

        Raises:
            ValueError: the cell size does not divide the image, or the frequency block does not fit.
        """
        probe = torch.zeros(1, 1, img_size, img_size)
        return {v: self.representation(v, probe).shape[1] for v in self.views}

    def representation(self, view: str, grey: torch.Tensor) -> torch.Tensor:
        """One view of a batch of grey images, flattened: (B, 1, S, S) -> (B, dim)."""
        if view == "pixels":
            return grey.flatten(1)
        if view == "gradients":
            return gradient_histograms(grey, self.cell_size, self.orientation_bins).flatten(1)
        return fourier_magnitude(grey, self.fourier_size).flatten(1)

    def reset_parameters(self) -> None:
        """PyTorch's default Linear init, unit/zero BatchNorm, zero shared bias."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.BatchNorm1d)):
                module.reset_parameters()
        nn.init.zeros_(self.shared_bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float, hhlib-normalised -> (B, feature_dim, 1, 1) float."""
        grey = grey_pixels(images)
        inputs = {v: self.norms[v](self.representation(v, grey)) for v in self.views}
        specific = [F.relu(self.view_layers[v](inputs[v])) for v in self.views]
        shared = F.relu(sum(self.shared_layers[v](inputs[v]) for v in self.views) + self.shared_bias)
        return torch.cat([*specific, shared], dim=1)[:, :, None, None]
