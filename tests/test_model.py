"""Tests for hhlib.model: presets, variants, sizes, parameter count, official and own checkpoints, encode."""

import re
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hhlib.model import (
    BACKBONES,
    HEADS,
    PRESETS,
    TOKEN_LAYOUTS,
    VARIANTS,
    HybridHash,
    HybridHashConfig,
    build,
    load_checkpoint,
)
from hhlib.runtime import resolve_device

# docs/reference-state-dict.txt: the official model's state_dict, paper configuration,
# depths (2, 2, 15), 64 bits, 55,619,072 parameters. {j} runs over each level's layers.
# hhlib leaves out the unused FcLayer (512 x 64 + 64), so its count is 55,586,240.
REFERENCE_STATE_DICT = """
patch_embed.proj.weight	(128, 3, 4, 4)
patch_embed.proj.bias	(128,)
levels.0.pos_embed	(1, 16, 196, 128)
levels.0.transformer_encoder.{j}.norm1.weight	(128,)
levels.0.transformer_encoder.{j}.norm1.bias	(128,)
levels.0.transformer_encoder.{j}.attn.qkv.weight	(384, 128)
levels.0.transformer_encoder.{j}.attn.qkv.bias	(384,)
levels.0.transformer_encoder.{j}.attn.proj.weight	(128, 128)
levels.0.transformer_encoder.{j}.attn.proj.bias	(128,)
levels.0.transformer_encoder.{j}.norm2.weight	(128,)
levels.0.transformer_encoder.{j}.norm2.bias	(128,)
levels.0.transformer_encoder.{j}.mlp.fc1.weight	(512, 128)
levels.0.transformer_encoder.{j}.mlp.fc1.bias	(512,)
levels.0.transformer_encoder.{j}.mlp.fc2.weight	(128, 512)
levels.0.transformer_encoder.{j}.mlp.fc2.bias	(128,)
levels.1.pos_embed	(1, 4, 196, 256)
levels.1.pool.conv.weight	(256, 128, 3, 3)
levels.1.pool.conv.bias	(256,)
levels.1.pool.conv_glo.weight	(256, 128, 1, 1)
levels.1.pool.global_attention.pos_embed_glo	(1, 16, 256)
levels.1.pool.global_attention.qkv.weight	(768, 256)
levels.1.pool.global_attention.proj.weight	(256, 256)
levels.1.pool.global_attention.proj.bias	(256,)
levels.1.pool.norm.weight	(256,)
levels.1.pool.norm.bias	(256,)
levels.1.transformer_encoder.{j}.norm1.weight	(256,)
levels.1.transformer_encoder.{j}.norm1.bias	(256,)
levels.1.transformer_encoder.{j}.attn.qkv.weight	(768, 256)
levels.1.transformer_encoder.{j}.attn.qkv.bias	(768,)
levels.1.transformer_encoder.{j}.attn.proj.weight	(256, 256)
levels.1.transformer_encoder.{j}.attn.proj.bias	(256,)
levels.1.transformer_encoder.{j}.norm2.weight	(256,)
levels.1.transformer_encoder.{j}.norm2.bias	(256,)
levels.1.transformer_encoder.{j}.mlp.fc1.weight	(1024, 256)
levels.1.transformer_encoder.{j}.mlp.fc1.bias	(1024,)
levels.1.transformer_encoder.{j}.mlp.fc2.weight	(256, 1024)
levels.1.transformer_encoder.{j}.mlp.fc2.bias	(256,)
levels.2.pos_embed	(1, 1, 196, 512)
levels.2.pool.conv.weight	(512, 256, 3, 3)
levels.2.pool.conv.bias	(512,)
levels.2.pool.conv_glo.weight	(512, 256, 1, 1)
levels.2.pool.global_attention.pos_embed_glo	(1, 4, 512)
levels.2.pool.global_attention.qkv.weight	(1536, 512)
levels.2.pool.global_attention.proj.weight	(512, 512)
levels.2.pool.global_attention.proj.bias	(512,)
levels.2.pool.norm.weight	(512,)
levels.2.pool.norm.bias	(512,)
levels.2.transformer_encoder.{j}.norm1.weight	(512,)
levels.2.transformer_encoder.{j}.norm1.bias	(512,)
levels.2.transformer_encoder.{j}.attn.qkv.weight	(1536, 512)
levels.2.transformer_encoder.{j}.attn.qkv.bias	(1536,)
levels.2.transformer_encoder.{j}.attn.proj.weight	(512, 512)
levels.2.transformer_encoder.{j}.attn.proj.bias	(512,)
levels.2.transformer_encoder.{j}.norm2.weight	(512,)
levels.2.transformer_encoder.{j}.norm2.bias	(512,)
levels.2.transformer_encoder.{j}.mlp.fc1.weight	(2048, 512)
levels.2.transformer_encoder.{j}.mlp.fc1.bias	(2048,)
levels.2.transformer_encoder.{j}.mlp.fc2.weight	(512, 2048)
levels.2.transformer_encoder.{j}.mlp.fc2.bias	(512,)
norm.weight	(512,)
norm.bias	(512,)
hashlayer_train.convS1.weight	(512, 512, 1, 3)
hashlayer_train.convS1.bias	(512,)
hashlayer_train.convS2.weight	(512, 512, 3, 1)
hashlayer_train.convS2.bias	(512,)
hashlayer_train.global_attention.pos_embed_glo	(1, 1, 512)
hashlayer_train.global_attention.qkv.weight	(1536, 512)
hashlayer_train.global_attention.proj.weight	(512, 512)
hashlayer_train.global_attention.proj.bias	(512,)
hashlayer_train.conv2.weight	(64, 512, 1, 1)
hashlayer_train.conv2.bias	(64,)
FcLayer.weight	(64, 512)
FcLayer.bias	(64,)
"""
REFERENCE_DEPTHS = (2, 2, 15)
REFERENCE_PARAMETERS = 55_619_072
FC_LAYER_PARAMETERS = 512 * 64 + 64  # the official FcLayer, never used by its forward

