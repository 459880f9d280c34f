"""Tests for hhlib.layers: block layout, attention against explicit softmax and timm's NesT, branch ablations, heads."""

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from timm.models import nest as timm_nest

from hhlib.layers import (
    BlockTokenAttention,
    ConvBackbone,
    DivideEncodeHead,
    DropPath,
    HashLayer,
    InteractionModule,
    LocalAttention,
    TransformerLayer,
    blockify,
    deblockify,
)


pytestmark = pytest.mark.usefixtures("seed_single_thread")


def explicit_attention(q, k, v):
    """softmax(q k^T / sqrt(d)) v written out, the form the official code uses."""
    attn = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    return attn.softmax(dim=-1) @ v


def official_block_token_attention(x, module):
    """Transcription of the official Interactive_Attention.forward (qkv without bias), explicit softmax.

    x: (B, C, h, w) already pooled. Uses the raw reshape (B, C, h, w) -> (B, h*w, C).
    """
    batch, channels, height, width = x.shape
    heads = module.num_heads
    tokens = x.reshape(batch, height * width, channels) + module.pos_embed
    qkv = F.linear(tokens, module.qkv.weight).reshape(batch, height * width, 3, heads, channels // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    out = explicit_attention(q, k, v).permute(0, 2, 3, 1).reshape(batch, height, width, channels)
    return F.linear(out, module.proj.weight, module.proj.bias)  # (B, h, w, C)


def test_blockify_puts_each_square_block_in_row_major_order():
    x = torch.arange(16.0).reshape(1, 4, 4, 1)
    blocks = blockify(x, 2)
    assert blocks.shape == (1, 4, 4, 1)
    assert blocks[0, :, :, 0].tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    assert torch.equal(deblockify(blocks, 2), x)


def test_blockify_round_trip_on_channels_last_input():
    x = torch.randn(2, 5, 8, 8).to(memory_format=torch.channels_last).permute(0, 2, 3, 1)
    assert torch.equal(deblockify(blockify(x, 4), 4), x)


def test_local_attention_sdpa_equals_explicit_softmax_and_timm_nest():
    layer = LocalAttention(16, num_heads=4).eval()
    x = torch.randn(2, 4, 9, 16)
    batch, blocks, tokens, channels = x.shape
    qkv = layer.qkv(x).reshape(batch, blocks, tokens, 3, 4, 4).permute(3, 0, 4, 1, 2, 5)
    q, k, v = qkv.unbind(0)  # (B, H, T, N, C')
    expected = layer.proj(explicit_attention(q, k, v).permute(0, 2, 3, 4, 1).reshape(batch, blocks, tokens, channels))
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)

    reference = timm_nest.Attention(16, num_heads=4, qkv_bias=True).eval()
    reference.fused_attn = False
    reference.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), reference(x), rtol=1e-5, atol=1e-6)


def test_transformer_layer_matches_timm_nest_layer_with_the_same_weights():
    layer = TransformerLayer(16, 2).eval()
    reference = timm_nest.TransformerLayer(16, 2, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)).eval()
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(2, 4, 4, 16)
    torch.testing.assert_close(layer(x), reference(x), rtol=1e-5, atol=1e-5)


def test_local_only_interaction_is_timm_nest_conv_pool():
    module = InteractionModule(8, 16, kernel=2, num_tokens=4, num_heads=2, local=True, global_=False)
    reference = timm_nest.ConvPool(8, 16, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6))
    reference.load_state_dict(module.state_dict())
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(module(x), reference(x))


def test_reference_token_layout_matches_the_official_raw_reshape():
    module = BlockTokenAttention(8, num_heads=2, num_tokens=4, kernel=1, token_layout="reference")
    torch.nn.init.normal_(module.pos_embed)
    x = torch.randn(2, 8, 2, 2)
    expected = official_block_token_attention(x, module).permute(0, 3, 1, 2)
    torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-6)


def test_paper_token_layout_moves_channels_last_before_attention():
    paper = BlockTokenAttention(8, num_heads=2, num_tokens=4, kernel=1, token_layout="paper")
    torch.nn.init.normal_(paper.pos_embed)
    x = torch.randn(2, 8, 2, 2)
    # the official code fed a tensor whose raw reshape is the channels-last token matrix
    tokens_as_raw = x.flatten(2).transpose(1, 2).reshape(2, 8, 2, 2)
    expected = official_block_token_attention(tokens_as_raw, paper).permute(0, 3, 1, 2)
    torch.testing.assert_close(paper(x), expected, rtol=1e-5, atol=1e-6)
    reference = BlockTokenAttention(8, num_heads=2, num_tokens=4, kernel=1, token_layout="reference")
    reference.load_state_dict(paper.state_dict())
    assert not torch.allclose(paper(x), reference(x))


