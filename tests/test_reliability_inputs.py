"""Network and loss inputs validated up front (issue 15, item 9): messages name the valid range."""

from __future__ import annotations

import pytest
import torch

from hhlib import losses
from hhlib.losses import LOSSES
from hhlib.model import HybridHashConfig, build


@pytest.mark.parametrize("overrides, says", [
    ({"drop_path_rate": 1.0}, r"drop_path_rate must be in \[0, 1\)"),
    ({"drop_path_rate": 1.5}, r"drop_path_rate must be in \[0, 1\)"),
    ({"drop_rate": -0.1}, r"drop_rate must be in \[0, 1\)"),
    ({"attn_drop_rate": 1.0}, r"attn_drop_rate must be in \[0, 1\)"),
    ({"block_token_kernel": 0, "backbone": "nest"}, "block_token_kernel must be None .* or an int >= 1"),
    ({"block_token_kernel": 0, "variant": "local_only"}, "block_token_kernel must be None .* or an int >= 1"),
    ({"block_token_kernel": 0}, "block_token_kernel must be None .* or an int >= 1"),
    ({"patch_size": 0}, "patch_size must be an int >= 1, got 0: the paper uses 4"),
    ({"img_size": 0}, "img_size must be an int >= 1, got 0: the paper uses 224"),
])
def test_config_values_out_of_range(overrides, says):
    with pytest.raises(ValueError, match=says):
        HybridHashConfig(**{"img_size": 32, **overrides})


def test_valid_edges_still_build():
    HybridHashConfig(img_size=32, drop_path_rate=0.0, drop_rate=0.99, block_token_kernel=1)


def test_non_square_input_is_told_to_resize_not_to_change_img_size():
    model = build("tiny32", bits=16).eval()
    with pytest.raises(ValueError, match=r"images are 32x48 px, not square: .*resize or crop them to 32x32") as info:
        model(torch.zeros(1, 3, 32, 48))
    assert "img_size=48" not in str(info.value)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_refuses_an_empty_batch(name):
    loss = losses.build(name, 16, 4, 10)
    with pytest.raises(ValueError, match="the batch is empty .*skip empty batches"):
        loss(torch.zeros(0, 16), torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))


@pytest.mark.parametrize("name, params, says", [
    ("dpsh", {"inner_product_scale": 0.0}, "inner_product_scale=0.0 must be > 0"),
    ("dpsh", {"inner_product_scale": -0.5}, "inner_product_scale=-0.5 must be > 0"),
    ("dpsh", {"output_gain": 0.0}, "output_gain=0.0 must be > 0"),
    ("hashnet", {"sigmoid_scale": 0.0}, "sigmoid_scale=0.0 must be > 0 or None"),
    ("hashnet", {"continuation_gamma": -0.1}, "continuation_gamma=-0.1 and continuation_power=0.5 must be >= 0"),
    ("hashnet", {"continuation_power": -1.0}, "continuation_power=-1.0 must be >= 0"),
    ("wml", {"continuation_gamma": -0.1}, "continuation_gamma=-0.1"),
])
def test_documented_loss_parameters_are_validated(name, params, says):
    with pytest.raises(ValueError, match=says):
        losses.build(name, 16, 4, 10, **params)
