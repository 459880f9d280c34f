"""Tests of hhlib.complexity: parameter and FLOP counts against hand computation."""

import pytest
import torch
from torch import nn

from hhlib.complexity import model_complexity
from hhlib.model import build


def test_linear_layer_counts():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    result = model_complexity(model, input_shape=(1, 3, 2, 2))
    assert result.parameters == result.trainable == 12 * 5 + 5
    assert result.flops == 2 * 12 * 5 and result.macs == 60


def test_convolution_counts_and_frozen_parameters():
    model = nn.Conv2d(3, 4, 3, padding=1)
    model.bias.requires_grad_(False)
    result = model_complexity(model, input_shape=(1, 3, 8, 8))
    assert result.flops == 2 * (3 * 9) * 4 * 64
    assert (result.parameters, result.trainable) == (3 * 9 * 4 + 4, 3 * 9 * 4)


def test_full_resolution_cnn_model_by_hand():
    model = build("small32", bits=64, backbone="cnn_full")
    model.train()
    result = model_complexity(model)  # the input size comes from model.config
    convs = [(3, 32, 32), (32, 64, 16), (64, 128, 8), (128, 256, 4)]  # (in, out, map edge)
    trunk = sum(2 * 9 * cin * cout * edge * edge for cin, cout, edge in convs)
    head = 2 * 256 * 64 * 2 * 2  # 1x1 conv to 64 bits after the 3x3/2 max-pool (4x4 -> 2x2)
    assert result.flops == trunk + head == 30_212_096
    assert result.input_shape == (1, 3, 32, 32)
    assert model.training  # mode restored
    assert result.to_dict()["macs"] == result.flops // 2


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="pass input_shape"):
        model_complexity(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"must be \(1, C, H, W\)"):
        model_complexity(nn.Linear(2, 2), input_shape=(2, 2))
