"""The search split of the paper (Sec. 4.1): the training set halved into search-train and search-val."""

from __future__ import annotations

import torch

from wcbench.data.datasets import ArrayDataset
from wcbench.errors import ConfigError, DatasetError


def search_split(n: int, seed: int, fraction: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (search-train, search-val) of a training set of ``n`` examples, fixed by ``seed``.

    A random permutation from ``torch.Generator().manual_seed(seed)``; the first ``floor(fraction * n)``
    examples of it train the weights, the rest validate the architecture (CIFAR: 25k + 25k). The two
    int64 index tensors are disjoint, cover ``range(n)`` and are each sorted ascending.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"search split fraction must be between 0 and 1 (exclusive), got {fraction}")
    if n < 2:
        raise DatasetError(f"a search split needs at least 2 training examples, got {n}")
    k = min(max(int(fraction * n), 1), n - 1)
    generator = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=generator)
    return perm[:k].sort().values, perm[k:].sort().values


def search_split_dataset(
    ds_train: ArrayDataset, seed: int, fraction: float = 0.5
) -> tuple[ArrayDataset, ArrayDataset]:
    """:func:`search_split` applied to a dataset: (search-train, search-val) subsets."""
    train_idx, val_idx = search_split(len(ds_train), seed, fraction)
    return ds_train.subset(train_idx), ds_train.subset(val_idx)