# hhlib key -> official key, written independently of hhlib.pretrained.OFFICIAL_RENAMES
TO_OFFICIAL = (
    ("pool.conv_global.", "pool.conv_glo."),
    ("global_attention.pos_embed", "global_attention.pos_embed_glo"),
    ("hash_layer.conv_row.", "hashlayer_train.convS1."),
    ("hash_layer.conv_col.", "hashlayer_train.convS2."),
    ("hash_layer.conv_hash.", "hashlayer_train.conv2."),
    ("hash_layer.global_attention.", "hashlayer_train.global_attention."),
)


def reference_shapes() -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in REFERENCE_STATE_DICT.strip().splitlines():
        key, shape = line.split("\t")
        shape = tuple(int(d) for d in re.findall(r"\d+", shape))
        if "{j}" in key:
            level = int(key.split(".")[1])
            shapes.update({key.replace("{j}", str(j)): shape for j in range(REFERENCE_DEPTHS[level])})
        else:
            shapes[key] = shape
    return shapes


def to_official(sd: dict) -> dict:
    out = {}
    for key, value in sd.items():
        for ours, theirs in TO_OFFICIAL:
            key = key.replace(ours, theirs)
        out[key] = value
    return out


def _attention(x, sd, prefix, heads, bias=True):
    """Official NesT/Interactive attention: qkv -> (.., 3, H, C') -> explicit softmax -> concat as (C', H)."""
    *lead, tokens, channels = x.shape
    qkv = F.linear(x, sd[prefix + "qkv.weight"], sd[prefix + "qkv.bias"] if bias else None)
    qkv = qkv.reshape(*lead, tokens, 3, heads, channels // heads).movedim(-3, 0).movedim(-2, -3)
    q, k, v = qkv.unbind(0)  # (..., H, N, C')
    attn = ((q @ k.transpose(-2, -1)) * (channels // heads) ** -0.5).softmax(-1)
    out = (attn @ v).movedim(-3, -1).reshape(*lead, tokens, channels)
    return F.linear(out, sd[prefix + "proj.weight"], sd[prefix + "proj.bias"])


def _global_branch(x, sd, prefix, kernel, heads):
    """Official Interactive_Attention around avg-pool and upsample, raw (B,C,h,w)->(B,h*w,C) reshape."""
    pooled = F.avg_pool2d(x, kernel, kernel)
    batch, channels, height, width = pooled.shape
    tokens = pooled.reshape(batch, height * width, channels) + sd[prefix + "pos_embed_glo"]
    out = _attention(tokens, sd, prefix, heads, bias=False).reshape(batch, height, width, channels)
    return F.interpolate(out.permute(0, 3, 1, 2), scale_factor=kernel, mode="bilinear", align_corners=False)


def _channel_norm(x, sd, prefix):
    return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], sd[prefix + "weight"], sd[prefix + "bias"], 1e-6).permute(0, 3, 1, 2)


def official_forward(sd, images, cfg: HybridHashConfig):
    """The official HybridHash forward, transcribed from its source as plain functions over its state dict."""
    block, kernel = cfg.block_size, cfg.token_kernel
    x = F.conv2d(images, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=cfg.patch_size)
    for i in range(cfg.num_levels):
        p = f"levels.{i}."
        if i:
            glob = _global_branch(F.conv2d(x, sd[p + "pool.conv_glo.weight"]), sd, p + "pool.global_attention.", kernel, cfg.interaction_heads)
            x = F.conv2d(x, sd[p + "pool.conv.weight"], sd[p + "pool.conv.bias"], padding=1) + glob
            x = F.max_pool2d(_channel_norm(x, sd, p + "pool.norm."), 3, 2, 1)
        batch, channels, height, width = x.shape
        grid = height // block
        t = x.permute(0, 2, 3, 1).reshape(batch, grid, block, grid, block, channels).transpose(2, 3)
        t = t.reshape(batch, grid * grid, block * block, channels) + sd[p + "pos_embed"]
        for j in range(cfg.depths[i]):
            q = f"{p}transformer_encoder.{j}."
            t = t + _attention(F.layer_norm(t, (channels,), sd[q + "norm1.weight"], sd[q + "norm1.bias"], 1e-6), sd, q + "attn.", cfg.num_heads[i])
            h = F.layer_norm(t, (channels,), sd[q + "norm2.weight"], sd[q + "norm2.bias"], 1e-6)
            h = F.linear(F.gelu(F.linear(h, sd[q + "mlp.fc1.weight"], sd[q + "mlp.fc1.bias"])), sd[q + "mlp.fc2.weight"], sd[q + "mlp.fc2.bias"])
            t = t + h
        t = t.reshape(batch, grid, grid, block, block, channels).transpose(2, 3).reshape(batch, height, width, channels)
        x = t.permute(0, 3, 1, 2)
    x = _channel_norm(x, sd, "norm.")
    local = F.conv2d(x, sd["hashlayer_train.convS1.weight"], sd["hashlayer_train.convS1.bias"], padding=(0, 1))
    local = F.conv2d(local, sd["hashlayer_train.convS2.weight"], sd["hashlayer_train.convS2.bias"], padding=(1, 0))
    x = local + _global_branch(x, sd, "hashlayer_train.global_attention.", kernel, cfg.interaction_heads)
    x = F.conv2d(F.max_pool2d(x, 3, 2, 1), sd["hashlayer_train.conv2.weight"], sd["hashlayer_train.conv2.bias"])
    return torch.tanh(x.mean(dim=(2, 3)))


pytestmark = pytest.mark.usefixtures("seed_single_thread")


DEVICE = resolve_device("auto")  # TORCH_DEVICE=cuda runs the device-aware tests on a GPU


def images(cfg: HybridHashConfig, batch: int = 2, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.randn(batch, cfg.in_chans, cfg.img_size, cfg.img_size).to(device)


@pytest.mark.parametrize("preset", ["tiny32", "small32"])
def test_small_presets_give_bits_outputs_in_open_interval(preset):
    model = build(preset, bits=16).eval().to(DEVICE)
    x = images(model.config, device=DEVICE)
    out = model(x)
    assert out.shape == (2, 16) and out.dtype == torch.float32
    assert out.abs().max() < 1
    torch.testing.assert_close(out, torch.tanh(model(x, logits=True)))
    assert model.features(x).shape == (2, model.config.embed_dims[-1])


def test_paper_preset_structure_and_a_slim_224px_forward():
    with torch.device("meta"):  # structure only: no memory, no arithmetic
        model = build("paper", bits=48)
    slim = build("paper", bits=48, embed_dims=(16, 32, 64), num_heads=(1, 2, 4), depths=(1, 1, 1)).eval()
    assert slim(torch.randn(1, 3, 224, 224)).shape == (1, 48)  # 56x56 map, kernel-14 pooling as in the paper
    cfg = model.config
    assert (cfg.map_sizes, cfg.block_size, cfg.num_blocks) == ((56, 28, 14), 14, (16, 4, 1))
    assert [level.pos_embed.shape for level in model.levels] == [(1, 16, 196, 128), (1, 4, 196, 256), (1, 1, 196, 512)]
    assert [len(level.transformer_encoder) for level in model.levels] == [2, 2, 20]
    with torch.device("meta"):
        assert [len(level.transformer_encoder) for level in build("paper15").levels] == [2, 2, 15]


def test_presets_record_the_paper_numbers():
    paper = PRESETS["paper"]
    assert (paper.img_size, paper.patch_size, paper.embed_dims, paper.num_heads, paper.depths) == (224, 4, (128, 256, 512), (4, 8, 16), (2, 2, 20))
    assert (paper.drop_path_rate, paper.interaction_heads, paper.mlp_ratio, paper.norm_eps) == (0.5, 8, 4.0, 1e-6)
    assert PRESETS["paper15"] == replace(paper, depths=(2, 2, 15))
    assert PRESETS["paper"].token_kernel == 14


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("token_layout", sorted(TOKEN_LAYOUTS))
def test_every_variant_and_token_layout_forward(variant, token_layout):
    model = build("tiny32", bits=16, variant=variant, token_layout=token_layout).eval().to(DEVICE)
    out = model(images(model.config, device=DEVICE))
    assert out.shape == (2, 16) and out.abs().max() < 1


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
@pytest.mark.parametrize("head", sorted(HEADS))
def test_every_backbone_and_head_forward(backbone, head):
    model = build("tiny32", bits=16, backbone=backbone, head=head).eval().to(DEVICE)
    x = images(model.config, device=DEVICE)
    out = model(x)
    assert out.shape == (2, 16) and out.abs().max() < 1
    assert model.features(x).shape == (2, 32)


def test_cnn_backbone_builds_at_sizes_off_the_block_grid():
    model = build("tiny32", bits=16, backbone="cnn", img_size=30).eval()
    assert model.config.map_sizes == (7, 4, 2)
    assert model(torch.randn(2, 3, 30, 30)).shape == (2, 16)


def test_variants_keep_the_right_branches():
    hybrid = build("tiny32", bits=16)
    pool = hybrid.levels[1].pool
    assert pool.conv.kernel_size == (3, 3) and hasattr(pool, "global_attention")
    none = build("tiny32", bits=16, variant="no_interaction")
    assert none.levels[1].pool.conv.kernel_size == (1, 1) and not hasattr(none.levels[1].pool, "global_attention")
    assert not hasattr(none.hash_layer, "conv_row") and not hasattr(none.hash_layer, "global_attention")
    local = build("tiny32", bits=16, variant="local_only")
    assert not hasattr(local.levels[2].pool, "conv_global") and hasattr(local.hash_layer, "conv_row")
    glob = build("tiny32", bits=16, variant="global_only")
    assert not hasattr(glob.levels[2].pool, "conv") and not hasattr(glob.hash_layer, "conv_row")
    nest = build("tiny32", bits=16, backbone="nest")
    assert nest.levels[1].pool.conv.kernel_size == (3, 3) and not hasattr(nest.levels[1].pool, "global_attention")
    assert not hasattr(nest.hash_layer, "global_attention")


def test_half_block_token_kernel_gives_four_times_the_tokens():
    default = build("small32", bits=16, patch_size=2)  # 16x16 grid, block edge 4
    half = build("small32", bits=16, patch_size=2, block_token_kernel=2)
    tokens = lambda m: [m.levels[1].pool.global_attention.pos_embed.shape[1], m.levels[2].pool.global_attention.pos_embed.shape[1], m.hash_layer.global_attention.pos_embed.shape[1]]  # noqa: E731
    assert tokens(default) == [16, 4, 1]
    assert tokens(half) == [64, 16, 4]
    assert half.eval()(images(half.config)).shape == (2, 16)
    with torch.device("meta"):
        assert build("paper", block_token_kernel=7).hash_layer.global_attention.pos_embed.shape == (1, 4, 512)


def test_gradient_reaches_every_trainable_parameter():
    model = build("tiny32", bits=16, drop_path_rate=0.0).train().to(DEVICE)
    model(images(model.config, device=DEVICE)).pow(2).sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_gradient_reaches_every_parameter_of_each_variant(variant):
    model = build("tiny32", bits=16, variant=variant, token_layout="reference", drop_path_rate=0.0)
    model(images(model.config), logits=True).sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name


def test_drop_path_rises_linearly_to_the_configured_rate():
    model = build("tiny32", bits=16, drop_path_rate=0.3)
    rates = [layer.drop_path.drop_prob if hasattr(layer.drop_path, "drop_prob") else 0.0 for level in model.levels for layer in level.transformer_encoder]
    assert rates == pytest.approx([0.0, 0.15, 0.3])


def test_parameter_count_of_the_official_configuration():
    with torch.device("meta"):
        reference = build("paper15", bits=64, token_layout="reference")
        paper = build("paper15", bits=64)
    shapes = reference_shapes()
    assert sum(int(np.prod(s)) for s in shapes.values()) == REFERENCE_PARAMETERS
    # neither layout keeps the official model's unused FcLayer; the token layout adds no parameters
    assert sum(p.numel() for p in reference.parameters()) == REFERENCE_PARAMETERS - FC_LAYER_PARAMETERS
    assert sum(p.numel() for p in paper.parameters()) == REFERENCE_PARAMETERS - FC_LAYER_PARAMETERS


def test_synthetic_official_state_dict_loads_with_nothing_missing_or_left_over():
    with torch.device("meta"):
        model = build("paper15", bits=64, token_layout="reference")
        sd = {key: torch.empty(shape) for key, shape in reference_shapes().items()}
    report = load_checkpoint(model, sd)
    assert sorted(report.loaded) == sorted(model.state_dict())
    assert len(report.loaded) == len(sd) - 2 and not report.new
    assert sorted(report.dropped) == ["FcLayer.bias", "FcLayer.weight"]
    assert "never used" in report.reasons["FcLayer.weight"]
    with torch.device("meta"):
        paper_layout = build("paper15", bits=64)
    with pytest.raises(ValueError, match="token_layout='reference'"):
        load_checkpoint(paper_layout, sd)


def test_official_checkpoint_reproduces_the_official_forward(tmp_path):
    source = build("tiny32", bits=16, token_layout="reference")
    for param in source.parameters():  # give zero-initialised tensors (pos embeds, biases) values too
        torch.nn.init.normal_(param, std=0.3)
    official = to_official(source.state_dict())
    official.update({"FcLayer.weight": torch.randn(16, 32), "FcLayer.bias": torch.randn(16)})  # unused, as official
    assert "hashlayer_train.convS1.weight" in official and "levels.1.pool.global_attention.pos_embed_glo" in official
    torch.save(official, tmp_path / "official.pth")
    model = build("tiny32", bits=16, token_layout="reference").eval()
    load_checkpoint(model, tmp_path / "official.pth")
    x = images(model.config)
    expected = official_forward(official, x, model.config)
    torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)
    if DEVICE.type != "cpu":  # the same model on the accelerator (TF32 convolutions allowed: loose tolerance)
        torch.testing.assert_close(model.to(DEVICE)(x.to(DEVICE)).cpu(), expected, rtol=1e-2, atol=1e-2)
        model.cpu()
    # the paper layout with the same tensors attends among blocks instead, which changes the outputs
    paper = build("tiny32", bits=16).eval()
    paper.load_state_dict(model.state_dict())
    assert not torch.allclose(paper(x), expected, atol=1e-4)


def test_own_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = build("tiny32", bits=16).eval()
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "last.pt")
    torch.manual_seed(1)
    restored = build("tiny32", bits=16).eval()
    x = images(model.config)
    assert not torch.equal(restored(x), model(x))
    report = load_checkpoint(restored, tmp_path / "last.pt")
    assert len(report.loaded) == len(model.state_dict())
    assert torch.equal(restored(x), model(x))


