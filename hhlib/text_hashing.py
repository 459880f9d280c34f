"""Stage 2 of text hashing: a CNN over word embeddings trained to predict the stage-1 target bits.

Xu et al., "Convolutional Neural Networks for Text Hashing" (IJCAI 2015): word features and
position features go through a convolutional network; its implicit features, together with the
explicit keyword features, are fit to the pre-trained binary codes (:mod:`hhlib.text_targets`).
This module holds the network (:class:`TextHashCNN`), its training (:func:`fit_text_hasher`), the
whole study over code lengths, target modes and seeds (:func:`run_text_study`) and the readings
generated from its numbers (:func:`text_readings`).

Differences from the paper, on purpose (docs/text_hashing.md):
- word embeddings are learned from scratch: the paper used word2vec vectors, which are not
  available offline;
- convolution over time then max pooling over time (the paper used a dynamic CNN with k-max pooling);
- each bit is an independent logistic output fit to its target bit with binary cross-entropy; the
  code of a text is the sign of the output's logit.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from hhlib.evaluate import evaluate
from hhlib.runtime import seed_everything
from hhlib.spread import mean_std
from hhlib.text_data import PackageCorpus, make_text_splits, select_sections
from hhlib.text_targets import HEAT_KERNEL_SIGMA, NUM_NEIGHBORS, heat_kernel_graph, laplacian_target_codes, tfidf_features, tokenize

__all__ = [
    "TARGET_MODES",
    "TextHashCNN",
    "TextHashConfig",
    "TextProtocol",
    "build_vocabulary",
    "encode_texts",
    "fit_text_hasher",
    "linear_hasher_codes",
    "prepare_text_protocol",
    "results_table",
    "run_text_study",
    "text_readings",
    "token_ids",
]

PAD, UNKNOWN = 0, 1  # reserved token ids
TARGET_MODES = ("unsupervised", "supervised")  # stage-1 graph: tf-idf neighbours, or neighbours within the section


@dataclass
class TextHashConfig:
    """Network and training settings of the text CNN (every value is ours, chosen as stated; none is the paper's).

    Attributes:
        embedding_dim: word-embedding width (ours; the paper's word2vec vectors are not available offline).
        position_dim: position-embedding width (the paper feeds position features; width ours).
        filters: convolution channels (ours, CPU size).
        kernel_size: convolution window in words (ours: 3, the common n-gram width).
        explicit_dim: width of the projected tf-idf (explicit) features; 0 = no explicit branch.
        max_length: words kept per text (ours: 99% of the Debian synopses have at most 14 words).
        dropout: dropout before the hash layer (ours).
        epochs: passes over the training texts (ours: the held-out bit accuracy is flat by then, docs/text_hashing.md).
        batch_size: texts per step (ours).
        lr: Adam learning rate (ours).
        weight_decay: Adam weight decay (ours).
        validation_fraction: share of the training texts held out to watch convergence (never the queries).
        num_neighbors: k of the stage-1 graph (:data:`hhlib.text_targets.NUM_NEIGHBORS`).
        heat_kernel_sigma: width of the stage-1 heat kernel.
    """

    embedding_dim: int = 48
    position_dim: int = 8
    filters: int = 128
    kernel_size: int = 3
    explicit_dim: int = 32
    max_length: int = 16
    dropout: float = 0.2
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.0
    validation_fraction: float = 0.1
    num_neighbors: int = NUM_NEIGHBORS
    heat_kernel_sigma: float = HEAT_KERNEL_SIGMA


def build_vocabulary(texts: Sequence[str]) -> dict[str, int]:
    """Word -> id over the given (training) texts, most frequent first; ids 0 and 1 are padding and unknown."""
    counts = Counter(word for text in texts for word in tokenize(text))
    ranked = sorted(counts, key=lambda word: (-counts[word], word))
    return {word: i + 2 for i, word in enumerate(ranked)}


def token_ids(texts: Sequence[str], vocabulary: dict[str, int], max_length: int) -> torch.Tensor:
    """(N, max_length) int64 word ids, truncated and right-padded with 0; unknown words are 1."""
    ids = torch.full((len(texts), max_length), PAD, dtype=torch.int64)
    for row, text in enumerate(texts):
        words = [vocabulary.get(word, UNKNOWN) for word in tokenize(text)[:max_length]]
        ids[row, : len(words)] = torch.tensor(words, dtype=torch.int64)
    return ids


class TextHashCNN(nn.Module):
    """Word + position embeddings, a convolution over time, max pooling, explicit tf-idf features, hash layer.

    Args:
        vocab_size: number of word ids (vocabulary + 2).
        tfidf_dim: width of the explicit tf-idf features (the tf-idf vocabulary size).
        bits: code length.
        config: widths and dropout (:class:`TextHashConfig`).
    """

    def __init__(self, vocab_size: int, tfidf_dim: int, bits: int, config: TextHashConfig) -> None:
        super().__init__()
        self.words = nn.Embedding(vocab_size, config.embedding_dim, padding_idx=PAD)
        self.positions = nn.Embedding(config.max_length, config.position_dim)
        width = config.embedding_dim + config.position_dim
        self.conv = nn.Conv1d(width, config.filters, config.kernel_size, padding=config.kernel_size // 2)
        # a bag of tf-idf-weighted vectors = a linear map of the sparse tf-idf row, without densifying it
        self.explicit = nn.EmbeddingBag(tfidf_dim, config.explicit_dim, mode="sum") if config.explicit_dim else None
        self.dropout = nn.Dropout(config.dropout)
        self.hash_layer = nn.Linear(config.filters + config.explicit_dim, bits)

    def forward(self, ids: torch.Tensor, tfidf: sp.csr_matrix) -> torch.Tensor:
        """Bit logits.

        Args:
            ids: (B, L) int64 word ids (0 = padding).
            tfidf: (B, tfidf_dim) CSR explicit features (tf-idf rows).

        Returns:
            (B, bits) float32 logits; the code is their sign.
        """
        positions = self.positions(torch.arange(ids.shape[1], device=ids.device)).expand(ids.shape[0], -1, -1)
        words = torch.cat([self.words(ids), positions], dim=-1).transpose(1, 2)
        hidden = torch.relu(self.conv(words))
        hidden = hidden.masked_fill((ids == PAD).unsqueeze(1), float("-inf")).amax(dim=-1)
        hidden = torch.nan_to_num(hidden, neginf=0.0)  # an empty text has no word to pool
        if self.explicit is not None:
            explicit = self.explicit(torch.from_numpy(tfidf.indices.astype(np.int64)), torch.from_numpy(tfidf.indptr[:-1].astype(np.int64)),
                                     per_sample_weights=torch.from_numpy(tfidf.data.astype(np.float32)))
            hidden = torch.cat([hidden, torch.tanh(explicit)], dim=-1)
        return self.hash_layer(self.dropout(hidden))


def _bit_accuracy(model: TextHashCNN, ids: torch.Tensor, tfidf: sp.csr_matrix, targets: np.ndarray) -> float:
    """Share of target bits the model's codes reproduce."""
    if len(ids) == 0:
        return float("nan")
    return float((encode_texts(model, ids, tfidf) == targets).mean())


def fit_text_hasher(
    ids: torch.Tensor, tfidf: sp.csr_matrix, targets: np.ndarray, vocab_size: int, config: TextHashConfig, seed: int
) -> tuple[TextHashCNN, list[dict]]:
    """Train the CNN to predict the target bits (binary cross-entropy per bit), holding out a validation share.

    Args:
        ids: (N, L) int64 word ids of the training texts.
        tfidf: (N, V) CSR tf-idf of the same texts.
        targets: (N, bits) float32 in {-1, +1}, the stage-1 codes.
        vocab_size: number of word ids.
        config: network and training settings.
        seed: seeds the weights, the validation draw and the batch order.

    Returns:
        ``(model, history)``; history has one ``{"epoch", "loss", "validation_bit_accuracy"}`` per
        epoch (loss = mean training loss of the epoch; validation = held-out training texts).

    Raises:
        ValueError: targets and ids disagree in rows, or targets are not in {-1, +1}.
    """
    if len(targets) != len(ids) or tfidf.shape[0] != len(ids):
        raise ValueError(f"ids ({len(ids)}), tfidf ({tfidf.shape[0]}) and targets ({len(targets)}) must have one row per text")
    if not np.isin(targets, (-1.0, 1.0)).all():
        raise ValueError("targets must be in {-1, +1}: pass the codes of hhlib.text_targets.laplacian_target_codes")
    seed_everything(seed)
    order = np.random.Generator(np.random.PCG64(seed)).permutation(len(ids))
    held = order[: int(round(config.validation_fraction * len(ids)))]
    fit = np.sort(order[len(held):])
    model = TextHashCNN(vocab_size, tfidf.shape[1], targets.shape[1], config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    bits01 = torch.from_numpy((targets > 0).astype(np.float32))
    history = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        losses = []
        for batch in torch.randperm(len(fit)).split(config.batch_size):
            rows = fit[batch.numpy()]
            loss = nn.functional.binary_cross_entropy_with_logits(model(ids[rows], tfidf[rows]), bits01[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        history.append({"epoch": epoch, "loss": float(np.mean(losses)),
                        "validation_bit_accuracy": _bit_accuracy(model, ids[held], tfidf[held], targets[held])})
    return model.eval(), history


@torch.no_grad()
def encode_texts(model: TextHashCNN, ids: torch.Tensor, tfidf: sp.csr_matrix, batch_size: int = 1024) -> np.ndarray:
    """Binary codes of texts.

    Args:
        model: a trained :class:`TextHashCNN`.
        ids: (N, L) int64 word ids.
        tfidf: (N, V) CSR tf-idf (transformed with the training vectorizer).
        batch_size: texts per forward pass (no effect on the codes).

    Returns:
        (N, bits) float32 in {-1, +1} (a zero logit counts as -1, as in hhlib.hamming).
    """
    model.eval()
    logits = [model(ids[start:start + batch_size], tfidf[start:start + batch_size])
              for start in range(0, len(ids), batch_size)]
    return np.where(torch.cat(logits).numpy() > 0, 1.0, -1.0).astype(np.float32)


@dataclass
class TextProtocol:
    """The texts and labels of one seeded query / train / database split.

    Attributes:
        texts: ``{"query": [...], "train": [...], "database": [...]}``.
        labels: the same keys -> (n, C) float32 one-hot.
        class_names: the sections, in class order.
        fingerprint: the corpus fingerprint (:class:`hhlib.text_data.PackageCorpus`).
        split: sizes and per-class counts, JSON-ready.
    """

    texts: dict
    labels: dict
    class_names: list
    fingerprint: dict
    split: dict


def prepare_text_protocol(
    corpus: PackageCorpus, num_sections: int, query_per_class: int, train_per_class: int,
    database_per_class: int | None, seed: int,
) -> TextProtocol:
    """Keep the frequent sections and draw the seeded per-class split (:mod:`hhlib.text_data`).

    Args:
        corpus: the deduplicated corpus.
        num_sections: how many of the most frequent sections become classes.
        query_per_class: query texts per section.
        train_per_class: training texts per section.
        database_per_class: database texts per section (None = all the rest).
        seed: split seed.

    Returns:
        A :class:`TextProtocol`.

    Raises:
        hhlib.text_data.CorpusError: too few sections or texts for the asked sizes.
    """
    needed = query_per_class + train_per_class + (database_per_class or 1)
    rows, names, labels = select_sections(corpus, num_sections, needed)
    split = make_text_splits(labels, query_per_class, train_per_class, database_per_class, seed)
    parts = {"query": split.query, "train": split.train, "database": split.database}
    texts = {name: [corpus.texts[rows[i]] for i in index] for name, index in parts.items()}
    per_class = {name: dict(zip(names, labels[index].sum(axis=0).astype(int).tolist())) for name, index in parts.items()}
    summary = {"sizes": {name: len(index) for name, index in parts.items()}, "per_class": per_class, **split.params}
    return TextProtocol(texts, {name: labels[index] for name, index in parts.items()}, names, corpus.fingerprint, summary)


def _stage_one(protocol: TextProtocol, bits: int, mode: str, config: TextHashConfig, features: sp.csr_matrix) -> np.ndarray:
    """Target codes of the training texts for one code length and target mode."""
    labels = protocol.labels["train"].argmax(axis=1) if mode == "supervised" else None
    graph = heat_kernel_graph(features, config.num_neighbors, config.heat_kernel_sigma, labels=labels)
    return laplacian_target_codes(graph, bits)


def _summary(values: list[float]) -> dict:
    """Mean and sample std over seeds (hhlib.spread.mean_std); the text study writes 0.0 for one seed."""
    mean, std = mean_std(values)
    return {"mean": mean, "std": 0.0 if std is None else std}


def linear_hasher_codes(train_tfidf: sp.csr_matrix, targets: np.ndarray, *others: sp.csr_matrix, c: float = 1.0) -> list[np.ndarray]:
    """Baseline stage 2: one logistic regression per bit on tf-idf (the linear predictor of Self-Taught Hashing).

    Args:
        train_tfidf: (N, V) CSR tf-idf of the training texts.
        targets: (N, bits) float32 in {-1, +1}, the stage-1 codes.
        *others: CSR tf-idf of the texts to encode (e.g. queries, database).
        c: inverse regularisation strength (ours: sklearn's default 1.0).

    Returns:
        One (n, bits) float32 {-1, +1} array per matrix of ``others``. Deterministic (liblinear).
    """
    weights, biases = [], []
    for bit in targets.T:
        model = LogisticRegression(C=c, solver="liblinear").fit(train_tfidf, bit > 0)
        weights.append(model.coef_[0])
        biases.append(model.intercept_[0])
    weight, bias = np.stack(weights, axis=1), np.asarray(biases)
    return [np.where(other @ weight + bias > 0, 1.0, -1.0).astype(np.float32) for other in others]


def run_text_study(
    protocol: TextProtocol, bits_list: Sequence[int], seeds: Sequence[int], target_modes: Sequence[str],
    config: TextHashConfig, linear_baseline: bool = False,
) -> dict:
    """Stage 1 and stage 2 for every code length and target mode, trained once per seed, evaluated exactly.

    Evaluation: the queries' codes ranked against the database's by Hamming distance,
    :func:`hhlib.evaluate.evaluate` (mAP over the whole database, precision within radius 2).

    Args:
        protocol: from :func:`prepare_text_protocol`.
        bits_list: code lengths.
        seeds: training seeds (mean and sample std over them are reported).
        target_modes: names in :data:`TARGET_MODES`.
        config: network and training settings.
        linear_baseline: also fit :func:`linear_hasher_codes` to the same targets (method
            ``linear_tfidf``; deterministic, so one value and ``map_std`` 0).

    Returns:
        JSON-ready ``{"runs": [...], "protocol": ..., "config": ..., "chance_map": ...}``; each run
        has ``method``, ``target_mode``, ``bits``, ``map`` (mean), ``map_std``, ``map_per_seed``,
        ``precision_within_radius`` (mean), ``train_seconds`` (mean), ``history`` (seed 0's).

    Raises:
        KeyError: an unknown target mode (lists the valid ones).
        ValueError: no seeds.
    """
    unknown = [m for m in target_modes if m not in TARGET_MODES]
    if unknown:
        raise KeyError(f"unknown target modes {unknown}: valid are {', '.join(TARGET_MODES)}")
    if not seeds:
        raise ValueError("seeds is empty: pass at least one training seed (the study reports mean and std over seeds)")
    vectorizer, train_tfidf = tfidf_features(protocol.texts["train"])
    vocabulary = build_vocabulary(protocol.texts["train"])
    ids = {name: token_ids(texts, vocabulary, config.max_length) for name, texts in protocol.texts.items()}
    tfidf = {name: vectorizer.transform(texts).tocsr() for name, texts in protocol.texts.items()}
    runs = []
    for mode in target_modes:
        for bits in bits_list:
            targets = _stage_one(protocol, bits, mode, config, train_tfidf)
            runs.append(_train_and_evaluate(protocol, ids, tfidf, targets, len(vocabulary) + 2, config, seeds, mode))
            if linear_baseline:
                runs.append(_linear_run(protocol, tfidf, targets, mode))
    return {"runs": runs, "config": asdict(config), "vocabulary_size": len(vocabulary),
            "protocol": {"class_names": protocol.class_names, "fingerprint": protocol.fingerprint, **protocol.split},
            "chance_map": chance_map(protocol.labels["query"], protocol.labels["database"])}


def _train_and_evaluate(protocol, ids, tfidf, targets, vocab_size, config, seeds, mode) -> dict:
    """One code length and target mode over every seed."""
    per_seed, radius, seconds, histories = [], [], [], []
    for seed in seeds:
        start = time.perf_counter()
        model, history = fit_text_hasher(ids["train"], tfidf["train"], targets, vocab_size, config, seed)
        seconds.append(time.perf_counter() - start)
        result = evaluate(encode_texts(model, ids["query"], tfidf["query"]), encode_texts(model, ids["database"], tfidf["database"]),
                          protocol.labels["query"], protocol.labels["database"], tie_aware=False)
        per_seed.append(result["map"])
        radius.append(result["precision_within_radius"])
        histories.append(history)
    maps = _summary(per_seed)
    return {"method": "text_cnn", "target_mode": mode, "bits": targets.shape[1], "map": maps["mean"], "map_std": maps["std"],
            "map_per_seed": per_seed, "seeds": list(seeds), "precision_within_radius": _summary(radius)["mean"],
            "precision_within_radius_std": _summary(radius)["std"], "train_seconds": float(np.mean(seconds)),
            "final_validation_bit_accuracy": _summary([h[-1]["validation_bit_accuracy"] for h in histories])["mean"],
            "history": histories[0], "topk": len(protocol.labels["database"])}


def _linear_run(protocol: TextProtocol, tfidf: dict, targets: np.ndarray, mode: str) -> dict:
    """The linear baseline for one code length and target mode."""
    start = time.perf_counter()
    query, database = linear_hasher_codes(tfidf["train"], targets, tfidf["query"], tfidf["database"])
    seconds = time.perf_counter() - start
    result = evaluate(query, database, protocol.labels["query"], protocol.labels["database"], tie_aware=False)
    return {"method": "linear_tfidf", "target_mode": mode, "bits": targets.shape[1], "map": result["map"], "map_std": 0.0,
            "map_per_seed": [result["map"]], "seeds": [], "deterministic": True,
            "precision_within_radius": result["precision_within_radius"], "precision_within_radius_std": 0.0,
            "train_seconds": seconds, "topk": len(protocol.labels["database"])}


def chance_map(query_labels: np.ndarray, database_labels: np.ndarray) -> float:
    """mAP of a random ranking: the mean share of database items relevant to a query (single-label case)."""
    relevant = (query_labels @ database_labels.T > 0).mean(axis=1)
    return float(relevant.mean())


def results_table(study: dict) -> pd.DataFrame:
    """One row per run of the study: target mode, bits, mAP mean and std, precision within radius 2, seconds.

    Args:
        study: the dict of :func:`run_text_study` (or its copy in metrics.json).

    Returns:
        A DataFrame with columns ``method, target_mode, bits, map, map_std, seeds,
        precision_within_radius, train_seconds`` (``seeds`` = 0 for a deterministic baseline;
        ``hhlib.visualize.results_bars`` plots it).
    """
    columns = ["method", "target_mode", "bits", "map", "map_std", "precision_within_radius", "train_seconds"]
    table = pd.DataFrame([{key: run[key] for key in columns} for run in study["runs"]], columns=columns)
    table.insert(5, "seeds", [len(run["seeds"]) for run in study["runs"]])
    return table


def text_readings(study: dict) -> list[str]:
    """Sentences that read the study's numbers (generated from them, never typed).

    Args:
        study: the dict of :func:`run_text_study` (or its copy in metrics.json).

    Returns:
        One sentence per CNN run, then per code length the target modes compared, then the CNN
        against the linear baseline where it ran.
    """
    chance, lines, by_key = study["chance_map"], [], {}
    for run in [r for r in study["runs"] if r.get("method", "text_cnn") == "text_cnn"]:
        n = len(run["map_per_seed"])
        lines.append(f"{run['target_mode']} targets, {run['bits']} bits: mAP {run['map']:.3f} ± {run['map_std']:.3f} "
                     f"({n} seed{'s' if n > 1 else ''}), {run['map'] / chance:.1f}x chance ({chance:.3f}); the CNN reproduces "
                     f"{100 * run['final_validation_bit_accuracy']:.0f}% of the held-out target bits.")
        by_key[(run["target_mode"], run["bits"])] = run
    for bits in sorted({b for _, b in by_key}):
        if ("unsupervised", bits) in by_key and ("supervised", bits) in by_key:
            lines.append(_compare(by_key[("unsupervised", bits)], by_key[("supervised", bits)]))
    for base in [r for r in study["runs"] if r.get("method") == "linear_tfidf"]:
        if (base["target_mode"], base["bits"]) in by_key:
            lines.append(_against_linear(by_key[(base["target_mode"], base["bits"])], base))
    return lines


def _against_linear(cnn: dict, base: dict) -> str:
    """One sentence: the CNN against the deterministic linear baseline on the same targets."""
    gap = cnn["map"] - base["map"]
    verdict = "within the spread" if abs(gap) <= cnn["map_std"] else ("higher" if gap > 0 else "lower")
    # Xu et al. (2015) report their CNN above the hashing baselines they compare with
    note = "; this disagrees with the paper, where the CNN comes out ahead" if verdict == "lower" else ""
    return (f"{cnn['target_mode'].capitalize()} targets, {cnn['bits']} bits: the CNN's mAP is {gap:+.3f} against a "
            f"per-bit logistic regression on tf-idf ({base['map']:.3f}, deterministic): {verdict} "
            f"(CNN std {cnn['map_std']:.3f}){note}.")


def _compare(first: dict, second: dict) -> str:
    """One sentence: is the difference between two runs outside their spread?"""
    gap = second["map"] - first["map"]
    spread = max(first["map_std"], second["map_std"])
    verdict = "within the spread" if abs(gap) <= spread else ("higher" if gap > 0 else "lower")
    return (f"At {first['bits']} bits, supervised targets give mAP {gap:+.3f} against unsupervised ones: "
            f"{verdict} (largest std {spread:.3f}).")
