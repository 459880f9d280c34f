"""DPSH: pairwise-label likelihood with a quantization term, and the stable pairwise likelihood itself.

Li, Wang, Kang, "Feature Learning based Deep Supervised Hashing with Pairwise Labels", IJCAI 2016.
With theta_ij = 1/2 u_i^T u_j and a_ij = sigmoid(theta_ij), DPSH minimises (Eq. 4, relaxed)

    L = - sum_{s_ij in S} (s_ij theta_ij - log(1 + e^theta_ij)) + eta sum_i ||b_i - u_i||^2,  b_i = sign(u_i),

whose gradient is dL/du_i = 1/2 sum_j (a_ij - s_ij) u_j + 1/2 sum_j (a_ji - s_ji) u_j + 2 eta (u_i - b_i).
The authors' code (DPSH-pytorch) pairs the batch with a memory U of the outputs of the whole
training set (rows written at the batch's indices, detached) and divides both terms by
n_train * B; hhlib does the same by default and offers in-batch pairs (``use_memory=False``).
u is the network's linear output (``takes_logits = True``), as in the authors' code and DeepHash-pytorch:
the quantization term, not a tanh, keeps it near +-1. On tanh outputs the 9:1 dissimilar pairs of a
10-class batch first push every output to one shared sign pattern (a shared output bias satisfies
most pairs), and a short Fashion-MNIST run ended with every bit constant (tests/test_no_collapse.py).

Output gain (hhlib's, not DPSH's): u = gain * z, z the network's linear output. The authors fine-tune
an ImageNet CNN-F whose new fully connected layer starts with outputs of unit scale, varied from image
to image. hhlib's networks train from scratch and start with |z| of about 0.02, mostly one shared
component (small32 at initialisation: mean over images 0.018, spread across images 0.007). There the
likelihood's gradient (proportional to u) and the quantization term's (which pulls every u to the
sign it has) are of the same size, and the quantization term wins: it fixes the shared sign pattern,
every bit constant (notebook 05's search: val mAP 0.10 at every lr). The gain puts u at the scale
DPSH was designed for. It is a fixed factor, so it changes no sign and no ranking: the codes are
sign(z) = sign(u). Measured on notebook 05's validation protocol (16 bits, 16 epochs, lr 0.002,
seed 0): gain 1: 0.10 (collapsed); 20: 0.545; 50: 0.562; eta = 0 with gain 1: 0.44. 50 is the default.
The stable form log(1 + e^x) = log(1 + e^-|x|) + max(x, 0) is shared with HashNet and HybridHash.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hhlib.losses.base import HashLoss
from hhlib.losses.similarity import share_label


def pairwise_nll(theta: Tensor, similarity: Tensor) -> Tensor:
    """Negative log-likelihood of pairwise labels, log(1 + e^theta) - s * theta, computed stably.

    Args:
        theta: (A, B) float inner products (already scaled).
        similarity: (A, B) float in {0, 1} (or [0, 1]).

    Returns:
        (A, B) float, log(1 + exp(-|theta|)) + max(theta, 0) - s * theta; finite for any finite theta.
    """
    return torch.log1p(torch.exp(-theta.abs())) + theta.clamp_min(0) - similarity * theta


class DPSHLoss(HashLoss):
    """DPSH (Li, Wang, Kang, IJCAI 2016): pairwise likelihood on theta = 1/2 u_i^T u_j + eta ||b - u||^2.

    Args:
        bits: code length K.
        n_classes: label width C.
        n_train: training-split size (memory rows).
        quantization_weight: eta in DPSH Eq. 4; 10 as the authors' CIFAR-10 script (DPSH-pytorch demo;
            their NUS-WIDE script uses 50).
        inner_product_scale: the 1/2 of theta_ij = 1/2 u_i^T u_j (DPSH Eq. 2).
        use_memory: True (authors' code) pairs the batch with the memory of all training outputs;
            False pairs the batch with itself (all B x B ordered pairs, self-pairs included).
        output_gain: u = output_gain * z (hhlib's choice 50, measured: module doc); 1 is the authors' form.

    Raises:
        ValueError: a weight is negative, or the gain or the scale is not positive.
    """

    family = "symmetric"
    takes_logits = True  # the authors' network (and DeepHash-pytorch's) ends in a linear layer: u is not squashed

    def __init__(
        self,
        bits: int,
        n_classes: int,
        n_train: int,
        quantization_weight: float = 10.0,  # eta, DPSH-pytorch DPSH_CIFAR_10_demo.py (lambda = 10)
        inner_product_scale: float = 0.5,  # theta = 1/2 u^T u, DPSH Eq. 2
        use_memory: bool = True,  # authors' code: batch x whole training set
        output_gain: float = 50.0,  # hhlib's choice (measured, module doc): from-scratch outputs to the unit scale of a pretrained fc layer
    ) -> None:
        super().__init__(bits, n_classes, n_train)
        if quantization_weight < 0:
            raise ValueError(f"quantization_weight={quantization_weight} must be >= 0 (eta of DPSH Eq. 4)")
        if not inner_product_scale > 0:
            raise ValueError(f"inner_product_scale={inner_product_scale} must be > 0 (the 1/2 of theta = 1/2 u^T u, DPSH Eq. 2)")
        if not output_gain > 0:
            raise ValueError(f"output_gain={output_gain} must be > 0 (u = gain * z; 1 is the authors' form)")
        self.quantization_weight = quantization_weight
        self.output_gain = output_gain
        self.inner_product_scale = inner_product_scale
        self.use_memory = use_memory
        if use_memory:
            self.register_buffer("memory_codes", torch.zeros(n_train, bits))
            self.register_buffer("memory_labels", torch.zeros(n_train, n_classes))

    @torch.no_grad()
    def write_memory(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> None:
        """Store the batch's detached outputs and labels at their training-split rows.

        Args:
            outputs: (B, bits) float outputs.
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions.
        """
        self.memory_codes[indices] = outputs.detach().to(self.memory_codes.dtype)
        self.memory_labels[indices] = labels.detach().to(self.memory_labels.dtype)

    def forward(self, outputs: Tensor, labels: Tensor, indices: Tensor) -> Tensor:
        """DPSH loss of a batch.

        Args:
            outputs: (B, bits) float linear outputs z (pre-tanh; ``takes_logits``); u = output_gain * z.
            labels: (B, C) float multi-hot labels.
            indices: (B,) long train-split positions.

        Returns:
            Scalar: (pairwise NLL sum + eta * sum ||b - u||^2) / (B * number of paired columns).
        """
        outputs, labels, indices = self.check_inputs(outputs, labels, indices)
        outputs = self.output_gain * outputs
        if self.use_memory:
            self.write_memory(outputs, labels, indices)
            others = self.memory_codes.to(outputs.dtype)
            other_labels = self.memory_labels.to(outputs.dtype)
        else:
            others, other_labels = outputs, labels
        theta = self.inner_product_scale * outputs @ others.T
        similarity = share_label(labels, other_labels)
        likelihood = pairwise_nll(theta, similarity).sum()
        quantization = (outputs.detach().sign() - outputs).pow(2).sum()
        return (likelihood + self.quantization_weight * quantization) / (outputs.shape[0] * others.shape[0])
