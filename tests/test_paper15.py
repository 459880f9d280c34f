"""The paper's network at the paper's size on CPU: NesT-B weights in, one training step, codes out.

Weights come from timm's ``nest_base_jx`` built with ``pretrained=False`` (offline), then perturbed so
that no tensor keeps its initial constant (zero biases, unit norms) and a wrong mapping shows.

- the plain NesT backbone with those weights computes timm's ``forward_features`` (SAME max-pool
  padding, as timm builds nest_base_jx), and the symmetric padding of the official HybridHash code
  does not;
- ``fit()`` trains paper15 at 224 px for one step (batch 2) from a saved state dict of those weights
  and encodes the query and database images.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hhlib.model import build, from_pretrained_nest, load_checkpoint
from hhlib.pretrained import read_state_dict
from hhlib.train import TrainConfig, fit

timm = pytest.importorskip("timm")

PERTURBATION_STD = 0.02  # ours: the scale of NesT's init std, so perturbed tensors stay in range


@pytest.fixture(scope="module")
def nest_b_file(tmp_path_factory) -> str:
    """A saved state dict of a randomly initialised, perturbed timm ``nest_base_jx`` (NesT-B shapes)."""
    torch.manual_seed(0)
    reference = timm.create_model("nest_base_jx", pretrained=False)
    with torch.no_grad():
        for tensor in reference.parameters():
            tensor.add_(torch.randn_like(tensor) * PERTURBATION_STD)
    path = tmp_path_factory.mktemp("nest") / "nest_base_jx.pth"
    torch.save(reference.state_dict(), path)
    return str(path)


def _timm_nest(path: str) -> torch.nn.Module:
    reference = timm.create_model("nest_base_jx", pretrained=False)
    reference.load_state_dict(read_state_dict(path))
    return reference.eval()


def test_nest_backbone_with_nest_b_weights_computes_timms_features(nest_b_file):
    reference = _timm_nest(nest_b_file)
    images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference.forward_features(images)
        nest = build("paper", backbone="nest").eval()
        report = from_pretrained_nest(nest, nest_b_file, strict=True)
        assert nest.config.aggregation_padding == "same"
        assert sorted(report.dropped) == ["head.bias", "head.weight"]  # the ImageNet classifier
        torch.testing.assert_close(nest.forward_features(images), expected, rtol=0, atol=1e-5)
        symmetric = build("paper", backbone="nest", pool_padding="symmetric").eval()
        symmetric.load_state_dict(nest.state_dict())
        gap = (symmetric.forward_features(images) - expected).abs().max()
    assert gap > 0.1, "symmetric padding moves every pooling window: the features must differ"


def test_paper15_trains_one_step_at_224_px_from_nest_b_weights_and_encodes(nest_b_file, make_list_dataset, tmp_path):
    data_dir = make_list_dataset(n_classes=21, sizes={"train.txt": 2, "test.txt": 2, "database.txt": 3})
    config = TrainConfig(
        dataset="nuswide_21", data_dir=str(data_dir), preset="paper15", bits=16, pretrained=nest_b_file,
        batch_size=2, epochs=1, eval_every=1, device="cpu", out_dir=str(tmp_path / "out"), progress=False,
    )
    result = fit(config)
    assert result.epochs == 1 and result.bits == 16 and result.topk == 3
    assert result.n_parameters == sum(p.numel() for p in build("paper15", bits=16).parameters())
    (record,) = [json.loads(line) for line in open(result.metrics_path)]
    assert np.isfinite(record["loss"])
    codes = np.load(result.codes_path)
    assert codes["query_codes"].shape == (2, 16) and codes["database_codes"].shape == (3, 16)
    assert set(np.unique(codes["database_codes"])) <= {-1, 1}
    # the trained weights are NesT-B's after one small RMSprop step: loaded, then moved
    nest = read_state_dict(nest_b_file)
    trained = read_state_dict(result.checkpoint_path)
    for key in ("patch_embed.proj.weight", "levels.2.transformer_encoder.14.mlp.fc2.weight", "levels.1.pool.conv.weight"):
        step = (trained[key] - nest[key]).abs().max()
        assert 0 < step < 1e-3, key
    model = build("paper15", bits=16).eval()
    load_checkpoint(model, result.checkpoint_path)
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    assert model.encode(images, packed=True).shape == (2, 2)