def test_checkpoint_of_another_configuration_is_refused_naming_the_keys():
    small = build("tiny32", bits=16).state_dict()
    with pytest.raises(ValueError, match=r"shape mismatches \['hash_layer.conv_hash.bias: checkpoint \(16,\) vs model \(32,\)"):
        load_checkpoint(build("tiny32", bits=32), small)
    del small["norm.weight"]
    with pytest.raises(ValueError, match=r"missing \['norm.weight'\]"):
        load_checkpoint(build("tiny32", bits=16), small)


def test_encode_gives_signs_and_packed_bits_like_numpy():
    model = build("tiny32", bits=12).eval()
    x = images(model.config, batch=3)
    codes = model.encode(x)
    assert set(codes.unique().tolist()) <= {-1.0, 1.0} and not codes.requires_grad
    assert torch.equal(codes, torch.where(model(x) >= 0, 1.0, -1.0))
    packed = model.encode(x, packed=True)
    assert packed.dtype == torch.uint8 and packed.shape == (3, 2)
    assert np.array_equal(packed.numpy(), np.packbits(codes.numpy() > 0, axis=1))


def test_channels_last_and_autocast_give_the_same_outputs():
    model = build("tiny32", bits=16).eval()
    x = images(model.config)
    expected = model(x)
    torch.testing.assert_close(model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last)), expected, rtol=1e-5, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(x)
    assert low.shape == (2, 16) and torch.isfinite(low).all()
    torch.testing.assert_close(low.float(), expected, rtol=0.1, atol=0.05)