def test_token_layouts_agree_when_a_single_block_token_remains():
    paper = BlockTokenAttention(8, num_heads=2, num_tokens=1, kernel=4, token_layout="paper")
    reference = BlockTokenAttention(8, num_heads=2, num_tokens=1, kernel=4, token_layout="reference")
    reference.load_state_dict(paper.state_dict())
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(paper(x), reference(x))


def test_block_token_attention_pools_attends_and_upsamples():
    module = BlockTokenAttention(8, num_heads=2, num_tokens=4, kernel=2)
    x = torch.randn(2, 8, 4, 4)
    pooled = F.avg_pool2d(x, 2)
    expected = F.interpolate(module.attend(pooled), scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(module(x), expected)
    assert module(x).shape == x.shape


@pytest.mark.parametrize("kernel", [1, 2])
def test_block_token_attention_projects_after_the_pool_as_before_it(kernel):
    attention = BlockTokenAttention(16, 2, num_tokens=16 // kernel**2, kernel=kernel)
    project = torch.nn.Conv2d(8, 16, 1, bias=False)
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(attention(x, project=project), attention(project(x)), rtol=1e-5, atol=1e-6)


def test_block_token_attention_rejects_unknown_layout():
    with pytest.raises(KeyError, match="valid names are \\['paper', 'reference'\\]"):
        BlockTokenAttention(8, 2, 4, 2, token_layout="channels")


@pytest.mark.parametrize("local,global_", [(True, True), (True, False), (False, True), (False, False)])
def test_interaction_module_halves_the_map_for_every_branch_choice(local, global_):
    module = InteractionModule(8, 16, kernel=2, num_tokens=4, num_heads=2, local=local, global_=global_)
    assert module(torch.randn(2, 8, 4, 4)).shape == (2, 16, 2, 2)
    if not local and not global_:
        assert module.conv.kernel_size == (1, 1)  # no-interaction ablation: 1x1 conv


def test_hybrid_interaction_is_the_sum_of_its_branches():
    module = InteractionModule(8, 16, kernel=2, num_tokens=4, num_heads=2)
    x = torch.randn(2, 8, 4, 4)
    mixed = module.conv(x) + module.global_attention(module.conv_global(x))
    expected = F.max_pool2d(F.layer_norm(mixed.permute(0, 2, 3, 1), (16,), module.norm.weight, module.norm.bias, 1e-6).permute(0, 3, 1, 2), 3, 2, 1)
    torch.testing.assert_close(module(x), expected)


def test_hash_layer_hybrid_and_plain_forms():
    layer = HashLayer(8, 6, kernel=4, num_tokens=1, num_heads=2)
    x = torch.randn(2, 8, 4, 4)
    mixed = layer.conv_col(layer.conv_row(x)) + layer.global_attention(x)
    torch.testing.assert_close(layer(x), layer.conv_hash(F.max_pool2d(mixed, 3, 2, 1)).mean(dim=(2, 3)))
    plain = HashLayer(8, 6, kernel=4, num_tokens=1, local=False, global_=False)
    assert not hasattr(plain, "conv_row") and not hasattr(plain, "global_attention")
    torch.testing.assert_close(plain(x), plain.conv_hash(F.max_pool2d(x, 3, 2, 1)).mean(dim=(2, 3)))


def test_divide_encode_sums_each_slice_of_weighted_features():
    head = DivideEncodeHead(7, 3)  # uneven slices: 3, 2, 2 features
    torch.nn.init.normal_(head.weight)
    torch.nn.init.normal_(head.bias)
    f = torch.randn(2, 7)
    w, b = head.weight, head.bias
    expected = torch.stack([(f[:, 0:3] * w[0:3]).sum(1), (f[:, 3:5] * w[3:5]).sum(1), (f[:, 5:7] * w[5:7]).sum(1)], 1) + b
    torch.testing.assert_close(head(f), expected)
    with pytest.raises(ValueError, match="bits=8 > feature dim 7"):
        DivideEncodeHead(7, 8)


def test_drop_path_is_identity_in_eval_and_keeps_the_expectation_in_training():
    drop = DropPath(0.5)
    x = torch.ones(4000, 3)
    assert torch.equal(drop.eval()(x), x)
    out = drop.train()(x)
    assert set(out.unique().tolist()) <= {0.0, 2.0}
    assert math.isclose(out.mean().item(), 1.0, abs_tol=0.1)


def test_cnn_backbone_accepts_sizes_off_the_block_grid():
    backbone = ConvBackbone(2, 3, (4, 8, 16), convs_per_level=1)
    assert backbone(torch.randn(2, 3, 30, 30)).shape == (2, 16, 4, 4)  # 15 -> 8 -> 4
