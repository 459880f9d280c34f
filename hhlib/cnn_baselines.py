"""Standard convolutional trunks for the backbone comparison: ResNet-18 and a plain full-resolution CNN.

HybridHash (ICMR 2024, arXiv 2405.07524, Sec. 4) compares its network against a CNN backbone. A
baseline a reviewer accepts is a standard architecture at the resolution it was designed for,
so hhlib offers two trunks next to its patch-4 ``cnn`` backbone:

- :class:`ResNet18Trunk`: torchvision's ResNet-18 (He et al., CVPR 2016) without its classifier.
  At small images (below :data:`SMALL_IMAGE_EDGE` px) the stem is the CIFAR adaptation of He et
  al. Sec. 4.2: a 3x3 stride-1 convolution and no max-pool, so a 32 px image keeps its full
  resolution into ``layer1`` (32, 16, 8, 4 px maps). At 224 px it is the standard 7x7/2 stem with
  the 3x3/2 max-pool.
- :class:`FullResolutionCNN`: four conv-BN-ReLU layers (32-64-128-256 channels) with a 2x2
  max-pool after each of the first three, the plain CNN that reached mAP@all 0.825 at 64 bits on
  Fashion-MNIST with the 48-epoch recipe of docs/training.md when hhlib's backbone comparison was
  reviewed (ours, not from a paper).

Each trunk maps ``(B, in_chans, S, S)`` images to a ``(B, feature_dim, h, h)`` map that
:class:`hhlib.model.HybridHash` passes to its plain hash head, and owns its initialisation
(``reset_parameters``), so the standard architectures keep their standard init.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet18

__all__ = ["FULL_RESOLUTION_WIDTHS", "SMALL_IMAGE_EDGE", "FullResolutionCNN", "ResNet18Trunk"]

# Below this image edge ResNet-18 gets the CIFAR stem (He et al. 2016, Sec. 4.2 use it at 32 px);
# 64 is ours: the standard stem's /4 would leave a 64 px image a 2x2 map after layer4.
SMALL_IMAGE_EDGE = 64

# Channels of the plain full-resolution CNN (ours: the 4-layer CNN that reached 0.825 at 64 bits in the backbone review).
FULL_RESOLUTION_WIDTHS = (32, 64, 128, 256)


def _kaiming_init(module: nn.Module) -> None:
    """torchvision's ResNet init: Kaiming-normal (fan_out, ReLU) convs, unit/zero BatchNorm."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ResNet18Trunk(nn.Module):
    """torchvision ResNet-18 up to ``layer4`` (no global pool, no classifier).

    Args:
        in_chans: input channels (3 for RGB or grey broadcast to RGB).
        img_size: input edge in pixels; below :data:`SMALL_IMAGE_EDGE` the stem is 3x3 stride 1
            without max-pool (map edge img_size / 8), else the standard 7x7/2 + max-pool (/32).

    Raises:
        ValueError: in_chans or img_size is not positive.
    """

    feature_dim = 512  # channels of ResNet-18's layer4

    def __init__(self, in_chans: int = 3, img_size: int = 32) -> None:
        super().__init__()
        if in_chans < 1 or img_size < 1:
            raise ValueError(f"in_chans={in_chans} and img_size={img_size} must be positive: e.g. in_chans=3, img_size=32")
        net = resnet18(weights=None)
        self.small_stem = img_size < SMALL_IMAGE_EDGE
        if self.small_stem:
            self.conv1 = nn.Conv2d(in_chans, 64, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
            self.maxpool = net.maxpool
        self.bn1, self.relu = net.bn1, net.relu
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every tensor as torchvision initialises ResNet-18."""
        _kaiming_init(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, S, S) float -> (B, 512, S/8 or S/32, ...) float."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class FullResolutionCNN(nn.Module):
    """Plain CNN at full input resolution: per width, 3x3 conv-BN-ReLU; 2x2 max-pool between widths.

    Args:
        in_chans: input channels.
        img_size: input edge in pixels (kept for the common trunk signature; any size works).
        widths: channels of the conv layers (ours: 32-64-128-256, the backbone review's plain CNN, 0.39M
            parameters in the trunk).

    Raises:
        ValueError: no widths, or a width that is not positive.
    """

    feature_dim = FULL_RESOLUTION_WIDTHS[-1]  # with the default widths; an instance holds its own

    def __init__(self, in_chans: int = 3, img_size: int = 32, widths: tuple[int, ...] = FULL_RESOLUTION_WIDTHS) -> None:
        super().__init__()
        if not widths or min(widths) < 1:
            raise ValueError(f"widths {widths} must be a non-empty tuple of positive channel counts, e.g. (32, 64, 128, 256)")
        self.feature_dim = widths[-1]
        layers: list[nn.Module] = []
        prev = in_chans
        for i, width in enumerate(widths):
            if i:
                layers.append(nn.MaxPool2d(2))
            layers += [nn.Conv2d(prev, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            prev = width
        self.layers = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal convs and unit/zero BatchNorm, as for ResNet-18 (same init for both CNN rows)."""
        _kaiming_init(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, S, S) float -> (B, widths[-1], S / 2**(len(widths)-1), ...) float."""
        return self.layers(images)