def test_size_that_does_not_fit_the_block_grid_names_valid_sizes():
    with pytest.raises(ValueError, match=r"multiple of 16 .*nearest valid sizes: \[208, 224, 240, 256\]"):
        build("paper", img_size=225)
    with pytest.raises(ValueError, match=r"nearest valid sizes: \[24, 32, 40, 48\]"):
        build("small32", patch_size=2, img_size=36)  # patch 2, 3 levels -> multiples of 8


def test_images_of_the_wrong_size_are_refused():
    model = build("tiny32", bits=16)
    with pytest.raises(ValueError, match="resize the images to 32 px or build the model with img_size=64"):
        model(torch.randn(1, 3, 64, 64))


def test_block_token_kernel_must_divide_the_pooled_maps():
    with pytest.raises(ValueError, match=r"block_token_kernel 3 does not divide the map edges \(16, 8, 4\) .* use one of \[1, 2, 4\]"):
        build("small32", patch_size=2, block_token_kernel=3)


def test_unknown_names_are_refused_with_the_valid_ones():
    with pytest.raises(KeyError, match=r"valid presets are \['paper', 'paper15', 'small32', 'tiny32'\]"):
        build("huge")
    with pytest.raises(TypeError, match=r"unknown model override\(s\) \['depth'\].*'depths'"):
        build("tiny32", depth=(1, 1, 1))
    with pytest.raises(KeyError, match="valid names are \\['global_only', 'hybrid', 'local_only', 'no_interaction'\\]"):
        build("tiny32", variant="hybird")
    with pytest.raises(ValueError, match="variant 'local_only' applies to backbone='hybridhash' only"):
        build("tiny32", backbone="cnn", variant="local_only")
    with pytest.raises(ValueError, match="bits=64 > feature dim 32: use head='hash_layer' or fewer bits"):
        build("tiny32", bits=64, head="divide_encode")


def test_config_accepts_lists_and_is_the_models_config():
    cfg = HybridHashConfig(img_size=32, embed_dims=[8, 16, 32], num_heads=[1, 2, 4], depths=[1, 1, 1], interaction_heads=2)
    assert cfg.embed_dims == (8, 16, 32)
    assert HybridHash(cfg).config is cfg


def test_same_seed_builds_the_same_network():
    torch.manual_seed(5)
    first = build("tiny32", bits=16).state_dict()
    torch.manual_seed(5)
    second = build("tiny32", bits=16).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
