"""The 2-D t-SNE maps of a trained run (notebook 04): continuous outputs and binary codes of the queries.

HybridHash (ICMR 2024) Sec. 4.4 shows t-SNE maps of its codes. This module encodes the first
``points`` queries with a run's final checkpoint, projects both the continuous outputs (tanh, before
the sign) and the stored binary codes to 2-D, and measures how well the classes separate in each map
(silhouette), so the notebook can say in numbers what the picture shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hhlib import artifacts, visualize

__all__ = ["run_tsne_maps"]


def run_tsne_maps(run_dir: str | Path, queries: Any, bits: int, device: str = "auto", batch_size: int = 256,
                  points: int = 1000, seed: int = 0, perplexity: float = 30.0) -> dict[str, Any]:
    """t-SNE maps of one run's query outputs and codes, with the class silhouette of each.

    Args:
        run_dir: the run's folder (``checkpoint.pt`` and ``codes.npz``).
        queries: the query Dataset the run's codes were computed on (same order).
        bits: the run's code length (for the panel titles).
        device: where to encode.
        batch_size: images per encoding batch.
        points: how many queries (the first ones) to project.
        seed: t-SNE ``random_state``.
        perplexity: t-SNE perplexity.

    Returns:
        ``{"maps": {title: (N, 2) array}, "labels": (N, C) array, "separation": {"continuous": s, "codes": s}}``.
    """
    from hhlib import train

    run_dir = Path(run_dir)
    network = train.load_trained_model(run_dir / artifacts.CHECKPOINT_FILE, device)
    outputs, labels = train.encode(network, queries, device, batch_size, continuous=True, limit=points)
    codes = artifacts.load_codes(run_dir / artifacts.CODES_FILE)["query_codes"][: len(outputs)]
    inputs = {"continuous": outputs, "codes": np.asarray(codes, dtype=np.float32)}
    titles = {"continuous": f"continuous outputs, {bits} bits", "codes": f"binary codes, {bits} bits"}
    maps = {kind: visualize.tsne_projection(values, seed, perplexity) for kind, values in inputs.items()}
    return {
        "maps": {titles[kind]: points_2d for kind, points_2d in maps.items()},
        "labels": labels,
        "separation": {kind: visualize.embedding_separation(points_2d, labels) for kind, points_2d in maps.items()},
    }
