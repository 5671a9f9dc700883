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


def per_class_subsets(
    labels: torch.Tensor, seed: int, train_fraction: float, val_fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint (search-train, search-val) indices sampled per class, as PC-DARTS's ImageNet search
    (train_search_imagenet.py: "we random sample 10% and 2.5% from training set (each class) as train
    and val"): of each class's examples, in an order drawn from ``torch.Generator().manual_seed(seed)``,
    the first ``round(train_fraction * n_c)`` (at least 1) go to search-train and the next
    ``round(val_fraction * n_c)`` (at least 1) to search-val. Both are sorted ascending."""
    if not (0.0 < train_fraction < 1.0 and 0.0 < val_fraction < 1.0) or train_fraction + val_fraction > 1.0:
        raise ConfigError(
            f"train_fraction ({train_fraction}) and val_fraction ({val_fraction}) must each lie in (0, 1) "
            f"and sum to at most 1"
        )
    labels = labels.to("cpu", torch.int64)
    generator = torch.Generator().manual_seed(int(seed))
    train_parts, val_parts = [], []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        n = int(members.numel())
        if n < 2:
            raise DatasetError(f"class {c} has {n} training example(s); a per-class search split needs 2")
        order = members[torch.randperm(n, generator=generator)]
        k_train = min(max(round(train_fraction * n), 1), n - 1)
        k_val = min(max(round(val_fraction * n), 1), n - k_train)
        train_parts.append(order[:k_train])
        val_parts.append(order[k_train : k_train + k_val])
    return torch.cat(train_parts).sort().values, torch.cat(val_parts).sort().values
