"""Datasets, the search split and loaders.

Importing this package registers the built-in datasets in :data:`wcbench.registry.DATASETS`
(``cifar10``, ``cifar100``, ``stl10``, ``mnist``, ``fashion-mnist``, ``digits``, ``imagefolder``).
"""

from wcbench.data.datasets import (
    DATASET_INFO,
    ArrayDataset,
    DatasetInfo,
    channel_stats,
    get_dataset,
    resolve_data_root,
)
from wcbench.data.imagefolder import imagefolder as _imagefolder  # noqa: F401  (registers it)
from wcbench.data.imagenet import IMAGENET_MEAN, IMAGENET_STD, imagefolder_loader, imagenet_transform
from wcbench.data.loaders import DeviceLoader, Normalize, normalize
from wcbench.data.split import search_split, search_split_dataset

__all__ = [
    "DATASET_INFO",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ArrayDataset",
    "DatasetInfo",
    "DeviceLoader",
    "channel_stats",
    "get_dataset",
    "imagefolder_loader",
    "imagenet_transform",
    "Normalize",
    "normalize",
    "resolve_data_root",
    "search_split",
    "search_split_dataset",
]
