"""The aggregation max-pool's padding choice and the NesT initialisation (hhlib.layers, hhlib.model).

Padding: the windows of both choices are written out by hand on a 4x4 map; SAME pads with -inf
(never wins a max) and matches timm's MaxPool2dSame on odd and even edges. Initialisation: the
truncated normal resamples (no mass piled on the bounds, the truncated law's std) and
``reset_parameters`` restores every tensor, the block-token position embeddings included. Older
checkpoints that still carry the dead ``reference_fc`` load, reporting it as dropped.
"""

from __future__ import annotations

import math

import pytest
import torch

from hhlib.layers import POOL_PADDINGS, BlockTokenAttention, SameMaxPool2d, downsampling_max_pool
from hhlib.model import HybridHashConfig, _trunc_normal_, build

pytestmark = pytest.mark.usefixtures("seed_single_thread")


def test_windows_of_both_paddings_on_a_4x4_map():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # SAME on edge 4: total padding 1, all at the end: windows cover rows/cols {0,1,2} and {2,3}
    assert downsampling_max_pool("same")(x).flatten().tolist() == [10.0, 11.0, 14.0, 15.0]
    # symmetric padding 1: windows cover {-1,0,1} and {1,2,3}
    assert downsampling_max_pool("symmetric")(x).flatten().tolist() == [5.0, 7.0, 13.0, 15.0]


def test_same_padding_never_wins_the_max():
    x = -1.0 - torch.rand(2, 3, 6, 6)
    out = SameMaxPool2d(3, 2)(x)
    assert out.shape == (2, 3, 3, 3) and (out < -1.0).all()


@pytest.mark.parametrize("edge", [5, 7, 8, 14, 56])
def test_same_padding_matches_timm(edge):
    timm_pool = pytest.importorskip("timm.layers").create_pool2d("max", kernel_size=3, stride=2, padding="same")
    x = torch.randn(2, 4, edge, edge)
    out = SameMaxPool2d(3, 2)(x)
    assert out.shape[-1] == math.ceil(edge / 2)
    assert torch.equal(out, timm_pool(x))


def test_padding_choice_follows_the_backbone_and_is_validated():
    assert HybridHashConfig().aggregation_padding == "symmetric"
    assert HybridHashConfig(backbone="nest").aggregation_padding == "same"
    assert HybridHashConfig(pool_padding="same").aggregation_padding == "same"
    assert isinstance(build("tiny32", backbone="nest").levels[1].pool.pool, SameMaxPool2d)
    assert isinstance(build("tiny32").levels[1].pool.pool, torch.nn.MaxPool2d)
    with pytest.raises(KeyError, match="valid names are"):
        HybridHashConfig(pool_padding="valid")
    with pytest.raises(KeyError, match=str(sorted(POOL_PADDINGS))[1:-1]):
        downsampling_max_pool("reflect")


def test_trunc_normal_resamples_instead_of_clamping():
    tensor = torch.empty(20000)
    _trunc_normal_(tensor, std=1.0, bound=1.0)
    assert tensor.abs().max() < 1.0  # clamping would put about 32% of the values on +-1
    # std of N(0, 1) truncated to [-1, 1]: sqrt(1 - 2 phi(1) / (2 Phi(1) - 1)) = 0.5396
    phi = math.exp(-0.5) / math.sqrt(2 * math.pi)
    expected = math.sqrt(1 - 2 * phi / math.erf(1 / math.sqrt(2)))
    assert tensor.std().item() == pytest.approx(expected, abs=0.01)
    assert tensor.mean().item() == pytest.approx(0.0, abs=0.02)


def test_reset_parameters_restores_every_tensor():
    model = build("tiny32", bits=16)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for param in model.parameters():
            param.add_(1.0)
    model.reset_parameters()
    block_tokens = [m.pos_embed for m in model.modules() if isinstance(m, BlockTokenAttention)]
    assert block_tokens and all(torch.equal(p, torch.zeros_like(p)) for p in block_tokens)
    for key, value in model.state_dict().items():
        # constants come back exactly; random tensors are redrawn from NesT's init (std 0.02)
        if torch.equal(fresh[key], fresh[key].flatten()[0].expand_as(fresh[key])):
            assert torch.equal(value, fresh[key]), key
        else:
            assert value.abs().max() < 0.2 and value.std() == pytest.approx(0.02, rel=0.5), key


def test_older_checkpoint_with_the_dead_reference_fc_still_loads():
    from hhlib.model import load_checkpoint

    model = build("tiny32", bits=16, token_layout="reference")
    old = {**model.state_dict(), "reference_fc.weight": torch.zeros(16, 32), "reference_fc.bias": torch.zeros(16)}
    report = load_checkpoint(build("tiny32", bits=16, token_layout="reference"), {"model": old})
    assert sorted(report.dropped) == ["reference_fc.bias", "reference_fc.weight"]
    assert sorted(report.loaded) == sorted(model.state_dict())
