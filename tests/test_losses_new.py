"""Tests of the loss families added for issue 13: DCH, CSQ, MDSHC (hash centres) and ADSH.

Each against hand-computed values; gradients and the toy training run are covered for every loss in
LOSSES by tests/test_losses.py, the real-data no-collapse run by tests/test_no_collapse.py.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hhlib import artifacts
from hhlib.losses import LOSSES, build
from hhlib.losses.adsh import balanced_similarity, discrete_cyclic_coordinate_descent, signed_similarity
from hhlib.losses.centres import (
    bernoulli_centres,
    gilbert_varshamov_distance,
    hadamard_centres,
    hadamard_matrix,
    min_distance_centres,
    minimum_distance,
)
from hhlib.losses.csq import image_centres
from hhlib.train import TrainConfig, fit

pytestmark = pytest.mark.usefixtures("seed_single_thread")

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

# three images, two bits, two classes: 0 and 1 share class 0, 1 and 2 share class 1, 0 and 2 share none
U3 = [[0.5, -0.5], [1.0, 0.2], [-0.3, 0.8]]
Y3 = [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
INDICES3 = torch.tensor([0, 1, 2])


def cosine_distance(a, b, bits):
    cosine = sum(x * y for x, y in zip(a, b)) / (math.hypot(*a) * math.hypot(*b))
    return bits / 2 * (1 - min(cosine, 0.99))


# ---------------------------------------------------------------- DCH


def test_dch_hand_value():
    gamma, lam, bits = 20.0, 0.1, 2
    pairs = {(0, 1): 1, (0, 2): 0, (1, 2): 1}  # two similar pairs, one dissimilar: S = 3, S1 = 2, S0 = 1
    weight = {1: 3 / 2, 0: 3 / 1}
    terms = []
    for (i, j), s in pairs.items():
        d = cosine_distance(U3[i], U3[j], bits)
        terms.append(weight[s] * (s * math.log(d / gamma) + math.log(1 + gamma / d)))
    quantization = [math.log(1 + cosine_distance([abs(x) for x in u], [1.0, 1.0], bits) / gamma) for u in U3]
    expected = sum(terms) / 3 + lam * sum(quantization) / 3
    value = build("dch", bits=2, n_classes=2, n_train=3)(torch.tensor(U3), torch.tensor(Y3), INDICES3)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_dch_cauchy_cross_entropy_is_the_negative_log_likelihood():
    # s log(d/gamma) + log(1 + gamma/d) = -log p for s = 1 and -log(1 - p) for s = 0, p = gamma / (gamma + d)
    gamma, d = 20.0, 3.0
    p = gamma / (gamma + d)
    assert math.log(d / gamma) + math.log(1 + gamma / d) == pytest.approx(-math.log(p))
    assert math.log(1 + gamma / d) == pytest.approx(-math.log(1 - p))


@pytest.mark.parametrize("gamma", [0.0, -1.0])
def test_dch_rejects_non_positive_gamma(gamma):
    with pytest.raises(ValueError, match=r"gamma=.* must be > 0"):
        build("dch", bits=16, n_classes=10, n_train=100, gamma=gamma)


# ---------------------------------------------------------------- hash centres


def test_hadamard_matrix_rows_are_orthogonal():
    matrix = hadamard_matrix(8)
    assert torch.equal(matrix @ matrix.T, 8 * torch.eye(8))
    assert torch.equal(hadamard_matrix(2), torch.tensor([[1.0, 1.0], [1.0, -1.0]]))


def test_hadamard_centres_use_the_negated_rows_beyond_k():
    centres = hadamard_centres(6, 4)
    assert torch.equal(centres[4:], -hadamard_matrix(4)[:2])
    assert minimum_distance(centres) == 2  # K/2 between distinct rows


def test_hadamard_centres_name_their_limits():
    with pytest.raises(ValueError, match=r"at most 2K = 32 classes at bits=16"):
        hadamard_centres(33, 16)
    with pytest.raises(ValueError, match="power-of-two code length"):
        hadamard_centres(4, 48)
    with pytest.raises(ValueError, match=r"at most 2K = 16 classes"):
        build("csq", bits=8, n_classes=17, n_train=10, centres="hadamard")


def test_csq_auto_falls_back_to_bernoulli_centres():
    loss = build("csq", bits=8, n_classes=17, n_train=10)  # 17 > 2K: CSQ Sec. 3.2's random centres
    assert loss.class_centres.shape == (17, 8) and minimum_distance(loss.class_centres) >= 1
    assert torch.equal(build("csq", bits=48, n_classes=10, n_train=10).class_centres, bernoulli_centres(10, 48, 0))
    assert torch.equal(build("csq", bits=16, n_classes=10, n_train=10).class_centres, hadamard_matrix(16)[:10])
    with pytest.raises(ValueError, match=r"at most 2\^K = 4"):
        bernoulli_centres(5, 2)


def test_multi_label_centre_is_the_sign_of_the_sum_with_ties_broken():
    centres = torch.tensor([[1.0, 1.0, -1.0], [1.0, -1.0, -1.0], [-1.0, -1.0, 1.0]])
    tie = torch.tensor([-1.0, 1.0, 1.0])
    labels = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    expected = torch.tensor([[1.0, -1.0, -1.0], [1.0, 1.0, -1.0], [1.0, -1.0, -1.0]])
    assert torch.equal(image_centres(labels, centres, tie), expected)


def test_csq_hand_value():
    outputs = [[0.5, -0.5], [0.9, 0.2], [-0.3, 0.8]]
    loss = build("csq", bits=2, n_classes=2, n_train=3, quantization_weight=0.5)
    centres = [[1.0, 1.0], [1.0, -1.0]]  # H_2
    assert loss.class_centres.tolist() == centres
    tie = loss.tie_breaker.tolist()
    targets = [centres[0], [1.0, tie[1]], centres[1]]  # image 1: sum (2, 0), the tie takes the breaker's bit
    bce = 0.0
    for u, c in zip(outputs, targets):
        for x, t in zip(u, c):
            h, target = (x + 1) / 2, (t + 1) / 2
            bce -= target * math.log(h) + (1 - target) * math.log(1 - h)
    quantization = sum(math.log(math.cosh(abs(x) - 1)) for u in outputs for x in u)
    expected = bce / 6 + 0.5 * quantization / 6
    value = loss(torch.tensor(outputs), torch.tensor(Y3), INDICES3)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_gilbert_varshamov_distance_by_hand():
    # 10 * (1 + 16 + 120 + 560 + 1820) = 25,170 <= 2^16; adding binom(16, 5) = 4,368 gives 68,850 > 65,536
    assert gilbert_varshamov_distance(10, 16) == 5
    assert gilbert_varshamov_distance(2, 4) == 2  # d = 2: 2 * (1 + 4) = 10 <= 16; d = 3: 2 * (1 + 4 + 6) = 22 > 16


def test_min_distance_centres_reach_and_beyond_the_bound():
    centres = min_distance_centres(10, 16, seed=0)
    assert minimum_distance(centres) >= gilbert_varshamov_distance(10, 16)
    assert minimum_distance(centres) >= minimum_distance(bernoulli_centres(10, 16, 0))
    assert minimum_distance(min_distance_centres(10, 16, target=5, seed=3)) >= 5
    brute = min(int((a != b).sum()) for a, b in itertools.combinations(centres, 2))
    assert minimum_distance(centres) == brute


def test_min_distance_centres_name_an_unreachable_target():
    # three codes of 2 bits cannot be pairwise 2 apart (at most 2 such codes exist)
    with pytest.raises(ValueError, match=r"could not place 3 centres at minimum distance 2 with bits=2"):
        min_distance_centres(3, 2, target=2)
    with pytest.raises(ValueError, match=r"must lie in \[1, bits=4\]"):
        min_distance_centres(3, 4, target=5)
    with pytest.raises(ValueError, match=r"at most 2\^K = 4"):
        build("mdshc", bits=2, n_classes=5, n_train=3)


def test_mdshc_uses_the_searched_centres():
    loss = build("mdshc", bits=16, n_classes=10, n_train=5)
    assert loss.family == "central_similarity"
    assert torch.equal(loss.class_centres, min_distance_centres(10, 16, seed=0))
    assert minimum_distance(loss.class_centres) > minimum_distance(build("csq", bits=16, n_classes=10, n_train=5,
                                                                         centres="bernoulli").class_centres)


# ---------------------------------------------------------------- ADSH


def adsh_objective(codes, outputs, rows, similarity, gamma):
    """ADSH Eq. 3 as a function of V: sum_ij (u_i^T v_j - K S_ij)^2 + gamma sum_i ||v_rows[i] - u_i||^2."""
    bits = codes.shape[1]
    return float(((outputs @ codes.T - bits * similarity) ** 2).sum() + gamma * ((codes[rows] - outputs) ** 2).sum())


def test_dcc_column_update_is_the_exact_minimiser_over_that_column():
    generator = torch.Generator().manual_seed(0)
    n, bits, gamma = 5, 3, 2.0
    labels = torch.eye(2)[torch.tensor([0, 0, 1, 1, 0])]
    rows = torch.tensor([0, 2, 3])
    outputs = torch.rand(3, bits, generator=generator, dtype=torch.float64) * 2 - 1
    similarity = signed_similarity(labels[rows], labels).double()
    placed = torch.zeros(n, bits, dtype=torch.float64)
    placed[rows] = outputs
    start = (torch.rand(n, bits, generator=generator, dtype=torch.float64) > 0.5).double() * 2 - 1
    updated = discrete_cyclic_coordinate_descent(start, outputs, placed, similarity, gamma)
    assert adsh_objective(updated, outputs, rows, similarity, gamma) <= adsh_objective(start, outputs, rows, similarity, gamma)
    # the last column was updated with all the others fixed: no other +-1 column does better
    best = min(
        adsh_objective(torch.cat([updated[:, :-1], torch.tensor(column, dtype=torch.float64)[:, None]], 1),
                       outputs, rows, similarity, gamma)
        for column in itertools.product([-1.0, 1.0], repeat=n)
    )
    assert adsh_objective(updated, outputs, rows, similarity, gamma) == pytest.approx(best)


def test_balanced_similarity_by_hand():
    # Y3 against itself: 7 similar pairs, 2 dissimilar, r = 7/2: similar 1, dissimilar -3.5
    expected = torch.tensor([[1.0, 1.0, -3.5], [1.0, 1.0, 1.0], [-3.5, 1.0, 1.0]])
    assert torch.equal(balanced_similarity(torch.tensor(Y3), torch.tensor(Y3)), expected)
    # the dissimilar entries cancel the similar ones: an output shared by every image drops out of S^T U
    labels = torch.eye(3)[torch.tensor([0, 0, 1, 2, 2, 1, 0])]
    assert balanced_similarity(labels, labels).sum().item() == pytest.approx(0.0, abs=1e-6)
    # no dissimilar pair: S is all 1 (no division by zero)
    same = torch.ones(2, 1)
    assert torch.equal(balanced_similarity(same, same), torch.ones(2, 2))


def test_adsh_balanced_similarity_spreads_constant_outputs_where_signed_gives_one_code():
    """One bit's V step on a shared output plus a small class-specific part (gamma = 0, one column: v = -sign(q)).

    With the {-1, +1} S, 3 classes (2 dissimilar pairs per similar one) let the shared part win: one code for every
    image (hand value: class 0's column sum is 6 * 0.55 - 12 * 0.5 < 0). The authors' balanced S (r = 1/2) cancels
    the shared part and the codes follow the classes (6 * 0.55 - 0.5 * 12 * 0.5 > 0 for class 0 only).
    """
    generator = torch.Generator().manual_seed(0)
    classes = torch.tensor([0, 1, 2] * 6)
    labels = torch.eye(3)[classes]
    outputs = (0.5 + 0.05 * (classes == 0).float() + 0.001 * torch.randn(18, generator=generator))[:, None]
    start = torch.zeros(18, 1)
    signed = discrete_cyclic_coordinate_descent(start, outputs, outputs, signed_similarity(labels, labels), 0.0)
    balanced = discrete_cyclic_coordinate_descent(start, outputs, outputs, balanced_similarity(labels, labels), 0.0)
    assert signed.unique().numel() == 1
    assert torch.equal(balanced[:, 0], torch.where(classes == 0, 1.0, -1.0))


def test_adsh_initial_codes():
    random = build("adsh", bits=8, n_classes=2, n_train=50, seed=3).database_codes
    assert set(random.unique().tolist()) == {-1.0, 1.0} and abs(random.mean().item()) < 0.2
    assert torch.equal(random, build("adsh", bits=8, n_classes=2, n_train=50, seed=3).database_codes)
    assert not torch.equal(random, build("adsh", bits=8, n_classes=2, n_train=50, seed=4).database_codes)
    assert torch.equal(build("adsh", bits=8, n_classes=2, n_train=50, initial_codes="zeros").database_codes,
                       torch.zeros(50, 8))


def test_adsh_hand_value_with_the_balanced_similarity():
    loss = build("adsh", bits=2, n_classes=2, n_train=3, gamma=4.0)
    loss.prepare(torch.tensor(Y3))
    codes = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    loss.database_codes.copy_(codes)
    u = np.array(U3)
    s = np.array([[1, 1, -3.5], [1, 1, 1], [-3.5, 1, 1]])  # r = 7 similar / 2 dissimilar pairs
    square = ((u @ codes.numpy().T - 2 * s) ** 2).sum()
    quantization = ((codes.numpy() - u) ** 2).sum()
    value = loss(torch.tensor(U3), torch.tensor(Y3), INDICES3)
    assert value.item() == pytest.approx((square + 4.0 * quantization) / (3 * 3), rel=1e-6)


def test_adsh_hand_value_and_epoch_hook():
    loss = build("adsh", bits=2, n_classes=2, n_train=3, gamma=4.0, similarity="signed")
    assert loss.family == "asymmetric"
    loss.prepare(torch.tensor(Y3))
    codes = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    loss.database_codes.copy_(codes)
    u, s = np.array(U3), 2 * np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]]) - 1
    square = ((u @ codes.numpy().T - 2 * s) ** 2).sum()
    quantization = ((codes.numpy() - u) ** 2).sum()
    value = loss(torch.tensor(U3), torch.tensor(Y3), INDICES3)
    assert value.item() == pytest.approx((square + 4.0 * quantization) / (3 * 3), rel=1e-6)
    assert torch.equal(loss.memory_outputs, torch.tensor(U3)) and loss.memory_written.all()
    loss.set_epoch(1)  # the V step on the stored outputs
    placed = torch.tensor(U3)
    expected = discrete_cyclic_coordinate_descent(codes, placed, placed, signed_similarity(torch.tensor(Y3), torch.tensor(Y3)), 4.0)
    assert torch.equal(loss.database_codes, expected)


def test_adsh_errors():
    with pytest.raises(ValueError, match=r"gamma=-1.0 must be >= 0"):
        build("adsh", bits=4, n_classes=2, n_train=3, gamma=-1.0)
    with pytest.raises(ValueError, match=r"expected \(3, 2\)"):
        build("adsh", bits=4, n_classes=2, n_train=3).prepare(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"similarity='cosine' is unknown"):
        build("adsh", bits=4, n_classes=2, n_train=3, similarity="cosine")
    with pytest.raises(ValueError, match=r"initial_codes='ones' is unknown"):
        build("adsh", bits=4, n_classes=2, n_train=3, initial_codes="ones")


def test_every_loss_has_a_family_and_new_losses_are_registered():
    assert {name: cls.family for name, cls in LOSSES.items() if name in ("dch", "csq", "mdshc", "adsh", "dh")} == {
        "dch": "symmetric", "csq": "central_similarity", "mdshc": "central_similarity", "adsh": "asymmetric",
        "dh": "unsupervised"}


@pytest.mark.skipif(not Path(FASHION_MNIST, "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"real Fashion-MNIST files are absent from {FASHION_MNIST}")
def test_adsh_resumed_run_equals_the_uninterrupted_one(tmp_path):
    """ADSH's V and its output memory live in the loss's buffers: a resumed run repeats the V step exactly."""
    values = dict(dataset="fashion_mnist", data_dir=FASHION_MNIST, preset="tiny32", bits=16, img_size=32,
                  query_per_class=2, train_per_class=4, database_limit=50, batch_size=8, epochs=2, optimizer="adamw",
                  lr=1e-3, model_overrides={"drop_path_rate": 0.0}, progress=False, device="cpu", loss="adsh")
    straight = fit(TrainConfig.from_dict({**values, "out_dir": str(tmp_path / "straight")}))
    config = TrainConfig.from_dict({**values, "out_dir": str(tmp_path / "resumed")})
    assert fit(config, max_epochs=1) is None
    resumed = fit(config)
    with np.load(straight.codes_path) as first, np.load(resumed.codes_path) as second:
        assert np.array_equal(first["database_codes"], second["database_codes"])
    first_state = artifacts.load_checkpoint(straight.checkpoint_path)["loss"]
    second_state = artifacts.load_checkpoint(resumed.checkpoint_path)["loss"]
    assert torch.equal(first_state["database_codes"], second_state["database_codes"])
    assert first_state["database_codes"].abs().sum() > 0  # a V step ran (V starts at 0)
