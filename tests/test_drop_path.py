"""Tests for stochastic depth in hhlib.layers: the branch runs only on kept samples, with the textbook law.

The textbook form is ``x + branch(x) * mask / keep`` with one Bernoulli(keep) mask entry per sample;
``DropPath.residual`` must equal it value for value (and in its gradients) for a given mask.
"""

import pytest
import torch

from hhlib import layers
from hhlib.layers import DropPath, TransformerLayer, kept_rows
from hhlib.model import build

pytestmark = pytest.mark.usefixtures("seed_single_thread")


def textbook_layer(layer: TransformerLayer, x: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """The layer with every branch computed on all samples and multiplied by its (B,) 0/1 mask."""
    keep = 1.0 - layer.drop_path.drop_prob
    shape = (-1,) + (1,) * (x.ndim - 1)
    x = x + layer.attn(layer.norm1(x)) * masks[0].reshape(shape) / keep
    return x + layer.mlp(layer.norm2(x)) * masks[1].reshape(shape) / keep


def fixed_rows(monkeypatch, *row_lists: list[int]) -> None:
    """Make the layers draw the given kept rows, one list per residual branch, in call order."""
    draws = iter(row_lists)
    monkeypatch.setattr(layers, "kept_rows", lambda batch, keep, device: torch.tensor(next(draws), dtype=torch.long))


def as_mask(rows: list[int], batch: int) -> torch.Tensor:
    mask = torch.zeros(batch)
    mask[rows] = 1.0
    return mask


def values_and_gradients(layer: TransformerLayer, x: torch.Tensor, forward) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Output, d(sum out^2)/dx and the parameter gradients of one forward through ``forward``."""
    x = x.clone().requires_grad_(True)
    layer.zero_grad(set_to_none=True)
    out = forward(x)
    out.pow(2).sum().backward()
    return out.detach(), [x.grad] + [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in layer.parameters()]


@pytest.mark.parametrize("rows", [([0, 2], [1, 2, 3]), ([3], [0]), ([], [0, 1, 2, 3]), ([0, 1, 2, 3], [])])
def test_kept_rows_only_give_the_textbook_output_and_gradients(monkeypatch, rows):
    layer = TransformerLayer(8, 2, drop_path=0.4).train()
    x = torch.randn(4, 2, 4, 8)
    masks = [as_mask(r, 4) for r in rows]
    expected, expected_grads = values_and_gradients(layer, x, lambda t: textbook_layer(layer, t, masks))
    fixed_rows(monkeypatch, *rows)
    out, grads = values_and_gradients(layer, x, layer)
    torch.testing.assert_close(out, expected)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want)


def test_no_sample_kept_returns_the_input_without_running_the_branch(monkeypatch):
    fixed_rows(monkeypatch, [])

    def branch(t):
        raise AssertionError("the branch ran although every sample dropped it")

    x = torch.randn(3, 5)
    assert DropPath(0.3).train().residual(x, branch) is x


def test_every_sample_kept_scales_the_whole_branch_by_one_over_keep(monkeypatch):
    fixed_rows(monkeypatch, [0, 1, 2])
    x = torch.randn(3, 5)
    torch.testing.assert_close(DropPath(0.2).train().residual(x, torch.sin), x + torch.sin(x) / 0.8)


def test_the_branch_sees_only_the_kept_rows(monkeypatch):
    fixed_rows(monkeypatch, [1, 3])
    seen = []
    x = torch.arange(5.0).reshape(5, 1)
    out = DropPath(0.5).train().residual(x, lambda t: seen.append(t.clone()) or t)
    assert torch.equal(seen[0], torch.tensor([[1.0], [3.0]]))
    assert out.flatten().tolist() == [0.0, 3.0, 2.0, 9.0, 4.0]  # kept rows: x + x / 0.5


def test_eval_mode_and_zero_rate_are_bit_identical_to_the_plain_residual():
    torch.manual_seed(1)
    with_drop = TransformerLayer(8, 2, drop_path=0.5)
    without = TransformerLayer(8, 2, drop_path=0.0)
    without.load_state_dict(with_drop.state_dict())
    x = torch.randn(3, 2, 4, 8)
    plain = x + with_drop.attn(with_drop.norm1(x))
    plain = plain + with_drop.mlp(with_drop.norm2(plain))
    assert torch.equal(with_drop.eval()(x), plain)
    assert torch.equal(without.train()(x), plain)  # training, drop path 0: no draw, no gather


def test_the_residual_is_unbiased_over_many_draws():
    x = torch.zeros(40000, 1)
    out = DropPath(0.25).train().residual(x, lambda t: t + 3.0)
    assert set(out.unique().tolist()) == {0.0, 4.0}  # dropped rows stay x, kept rows get 3 / 0.75
    assert abs(out.mean().item() - 3.0) < 0.05  # E = 3; the std of the mean is 4 * sqrt(0.1875 / 40000) = 0.009


def test_kept_rows_are_distinct_increasing_and_kept_at_the_given_rate():
    rows = kept_rows(20000, 0.7, torch.device("cpu"))
    assert rows.dtype == torch.long and bool((rows[1:] > rows[:-1]).all())
    assert abs(len(rows) / 20000 - 0.7) < 0.015  # std of the fraction: sqrt(0.21 / 20000) = 0.003
    torch.manual_seed(5)
    first = kept_rows(16, 0.5, torch.device("cpu"))
    torch.manual_seed(5)
    assert torch.equal(kept_rows(16, 0.5, torch.device("cpu")), first)


def test_a_bfloat16_branch_is_added_in_the_promoted_dtype(monkeypatch):
    fixed_rows(monkeypatch, [0, 2])
    x = torch.randn(3, 4)
    out = DropPath(0.5).train().residual(x, lambda t: t.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, x + (x.bfloat16().float() * as_mask([0, 2], 3)[:, None] / 0.5))


def test_model_with_drop_path_trains_one_step():
    model = build("tiny32", bits=16, drop_path_rate=0.5).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    images = torch.randn(6, 3, 32, 32)
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(images).pow(2).mean()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(torch.isfinite(p).all() for p in model.parameters())
