"""Tests of hhlib.cnn_baselines: ResNet-18 at 32 px and 224 px, the full-resolution plain CNN, and their use as backbones."""

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from hhlib.cnn_baselines import FULL_RESOLUTION_WIDTHS, FullResolutionCNN, ResNet18Trunk
from hhlib.model import TRUNKS, build

TORCHVISION_RESNET18_PARAMETERS = 11_689_512  # torchvision's documented count, with the 1000-class fc
FC_PARAMETERS = 512 * 1000 + 1000


def _conv_bn_params(cin: int, cout: int, k: int = 3) -> int:
    return k * k * cin * cout + 2 * cout


def test_small_images_get_the_cifar_stem():
    trunk = ResNet18Trunk(in_chans=3, img_size=32)
    assert (trunk.conv1.kernel_size, trunk.conv1.stride) == ((3, 3), (1, 1))
    assert isinstance(trunk.maxpool, nn.Identity)
    assert trunk(torch.randn(2, 3, 32, 32)).shape == (2, 512, 4, 4)  # 32 -> 32, 16, 8, 4


def test_large_images_get_the_standard_stem():
    trunk = ResNet18Trunk(in_chans=3, img_size=224)
    assert (trunk.conv1.kernel_size, trunk.conv1.stride) == ((7, 7), (2, 2))
    assert isinstance(trunk.maxpool, nn.MaxPool2d)
    assert trunk(torch.randn(1, 3, 64, 64)).shape == (1, 512, 2, 2)  # /32


def test_parameter_counts_follow_torchvision():
    standard = sum(p.numel() for p in ResNet18Trunk(img_size=224).parameters())
    small = sum(p.numel() for p in ResNet18Trunk(img_size=32).parameters())
    assert standard == TORCHVISION_RESNET18_PARAMETERS - FC_PARAMETERS
    assert small == standard - 7 * 7 * 3 * 64 + 3 * 3 * 3 * 64


def test_standard_stem_trunk_is_torchvision_resnet18_without_its_head():
    torch.manual_seed(0)
    reference = resnet18(weights=None).eval()
    trunk = ResNet18Trunk(img_size=224).eval()
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    trunk.load_state_dict(state, strict=True)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference.avgpool(reference.layer4(reference.layer3(reference.layer2(reference.layer1(
            reference.maxpool(reference.relu(reference.bn1(reference.conv1(images)))))))))
        got = trunk(images).mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(got, expected)


def test_kaiming_init_has_the_fan_out_std():
    torch.manual_seed(0)
    conv = ResNet18Trunk(img_size=32).layer4[1].conv2  # 512 -> 512, 3x3: fan_out = 512 * 9
    assert conv.weight.std().item() == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.02)


def test_full_resolution_cnn_shapes_and_parameters():
    cnn = FullResolutionCNN(in_chans=3)
    assert cnn(torch.randn(2, 3, 32, 32)).shape == (2, 256, 4, 4)
    widths = (3, *FULL_RESOLUTION_WIDTHS)
    expected = sum(_conv_bn_params(a, b) for a, b in zip(widths, widths[1:]))
    assert sum(p.numel() for p in cnn.parameters()) == expected == 388_896
    assert cnn.feature_dim == FullResolutionCNN.feature_dim == 256


def test_full_resolution_cnn_rejects_empty_widths():
    with pytest.raises(ValueError, match="non-empty tuple of positive"):
        FullResolutionCNN(widths=())


@pytest.mark.parametrize("backbone", sorted(TRUNKS))
def test_trunk_backbones_train_through_the_hash_head(backbone):
    torch.manual_seed(0)
    model = build("small32", bits=16, backbone=backbone)
    images = torch.randn(2, 3, 32, 32)
    outputs = model(images)
    outputs.sum().backward()
    assert outputs.shape == (2, 16) and outputs.abs().max() < 1
    assert model.features(images).shape == (2, model.config.feature_dim)
    assert model.hash_layer.local is False and model.hash_layer.global_ is False  # the plain head, as NesT's
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_reset_parameters_keeps_the_trunks_own_init():
    torch.manual_seed(0)
    model = build("small32", bits=16, backbone="resnet18")
    model.reset_parameters()
    std = model.trunk.layer4[1].conv2.weight.std().item()
    assert std == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.02)  # not NesT's 0.02


def test_backbone_weights_only_for_efficientnet():
    with pytest.raises(ValueError, match="applies to backbone='efficientnet_lite0' only"):
        build("small32", bits=16, backbone="resnet18", backbone_weights="imagenet")
    with pytest.raises(KeyError, match="unknown backbone_weights 'jft'"):
        build("small32", bits=16, backbone="efficientnet_lite0", backbone_weights="jft")


@pytest.mark.parametrize("backbone", sorted(TRUNKS))
def test_trunk_checkpoints_round_trip(backbone):
    from hhlib.model import load_checkpoint

    torch.manual_seed(0)
    trained, fresh = build("small32", bits=16, backbone=backbone).eval(), build("small32", bits=16, backbone=backbone).eval()
    load_checkpoint(fresh, trained.state_dict())
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh(images), trained(images))
