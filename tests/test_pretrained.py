"""Tests for hhlib.pretrained: NesT-B transfer (offline, random timm weights), position-embedding resize, reports."""

import re

import pytest
import torch
from timm.models import nest as timm_nest

from hhlib.layers import blockify, deblockify
from hhlib.model import build, from_pretrained_nest
from hhlib.pretrained import LoadReport, load_nest_weights, read_state_dict, remap_nest_state_dict, resize_pos_embed

# model tensors that NesT-B cannot supply: the global branches and the hash layer (docs/method.md §1)
NEW_IN_HYBRIDHASH = r"levels\.\d\.pool\.(conv_global|global_attention)\..*|hash_layer\..*"


pytestmark = pytest.mark.usefixtures("seed_single_thread")


@pytest.fixture(scope="module")
def nest_base(tmp_path_factory):
    """timm's nest_base_jx with random weights, saved as a state dict file: (state dict, path).

    timm's own trunc-normal re-initialisation is skipped (it takes seconds on a CPU); the
    constructors' random init stays, and the tensors it leaves constant (position embeddings,
    LayerNorms) get random values, so that every tensor is distinguishable by value.
    """
    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timm_nest.Nest, "init_weights", lambda self, mode="": None)
        model = timm_nest.nest_base_jx(pretrained=False)
    sd = model.state_dict()
    with torch.no_grad():
        for key, value in sd.items():
            if key.endswith("pos_embed") or re.search(r"norm\d?\.(weight|bias)$", key):
                value.normal_()
    path = tmp_path_factory.mktemp("nest") / "nest_base_jx.pth"
    torch.save(sd, path)
    return sd, path


def empty_model(preset: str, **overrides):
    """Build on the meta device and allocate without initialising: these tests only look at loaded tensors."""
    with torch.device("meta"):
        model = build(preset, bits=64, **overrides)
    return model.to_empty(device="cpu")


def shared_keys(model) -> list[str]:
    return [key for key in model.state_dict() if not re.fullmatch(NEW_IN_HYBRIDHASH, key)]


def test_nest_base_loads_into_paper_by_value(nest_base):
    sd, path = nest_base
    model = empty_model("paper")
    report = from_pretrained_nest(model, path)
    assert report.loaded == shared_keys(model)
    assert report.new == [key for key in model.state_dict() if re.fullmatch(NEW_IN_HYBRIDHASH, key)]
    assert "hash_layer.conv_hash.weight" in report.new and "levels.1.pool.global_attention.qkv.weight" in report.new
    assert report.dropped == ["head.weight", "head.bias"] or report.dropped == ["head.fc.weight", "head.fc.bias"]
    assert report.resized == []
    state = model.state_dict()
    for key in report.loaded:
        assert torch.equal(state[key], sd[key]), key


def test_paper15_drops_layers_16_to_20_of_level_3(nest_base):
    sd, _ = nest_base
    model = empty_model("paper15")
    report = from_pretrained_nest(model, sd)
    deep = sorted({int(m.group(1)) for key in report.dropped if (m := re.match(r"levels\.2\.transformer_encoder\.(\d+)\.", key))})
    assert deep == [15, 16, 17, 18, 19]
    assert len(report.dropped) == 2 + 5 * 12  # classifier + 5 layers of 12 tensors
    assert all(report.reasons[key] == "not in this model" for key in report.dropped if ".transformer_encoder." in key)
    assert report.loaded == shared_keys(model)
    assert "levels.2.transformer_encoder.{15..19}.* (not in this model)" in str(report)


def test_position_embeddings_are_resized_for_another_input_size(nest_base):
    sd, _ = nest_base
    model = empty_model("paper15", img_size=112, depths=(2, 2, 1))  # block edge 7 instead of 14; one deep layer is enough
    report = from_pretrained_nest(model, sd)
    assert report.resized == ["levels.0.pos_embed", "levels.1.pos_embed", "levels.2.pos_embed"]
    assert report.loaded == shared_keys(model)
    state = model.state_dict()
    assert state["levels.0.pos_embed"].shape == (1, 16, 49, 128)
    for key in report.resized:
        torch.testing.assert_close(state[key], resize_pos_embed(sd[key], tuple(state[key].shape)))
    assert torch.equal(state["levels.1.transformer_encoder.0.attn.qkv.weight"], sd["levels.1.transformer_encoder.0.attn.qkv.weight"])


