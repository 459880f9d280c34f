"""One rule for an output of exactly 0 (hhlib.hamming.ZERO_RULE): it is -1 / bit 0 in every encoder."""

import numpy as np
import torch

from hhlib import hamming
from hhlib.model import build
from hhlib.train import encode


class ConstantOutputs(torch.nn.Module):
    """A stand-in network whose outputs are fixed rows, zeros included."""

    def __init__(self, outputs: torch.Tensor):
        super().__init__()
        self.outputs = outputs
        self.config = type("Config", (), {"bits": outputs.shape[1]})()

    def forward(self, images: torch.Tensor, logits: bool = True) -> torch.Tensor:
        return self.outputs[: len(images)]


OUTPUTS = torch.tensor([[0.0, -0.0, 1e-7, -1e-7, 2.0, 0.0, -3.0, 0.0]])
EXPECTED = np.array([[-1, -1, 1, -1, 1, -1, -1, -1]])


def test_signs_maps_zero_to_minus_one_for_torch_and_numpy():
    assert torch.equal(hamming.signs(OUTPUTS), torch.tensor(EXPECTED, dtype=torch.float32))
    np.testing.assert_array_equal(hamming.signs(OUTPUTS.numpy()), EXPECTED)


def test_pack_codes_reads_zero_as_bit_zero():
    # bits 1 only where the output is > 0: positions 2 and 4 -> 0b00101000
    assert hamming.pack_codes(OUTPUTS.numpy()).tolist() == [[0b00101000]]
    assert hamming.pack_codes(EXPECTED).tolist() == [[0b00101000]]


def test_train_encode_follows_the_rule():
    dataset = [(torch.zeros(3, 2, 2), torch.ones(1), 0)]
    codes, _ = encode(ConstantOutputs(OUTPUTS), dataset, device="cpu")
    np.testing.assert_array_equal(codes, EXPECTED)


def test_model_encode_follows_the_rule(monkeypatch):
    model = build("tiny32", bits=8).eval()
    monkeypatch.setattr(model, "forward", lambda images, logits=False: OUTPUTS.expand(len(images), -1))
    images = torch.zeros(2, 3, 32, 32)
    np.testing.assert_array_equal(model.encode(images).numpy(), np.repeat(EXPECTED, 2, axis=0))
    assert model.encode(images, packed=True).tolist() == [[0b00101000]] * 2
