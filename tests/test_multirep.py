"""Tests of hhlib.multirep: the representations against hand values on tiny images, and the fusion trunk."""

import math

import pytest
import torch

from hhlib.model import build
from hhlib.multirep import REPRESENTATIONS, MultiRepresentationTrunk, fourier_magnitude, gradient_histograms, grey_pixels

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _normalised(raw: torch.Tensor) -> torch.Tensor:
    return (raw - MEAN) / STD


def test_grey_pixels_average_the_unnormalised_channels():
    raw = torch.zeros(1, 3, 2, 2)
    raw[0, 0, 0, 0], raw[0, 1, 0, 0], raw[0, 2, 0, 0] = 0.3, 0.6, 0.9
    grey = grey_pixels(_normalised(raw))
    torch.testing.assert_close(grey, torch.tensor([[[[0.6, 0.0], [0.0, 0.0]]]]), atol=1e-6, rtol=0)


def test_gradient_histogram_of_one_bright_pixel_by_hand():
    # grey [[0, 1], [0, 0]], zero padding: at (0,0) gx = 1 - 0 (angle 0 -> bin 0); at (1,1) gy = 0 - 1
    # (angle -pi/2 -> pi/2 -> bin floor(4.5) = 4); the other two pixels have no gradient.
    grey = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]])
    hist = gradient_histograms(grey, cell_size=2, orientation_bins=9)
    expected = torch.zeros(1, 9, 1, 1)
    expected[0, 0] = expected[0, 4] = 1 / math.sqrt(2)
    torch.testing.assert_close(hist, expected, atol=1e-5, rtol=0)


def test_gradient_histograms_per_cell_and_flat_cells_stay_zero():
    grey = torch.zeros(2, 1, 8, 8)
    grey[0, 0, :, 4:] = 1.0  # a vertical edge between the left and right cells
    hist = gradient_histograms(grey, cell_size=4)
    assert hist.shape == (2, 9, 2, 2)
    assert hist[1].abs().max() == 0  # a flat image has no gradient anywhere
    norms = hist[0].norm(dim=0)
    torch.testing.assert_close(norms, torch.ones(2, 2), atol=1e-5, rtol=0)  # every cell of image 0 sees an edge or the border


def test_fourier_magnitude_of_a_constant_and_of_alternating_columns():
    constant = torch.full((1, 1, 4, 4), 0.5)
    spectrum = fourier_magnitude(constant, keep=4)
    expected = torch.zeros(1, 1, 4, 4)
    expected[0, 0, 2, 2] = math.log1p(16 * 0.5)  # the zero frequency, centred at index 4 // 2
    torch.testing.assert_close(spectrum, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(fourier_magnitude(constant, keep=1), expected[..., 2:3, 2:3])
    columns = torch.tensor([1.0, -1.0, 1.0, -1.0]).repeat(1, 1, 4, 1)  # Nyquist along x only
    spectrum = fourier_magnitude(columns, keep=4)
    assert spectrum[0, 0, 2, 0] == pytest.approx(math.log1p(16))
    assert spectrum.sum() == pytest.approx(math.log1p(16))


def test_representation_errors_name_the_fix():
    with pytest.raises(ValueError, match="must divide the image edge 8"):
        gradient_histograms(torch.zeros(1, 1, 8, 8), cell_size=3)
    with pytest.raises(ValueError, match=r"must lie in \[1, 4\]"):
        fourier_magnitude(torch.zeros(1, 1, 4, 4), keep=5)
    with pytest.raises(KeyError, match="unknown representation"):
        MultiRepresentationTrunk(views=("pixels", "sift"))


def test_trunk_concatenates_view_specific_and_shared_nodes():
    torch.manual_seed(0)
    trunk = MultiRepresentationTrunk(img_size=32, hidden=8, shared=4).eval()
    assert trunk.view_dims(32) == {"pixels": 1024, "gradients": 9 * 8 * 8, "fourier": 16 * 16}
    images = torch.randn(3, 3, 32, 32)
    out = trunk(images)
    assert out.shape == (3, 3 * 8 + 4, 1, 1) and trunk.feature_dim == 28
    grey = grey_pixels(images)
    pixels = trunk.norms["pixels"](grey.flatten(1))
    torch.testing.assert_close(out[:, :8, 0, 0], torch.relu(trunk.view_layers["pixels"](pixels)))  # view-specific nodes see one view


def test_shared_nodes_see_every_view():
    torch.manual_seed(0)
    trunk = MultiRepresentationTrunk(img_size=16, hidden=4, shared=4)
    images = torch.randn(4, 3, 16, 16, requires_grad=True)
    trunk(images)[:, -4:].sum().backward()
    for view in REPRESENTATIONS:
        assert trunk.shared_layers[view].weight.grad.abs().sum() > 0


def test_multirep_backbone_trains_with_the_fused_code_layer():
    torch.manual_seed(0)
    model = build("small32", bits=16, backbone="multirep")
    outputs = model(torch.randn(4, 3, 32, 32))
    outputs.sum().backward()
    assert outputs.shape == (4, 16)
    assert model.config.feature_dim == MultiRepresentationTrunk.feature_dim == 1024


REAL_FASHION = "/usr/share/datasets/fashion-mnist"


def test_multirep_learns_codes_on_real_fashion_mnist():
    import os

    from hhlib.datasets import read_fashion_mnist
    from hhlib.losses import build as build_loss
    from hhlib.metrics import mean_average_precision

    if not os.path.isfile(f"{REAL_FASHION}/train-images-idx3-ubyte.gz"):
        pytest.skip(f"real Fashion-MNIST absent from {REAL_FASHION}: apt-get install dataset-fashion-mnist")
    data = read_fashion_mnist(REAL_FASHION, download=False)
    pixels = torch.nn.functional.pad(data.images[:600].float() / 255, (2, 2, 2, 2))  # 28 -> 32 px
    images, labels = (pixels - MEAN) / STD, torch.as_tensor(data.labels[:600])
    train, query = slice(0, 500), slice(500, 600)
    torch.manual_seed(0)
    model = build("small32", bits=16, backbone="multirep")
    loss = build_loss("dsh", bits=16, n_classes=10, n_train=500)

    def held_out_map() -> float:
        model.eval()
        codes = model.encode(images)
        model.train()
        return mean_average_precision(codes[query], codes[train], labels[query], labels[train])

    before = held_out_map()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for step in range(48):
        batch = torch.arange(step * 64, step * 64 + 64) % 500
        optimizer.zero_grad()
        loss(model(images[batch], logits=True), labels[batch], batch).backward()
        optimizer.step()
    after = held_out_map()
    assert after > before + 0.15 and after > 0.4, (before, after)
