"""A validation protocol carved from the training images, for choosing hyperparameters and epochs.

The study never tunes on the query set. A hyperparameter search trains on part of the training
split and ranks with the rest: ``per_class`` held-out training images per class become the
validation queries, and the remaining training images are both what the network trains on and the
database the validation queries rank (as in the CIFAR-10 protocols whose database holds the
training images). The draw is seeded per class like the protocol's own (hhlib.splits), so a seed
gives the same validation split on any machine. The query and database splits of the protocol are
not touched.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hhlib.data import SplitDataset, Splits
from hhlib.splits import draw_per_class, random_order

__all__ = ["validation_splits"]


def validation_splits(splits: Splits, per_class: int, seed: int = 0) -> Splits:
    """The validation protocol of a split: held-out training images rank the rest of the training images.

    Args:
        splits: the protocol's splits (``hhlib.data.load_splits``).
        per_class: validation queries per class, drawn from the training images.
        seed: seed of the draw (PCG64), independent of the protocol's ``split_seed``.

    Returns:
        Splits whose ``query`` is the held-out images (eval transform), ``train`` the remaining
        training images (train transform), ``database`` and ``train_eval`` those same remaining images
        (eval transform); mAP over the whole validation database (``topk`` None).

    Raises:
        ValueError: ``per_class`` < 1, or a class without ``per_class`` training images to hold out
            plus at least one to train on.
    """
    if not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"validation per_class={per_class!r} must be a positive int (e.g. 50)")
    train = splits.train
    labels = train.labels
    counts = labels.sum(axis=0)
    short = [int(c) for c in np.flatnonzero(counts <= per_class)]
    if short:
        raise ValueError(f"classes {short} have at most {per_class} training images: hold out fewer per class "
                         f"(smallest class has {int(counts.min())})")
    taken = np.zeros(len(labels), dtype=bool)
    held_out = draw_per_class(labels, per_class, random_order(len(labels), np.random.default_rng(seed)), taken)
    kept = np.flatnonzero(~taken)
    eval_transform = splits.query.transform
    query = SplitDataset(train.source, train.indices[held_out], eval_transform)
    remaining_eval = SplitDataset(train.source, train.indices[kept], eval_transform)
    params = {**splits.params, "validation_per_class": per_class, "validation_seed": seed}
    return dataclasses.replace(
        splits, topk=None, query=query, train=SplitDataset(train.source, train.indices[kept], train.transform),
        database=remaining_eval, train_eval=remaining_eval, params=params,
    )
