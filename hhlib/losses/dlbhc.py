"""DLBHC: binary codes from a sigmoid latent layer learned through classification.

Lin, Yang, Hsiao, Chen, "Deep Learning of Binary Hash Codes for Fast Image Retrieval", CVPR
Workshops 2015. A latent layer H of K sigmoid units sits between the feature layer (F7) and the
classifier (F8); the network is trained only by the classification loss, and codes are H >= 0.5 (H > 0.5 in hhlib: an exact 0.5 is a measure-zero case).
In hhlib the model's tanh outputs u are that latent layer: h = (u + 1) / 2 = sigmoid(2 z), and
h > 0.5 <=> u > 0, so the model's sign() codes (0 -> -1, hhlib.hamming.ZERO_RULE) are DLBHC's codes. The F8 classifier is this
loss's own linear layer (bits -> C), trained with the model. The loss is softmax cross-entropy
against the label distribution y / |y| (exactly DLBHC's cross-entropy on single-label data; for
multi-label data each of an image's labels gets an equal share).
The coarse-to-fine search (Hamming shortlist, then Euclidean re-ranking on F7 features) is
retrieval, not training: hhlib.index offers it on ``model.features``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hhlib.losses.base import HashLoss


class DLBHCLoss(HashLoss):
    """DLBHC (Lin et al., CVPRW 2015): classification through the sigmoid latent layer h = (u + 1) / 2.

    Owns ``classifier`` = nn.Linear(bits, n_classes) (DLBHC's F8); the trainer optimises it with the model.

    Args:
        bits: latent-layer width K.
        n_classes: number of classes C.
        n_train: training-split size.
    """

    family = "symmetric"

    def __init__(self, bits: int, n_classes: int, n_train: int) -> None:
        super().__init__(bits, n_classes, n_train)
        self.classifier = nn.Linear(bits, n_classes)

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """Cross-entropy of the classifier on the latent layer.

        Args:
            outputs: (B, bits) float tanh outputs u.
            labels: (B, C) float multi-hot labels (rows with no label are ignored).
            indices: (B,) long train-split positions (checked only).

        Returns:
            Scalar mean cross-entropy over the labelled rows.
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        latent = (outputs + 1) / 2
        log_probs = torch.log_softmax(self.classifier(latent), dim=1)
        counts = labels.sum(dim=1)
        labelled = counts > 0
        target = labels[labelled] / counts[labelled, None]
        return -(target * log_probs[labelled]).sum() / labelled.sum().clamp_min(1)