def test_resize_pos_embed_interpolates_over_the_whole_block_grid():
    rows = torch.arange(8.0).reshape(1, 8, 1, 1).expand(1, 8, 8, 3)  # full-map value = row index
    pos = blockify(rows, 4)  # (1, 4, 16, 3)
    assert torch.equal(resize_pos_embed(pos, (1, 4, 16, 3)), pos)
    smaller = deblockify(resize_pos_embed(pos, (1, 4, 4, 3)), 2)  # 8x8 -> 4x4 map
    # bicubic, align_corners False, reproduces a linear ramp inside the map: row i samples 2i + 0.5
    torch.testing.assert_close(smaller[0, 1:3, :, 0], torch.tensor([[2.5] * 4, [4.5] * 4]))
    constant = torch.full((1, 16, 196, 2), 0.7)
    torch.testing.assert_close(resize_pos_embed(constant, (1, 16, 4, 2)), torch.full((1, 16, 4, 2), 0.7))


def test_variant_without_the_3x3_conv_reports_it_dropped_and_strict_names_it(nest_base):
    sd, _ = nest_base
    model = empty_model("paper15", variant="no_interaction", depths=(2, 2, 1))
    report = from_pretrained_nest(model, sd)
    assert report.reasons["levels.1.pool.conv.weight"] == "shape (256, 128, 3, 3) != model (256, 128, 1, 1)"
    assert "levels.1.pool.conv.weight" in report.new and "levels.1.pool.norm.weight" in report.loaded
    with pytest.raises(ValueError, match=r"not loaded: \['levels.1.pool.conv.weight', 'levels.2.pool.conv.weight'\]"):
        from_pretrained_nest(model, sd, strict=True)
    glob = empty_model("paper15", variant="global_only", depths=(2, 2, 1))
    assert from_pretrained_nest(glob, sd).reasons["levels.2.pool.conv.bias"] == "not in this model"


def test_remap_is_pure_and_matches_the_model_shapes(nest_base):
    sd, _ = nest_base
    model = empty_model("paper15", img_size=112, depths=(2, 2, 1))
    before = {key: value.shape for key, value in sd.items()}
    remapped = remap_nest_state_dict(sd, model)
    assert {key: value.shape for key, value in sd.items()} == before
    target = model.state_dict()
    assert all(remapped[key].shape == target[key].shape for key in remapped)
    assert "head.weight" not in remapped and "head.fc.weight" not in remapped


def test_small_nest_state_dict_from_safetensors_and_wrapped_checkpoints(tmp_path):
    from safetensors.torch import save_file

    source = build("tiny32", bits=16)
    sd = {key: value.clone() for key, value in source.state_dict().items() if not re.fullmatch(NEW_IN_HYBRIDHASH, key)}
    sd["head.fc.weight"] = torch.randn(10, 32)
    save_file(sd, str(tmp_path / "nest.safetensors"))
    target = build("tiny32", bits=16)
    report = load_nest_weights(target, tmp_path / "nest.safetensors", strict=True)
    assert report.dropped == ["head.fc.weight"] and report.reasons["head.fc.weight"] == "no counterpart in HybridHash"
    assert all(torch.equal(target.state_dict()[key], sd[key]) for key in report.loaded)
    wrapped = {"model": {f"module.{key}": value for key, value in sd.items()}, "epoch": 1}
    assert read_state_dict(wrapped).keys() == sd.keys()


def test_unreachable_timm_download_says_how_to_use_a_file(monkeypatch):
    import timm

    def offline(*args, **kwargs):
        raise OSError("no internet")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(RuntimeError, match=r"no internet.*pass that file's path"):
        from_pretrained_nest(build("tiny32", bits=16), "timm")


def test_missing_file_is_named():
    with pytest.raises(FileNotFoundError, match="weights file /nonexistent/nest.pth does not exist"):
        from_pretrained_nest(build("tiny32", bits=16), "/nonexistent/nest.pth")


def test_load_report_reads_well():
    report = LoadReport(
        loaded=["norm.weight"],
        new=["hash_layer.conv_hash.weight"],
        dropped=["head.weight", "levels.2.transformer_encoder.15.norm1.weight", "levels.2.transformer_encoder.16.norm1.weight"],
        reasons={"head.weight": "no counterpart in HybridHash", "levels.2.transformer_encoder.15.norm1.weight": "not in this model"},
    )
    text = str(report)
    assert text.startswith("loaded 1 tensors, 1 new, 3 dropped, 0 resized")
    assert "head.weight (no counterpart in HybridHash)" in text
    assert "levels.2.transformer_encoder.{15..16}.* (not in this model)" in text
