"""Tests for hhlib.transforms: output shapes, dtypes, normalisation values, augmentation, registry."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from hhlib.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TRANSFORMS,
    TensorTransform,
    build_transform,
    denormalize,
    resize_crop_transform,
)


def expected_constant(value: int) -> torch.Tensor:
    """Normalised value of a constant uint8 image, per channel: (v / 255 - mean) / std."""
    return torch.tensor([(value / 255 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])


def test_grayscale_to_three_channels_normalised():
    image = torch.full((1, 28, 28), 200, dtype=torch.uint8)
    out = build_transform("direct", train=False, img_size=32)(image)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    torch.testing.assert_close(out.mean(dim=(1, 2)), expected_constant(200))
    torch.testing.assert_close(out.amax(dim=(1, 2)), out.amin(dim=(1, 2)))  # constant stays constant


def test_batch_matches_single_items():
    torch.manual_seed(0)
    batch = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    transform = TensorTransform(16)
    out = transform(batch)
    assert out.shape == (2, 3, 16, 16)
    torch.testing.assert_close(out[1], transform(batch[1]))


def test_same_size_is_exact_normalisation():
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    out = TensorTransform(32)(image)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    torch.testing.assert_close(out, (image.float() / 255 - mean) / std)
    torch.testing.assert_close(denormalize(out), image.float() / 255)


def test_default_size_is_224_and_unnormalised_mode():
    out = TensorTransform(normalize=False)(torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8))
    assert out.shape == (3, 224, 224) and 0.0 <= out.min() and out.max() <= 1.0


def test_train_flip_and_pad_crop():
    torch.manual_seed(0)
    image = torch.zeros(1, 8, 8, dtype=torch.uint8)
    image[..., :4] = 255  # left half white
    batch = image.expand(64, 1, 8, 8)
    out = TensorTransform(8, train=True, flip=True, normalize=False)(batch)
    left_white = out[:, 0, 0, 0] > 0.5
    assert 0 < left_white.sum() < 64  # some flipped, some not
    torch.testing.assert_close(out[~left_white][0, 0], out[left_white][0, 0].flip(-1))
    ones = torch.full((16, 1, 8, 8), 255, dtype=torch.uint8)
    cropped = TensorTransform(8, train=True, pad=2, normalize=False)(ones)
    assert cropped.shape == (16, 3, 8, 8)
    assert ((cropped == 0) | torch.isclose(cropped, torch.ones(()))).all()
    assert (cropped == 0).any()  # some crops reach into the zero padding
    assert torch.equal(TensorTransform(8, train=True)(ones), TensorTransform(8)(ones))  # paper CIFAR: no aug


def test_resize_crop_pil_transform():
    image = Image.new("RGB", (400, 300), (10, 200, 30))
    for train in (True, False):
        out = resize_crop_transform(train)(image)
        assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    out = resize_crop_transform(False)(Image.new("RGB", (400, 300), (255, 255, 255)))
    torch.testing.assert_close(out.mean(dim=(1, 2)), expected_constant(255))
    small = build_transform("resize_crop", train=True, img_size=32, random_crop="resized_crop")(image)
    assert small.shape == (3, 32, 32)


def test_registry_and_errors():
    assert set(TRANSFORMS) == {"direct", "resize_crop"}
    with pytest.raises(KeyError, match="unknown transform kind 'jitter': valid names are direct, resize_crop"):
        build_transform("jitter", train=True)
    with pytest.raises(ValueError, match="random_crop must be 'crop' or 'resized_crop'"):
        resize_crop_transform(True, random_crop="centre")
    with pytest.raises(ValueError, match="img_size must be >= 1"):
        TensorTransform(0)
