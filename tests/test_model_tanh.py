"""The network's final tanh runs in float32, also under autocast (bf16 on CPU)."""

import torch

from hhlib.model import build


def test_final_tanh_is_float32_under_bf16_autocast_and_keeps_gradient():
    torch.manual_seed(0)
    model = build("tiny32", bits=8, drop_path_rate=0.0)
    with torch.no_grad():
        model.hash_layer.conv_hash.bias.fill_(4.0)  # |z| > 3.5: a bf16 tanh's gradient is exactly 0 there
    images = torch.randn(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(images)
        logits = model(images, logits=True)
    assert logits.dtype == torch.bfloat16 and outputs.dtype == torch.float32
    assert logits.float().abs().min() > 3.5
    z = logits.detach().requires_grad_()
    (gradient_bf16,) = torch.autograd.grad(torch.tanh(z).float().sum(), z)
    assert (gradient_bf16 == 0).all()  # what the network got before: no signal from saturated outputs
    outputs.sum().backward()
    gradient = model.hash_layer.conv_hash.bias.grad
    expected = (1 - torch.tanh(logits.float()) ** 2).sum(dim=0)  # d tanh / dz = 1 - tanh^2, summed over the batch
    assert (gradient > 0).all()
    assert torch.allclose(gradient, expected, rtol=0.05)
