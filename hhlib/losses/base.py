"""The interface every hhlib hashing loss implements: ``loss(outputs, labels, indices) -> scalar``.

One training loop (hhlib.train) drives every method through this class: HybridHash's weighted
likelihood (ICMR 2024, Sec. 3.3) and the classic deep-hashing losses it is compared with.
A loss sees the network outputs of a batch, the batch's multi-hot labels and the batch's
positions in the training split; the optional hooks below give the few methods that need more
(a two-stage schedule, a continuation schedule, raw logits, a different head) what they need.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn


FAMILIES = ("symmetric", "asymmetric", "central_similarity", "unsupervised")


class HashLoss(nn.Module):
    """Base class of the hashing losses: input checks plus hooks with no-op defaults.

    Hooks the trainer calls:
        ``prepare(train_labels)`` once before training; ``set_epoch(epoch)`` at each epoch start;
        ``retrieval_weights()`` at evaluation (None = plain Hamming ranking).
    Class attribute ``family``: "symmetric" (pairwise/triplet/classification losses on the network's
    codes alone), "asymmetric" (database codes learned apart from the network), "central_similarity"
    (codes pulled to per-class hash centres) or "unsupervised" (labels unused).
    Attributes the trainer reads:
        ``takes_logits`` (pass pre-tanh outputs ``model(x, logits=True)`` when True) and the
        class attribute ``model_overrides`` (keyword overrides merged into ``hhlib.model.build``).
    The trainer optimises ``model.parameters()`` together with ``loss.parameters()`` (some losses
    own a classifier or bit weights) and checkpoints ``loss.state_dict()`` (memory banks are buffers).

    Args:
        bits: code length K.
        n_classes: label width C of the multi-hot label vectors.
        n_train: number of images in the training split (indices live in ``[0, n_train)``).

    Raises:
        ValueError: bits, n_classes or n_train is not a positive integer.
    """

    takes_logits: bool = False
    model_overrides: ClassVar[dict] = {}
    family: ClassVar[str]  # one of FAMILIES; every concrete loss sets it (the study groups rows by it)

    def __init__(self, bits: int, n_classes: int, n_train: int) -> None:
        super().__init__()
        for name, value in (("bits", bits), ("n_classes", n_classes), ("n_train", n_train)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive int: pass e.g. {name}=16")
        self.bits = bits
        self.n_classes = n_classes
        self.n_train = n_train

    def prepare(self, train_labels: Tensor) -> None:
        """Hook called once before training with the labels of the whole training split.

        Args:
            train_labels: (n_train, C) float multi-hot labels, in training-split order.
        """

    def set_epoch(self, epoch: int) -> None:
        """Hook called at the start of each epoch (0-based).

        Args:
            epoch: index of the epoch about to start.
        """

    def retrieval_weights(self) -> Tensor | None:
        """Per-bit weights the retrieval ranking must use (weighted Hamming), or None for plain Hamming.

        Returns:
            None here; DRSDH returns its learned (bits,) weights (hhlib.weighted_hamming normalises them).
        """
        return None

    def check_inputs(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Validate a batch and return it as (float outputs, float labels, long indices).

        Args:
            outputs: (B, bits) float network outputs (any float dtype; AMP halves are upcast).
            labels: (B, C) float multi-hot labels.
            indices: (B,) integer positions in the training split.

        Returns:
            outputs (B, bits) (float16/bfloat16 upcast to float32, float64 kept), labels (B, C) in the
            same dtype, indices (B,) int64, all on outputs' device.

        Raises:
            ValueError: an empty batch, a shape that does not match bits/n_classes/batch size, or an
                index outside [0, n_train).
        """
        name = type(self).__name__
        if outputs.dim() != 2 or outputs.shape[1] != self.bits:
            raise ValueError(
                f"{name}: outputs have shape {tuple(outputs.shape)}, expected (B, {self.bits}): "
                f"build the loss with bits={outputs.shape[-1] if outputs.dim() else '?'} "
                f"or the model with bits={self.bits}"
            )
        batch = outputs.shape[0]
        if batch == 0:
            raise ValueError(f"{name}: the batch is empty (0 outputs): a loss over no pairs is undefined (NaN); "
                             "skip empty batches before calling the loss")
        if labels.dim() != 2 or labels.shape[1] != self.n_classes:
            raise ValueError(
                f"{name}: labels have shape {tuple(labels.shape)}, expected (B, {self.n_classes}) multi-hot: "
                f"build the loss with n_classes equal to the dataset's label width (Splits.n_classes)"
            )
        if labels.shape[0] != batch:
            raise ValueError(f"{name}: {labels.shape[0]} label rows for {batch} outputs: pass one label row per output")
        indices = torch.as_tensor(indices, device=outputs.device)
        if indices.dim() != 1 or indices.shape[0] != batch:
            raise ValueError(
                f"{name}: indices have shape {tuple(indices.shape)}, expected ({batch},): "
                "pass the train-split position of each image (the third item of the train Dataset)"
            )
        if indices.dtype.is_floating_point or indices.dtype == torch.bool:
            raise ValueError(f"{name}: indices have dtype {indices.dtype}: pass integer (long) positions")
        if batch and (int(indices.min()) < 0 or int(indices.max()) >= self.n_train):
            raise ValueError(
                f"{name}: indices span [{int(indices.min())}, {int(indices.max())}] but n_train={self.n_train}: "
                "build the loss with n_train=len(splits.train) and pass positions in the train split"
            )
        if not outputs.dtype.is_floating_point:
            raise ValueError(f"{name}: outputs have dtype {outputs.dtype}: pass the model's float outputs")
        if outputs.dtype in (torch.float16, torch.bfloat16):
            outputs = outputs.float()  # AMP outputs: the losses' sums need float32 range
        return outputs, labels.to(device=outputs.device, dtype=outputs.dtype), indices.long()

    def extra_repr(self) -> str:
        return f"bits={self.bits}, n_classes={self.n_classes}, n_train={self.n_train}"
