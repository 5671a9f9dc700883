"""Datasets as uint8 tensors in memory: the real on-disk formats, read without surprises.

Every dataset is a factory registered in :data:`wcbench.registry.DATASETS` under its name and called as
``factory(split, root, download) -> ArrayDataset``; :func:`get_dataset` is the front door.

Formats (``root`` is the data root, see :func:`resolve_data_root`):

- ``cifar10`` / ``cifar100``: torchvision's python-pickle layout (``cifar-10-batches-py``,
  ``cifar-100-python``). torchvision's ``CIFAR10``/``CIFAR100`` refuse any file whose MD5 differs from
  the official archive, so wcbench reads these pickles with its own small reader that mirrors
  torchvision's exact layout (same files, same keys, ``encoding="latin1"``, ``labels`` else
  ``fine_labels``, rows of 3072 bytes in R,G,B planes) through an unpickler that only admits numpy
  arrays. The reader is used for every file, official or not; downloading goes through torchvision's
  own URL and MD5 for the archive. A test checks that torchvision reads the fixtures identically.
- ``stl10``: torchvision's binary layout (``stl10_binary/{train,test}_{X,y}.bin``), read the way
  ``torchvision.datasets.STL10`` reads it (column-major 3x96x96 planes, labels 1..10 made 0-based); own
  reader for the same MD5 reason, and because torchvision also insists on the 2.6 GB unlabeled split.
- ``mnist`` / ``fashion-mnist``: torchvision's idx files in ``<root>/MNIST/raw`` /
  ``<root>/FashionMNIST/raw``, parsed by torchvision's own ``read_image_file``/``read_label_file``.
- ``digits``: the embedded data (scikit-learn's ``load_digits``), nothing on disk.
- ``imagefolder:<path>``: see :mod:`wcbench.data.imagefolder`.

Every user-facing problem raises :class:`~wcbench.errors.DatasetError` with a one-line message that
names the expected path and layout and the ways out.
"""

from __future__ import annotations

import functools
import importlib
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wcbench.errors import ConfigError, DatasetError
from wcbench.registry import DATASETS

Triple = tuple[float, float, float]

QUICK_HINT = "use --preset quick for the embedded digits data"


# --------------------------------------------------------------------------------------------------
# The in-memory dataset


@dataclass(frozen=True, eq=False)
class ArrayDataset:
    """A whole split in memory: uint8 images (N, 3, H, W) and int64 labels (N,), both on the CPU.

    ``mean``/``std`` are the per-channel normalisation constants of the dataset (of its train split),
    on the [0, 1] scale.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    mean: Triple
    std: Triple

    def __post_init__(self) -> None:
        im, lb = self.images, self.labels
        if im.dtype != torch.uint8 or im.dim() != 4 or im.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {im.dtype} {tuple(im.shape)}")
        if lb.dtype != torch.int64 or lb.dim() != 1 or lb.shape[0] != im.shape[0]:
            raise ValueError(f"labels must be int64 ({im.shape[0]},), got {lb.dtype} {tuple(lb.shape)}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std must have three entries (R, G, B)")
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        """Image height H (every built-in dataset is square)."""
        return int(self.images.shape[2])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, indices: torch.Tensor | Sequence[int] | np.ndarray) -> ArrayDataset:
        """The examples at ``indices`` (in that order), same name, classes and normalisation."""
        idx = torch.as_tensor(np.asarray(indices) if not isinstance(indices, torch.Tensor) else indices)
        idx = idx.to(dtype=torch.int64, device="cpu").reshape(-1)
        return ArrayDataset(
            name=self.name,
            images=self.images.index_select(0, idx),
            labels=self.labels.index_select(0, idx),
            classes=self.classes,
            mean=self.mean,
            std=self.std,
        )

    def __repr__(self) -> str:
        return (
            f"ArrayDataset(name={self.name!r}, n={len(self)}, shape={tuple(self.images.shape[1:])}, "
            f"classes={self.num_classes})"
        )


# --------------------------------------------------------------------------------------------------
# Static facts


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about a dataset before loading it. ``None`` = depends on the data (imagefolder).

    Supports ``info.mean`` and ``info["mean"]`` alike.
    """

    num_classes: int | None
    image_size: int | None
    mean: Triple | None
    std: Triple | None
    layout: str
    downloadable: bool
    splits: tuple[str, ...] = ("train", "test")

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)


def _padded_stats(mean: float, std: float, inner: int = 28, outer: int = 32) -> tuple[Triple, Triple]:
    """Constants of 28x28 grey images once zero-padded to 32x32, from the usual unpadded constants."""
    frac = inner * inner / (outer * outer)
    m = mean * frac
    second = (std * std + mean * mean) * frac
    s = (second - m * m) ** 0.5
    return (m, m, m), (s, s, s)


_MNIST_MEAN, _MNIST_STD = _padded_stats(0.1307, 0.3081)  # the usual MNIST train constants
_FMNIST_MEAN, _FMNIST_STD = _padded_stats(0.2860, 0.3530)  # the usual Fashion-MNIST train constants

# digits: recomputed by tests from the train split (tests/test_data.py::test_digits_constants)
_DIGITS_MEAN: Triple = (0.3047368450, 0.3047368450, 0.3047368450)
_DIGITS_STD: Triple = (0.3231481756, 0.3231481756, 0.3231481756)

DATASET_INFO: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo(
        10,
        32,
        (0.49139968, 0.48215827, 0.44653124),
        (0.24703233, 0.24348505, 0.26158768),
        "torchvision's CIFAR-10 python layout: "
        "cifar-10-batches-py/{data_batch_1..data_batch_5,test_batch,batches.meta}",
        True,
    ),
    "cifar100": DatasetInfo(
        100,
        32,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        "torchvision's CIFAR-100 python layout: cifar-100-python/{train,test,meta}",
        True,
    ),
    "stl10": DatasetInfo(
        10,
        96,
        (0.4467, 0.4398, 0.4066),
        (0.2603, 0.2566, 0.2713),
        "torchvision's STL-10 binary layout: stl10_binary/{train_X,train_y,test_X,test_y}.bin",
        True,
    ),
    "mnist": DatasetInfo(
        10,
        32,
        _MNIST_MEAN,
        _MNIST_STD,
        "torchvision's MNIST layout: MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte",
        True,
    ),
    "fashion-mnist": DatasetInfo(
        10,
        32,
        _FMNIST_MEAN,
        _FMNIST_STD,
        "torchvision's FashionMNIST layout: FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte",
        True,
    ),
    "digits": DatasetInfo(
        10,
        32,
        _DIGITS_MEAN,
        _DIGITS_STD,
        "scikit-learn's load_digits, embedded (no files)",
        False,
        ("train", "val", "test"),
    ),
    "imagefolder": DatasetInfo(
        None,
        None,
        None,
        None,
        "an image folder: <path>/train/<class>/*.png|*.jpg and <path>/test/<class>/*.png|*.jpg",
        False,
    ),
}

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
MNIST_CLASSES = tuple(
    f"{i} - {w}" for i, w in enumerate("zero one two three four five six seven eight nine".split())
)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGITS_CLASSES = tuple(str(i) for i in range(10))


# --------------------------------------------------------------------------------------------------
# Errors, roots, front door


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _ways_out(name: str) -> str:
    info = DATASET_INFO.get(name)
    if info is not None and info.downloadable:
        return f"pass --download to fetch it, or {QUICK_HINT}"
    return f"it cannot be downloaded automatically: put it there, or {QUICK_HINT}"


def missing_error(name: str, path: Path | str, detail: str = "", layout: str | None = None) -> DatasetError:
    """The one-line 'not found' error: path, expected layout, ways out."""
    layout = layout or DATASET_INFO[name].layout
    detail = f": {detail}" if detail else ""
    return DatasetError(
        _one_line(f"dataset {name!r} not found at {path}{detail} (expected {layout}); {_ways_out(name)}")
    )


def corrupt_error(name: str, path: Path | str, reason: str, layout: str | None = None) -> DatasetError:
    """The one-line 'corrupt file' error: names the file and what is wrong with it."""
    layout = layout or DATASET_INFO[name].layout
    fix = (
        f"delete it and pass --download to fetch it again, or {QUICK_HINT}"
        if DATASET_INFO.get(name) is not None and DATASET_INFO[name].downloadable
        else f"replace it, or {QUICK_HINT}"
    )
    return DatasetError(
        _one_line(f"dataset {name!r}: corrupt file {path}: {reason} (expected {layout}); {fix}")
    )


def check_split(name: str, split: str) -> None:
    """DatasetError listing the valid splits when ``split`` is not one of them."""
    valid = DATASET_INFO[name].splits
    if split not in valid:
        raise DatasetError(f"dataset {name!r} has no split {split!r}; valid splits: {', '.join(valid)}")


def resolve_data_root(root: str | Path | None = None) -> Path:
    """The data root: ``root`` if given, else ``$WCBENCH_DATA``, else ``~/.cache/wcbench/data``."""
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get("WCBENCH_DATA")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/wcbench/data").expanduser()


def get_dataset(
    name: str,
    split: str = "train",
    root: str | Path | None = None,
    download: bool = False,
    *,
    image_size: int | None = None,
) -> ArrayDataset:
    """Load split ``split`` of dataset ``name`` from the data root (see :func:`resolve_data_root`).

    ``name`` is a registered dataset (``wcbench list datasets``) or ``imagefolder:<path>`` (a relative
    path is looked up in the working directory, then in the data root). ``image_size`` only applies to
    image folders. Unknown names raise RegistryError; missing or malformed data raises DatasetError;
    nothing is downloaded unless ``download`` is true.
    """
    key, sep, arg = str(name).partition(":")
    factory = DATASETS.get(key)  # RegistryError with did-you-mean
    data_root = resolve_data_root(root)
    if key == "imagefolder":
        if not arg:
            raise DatasetError(
                "dataset 'imagefolder' needs a path: imagefolder:<path> "
                f"(expected {DATASET_INFO['imagefolder'].layout}); or {QUICK_HINT}"
            )
        path = Path(arg).expanduser()
        if not path.is_absolute() and not path.exists() and (data_root / path).exists():
            path = data_root / path
        return factory(split, path, download, image_size=image_size)
    if sep:
        raise DatasetError(f"dataset {key!r} takes no path (got {name!r}); only imagefolder:<path> does")
    if image_size is not None and key in DATASET_INFO and image_size != DATASET_INFO[key].image_size:
        raise ConfigError(
            f"dataset {key!r} has a fixed image size {DATASET_INFO[key].image_size}; "
            f"image_size={image_size} only applies to imagefolder:<path>"
        )
    if key in DATASET_INFO:
        check_split(key, split)
    return factory(split, data_root, download)


def channel_stats(images: torch.Tensor) -> tuple[Triple, Triple]:
    """Per-channel mean and (population) std of uint8 images (N, 3, H, W), on the [0, 1] scale.

    Exact: computed from each channel's 256-bin histogram.
    """
    if images.shape[0] == 0:
        raise ValueError("no images to compute statistics from")
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
        p = hist / hist.sum()
        mean = (p * values).sum()
        var = (p * (values - mean).square()).sum()
        means.append(float(mean))
        stds.append(float(var.sqrt()))
    return tuple(means), tuple(stds)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------
# Downloads: the only place that touches the network (tests patch ``fetch``)


def _download_archive(tv_class: Any, root: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(tv_class.url, str(root), filename=tv_class.filename, md5=tv_class.tgz_md5)


def fetch(name: str, root: Path, split: str) -> None:
    """Download ``name`` into ``root`` with torchvision's own URLs and checksums."""
    import torchvision.datasets as tvd

    root.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        _download_archive(tvd.CIFAR10, root)
    elif name == "cifar100":
        _download_archive(tvd.CIFAR100, root)
    elif name == "stl10":
        _download_archive(tvd.STL10, root)
    elif name == "mnist":
        tvd.MNIST(str(root), train=split == "train", download=True)
    elif name == "fashion-mnist":
        tvd.FashionMNIST(str(root), train=split == "train", download=True)
    else:  # pragma: no cover - guarded by DATASET_INFO.downloadable
        raise DatasetError(f"dataset {name!r} cannot be downloaded; {QUICK_HINT}")


def _maybe_download(name: str, root: Path, split: str, present: Callable[[], bool], download: bool) -> None:
    if not download or present():
        return
    try:
        fetch(name, root, split)
    except DatasetError:
        raise
    except Exception as exc:  # network, disk, checksum: all reach the user as one line
        raise DatasetError(
            _one_line(
                f"dataset {name!r}: download into {root} failed ({type(exc).__name__}: {exc}); "
                f"check the connection or put the files there yourself "
                f"(expected {DATASET_INFO[name].layout}), or {QUICK_HINT}"
            )
        ) from exc


# --------------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100: torchvision's pickle layout


_CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "meta_key": "label_names",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "meta_key": "fine_label_names",
    },
}

# Globals a CIFAR pickle may name: numpy's array reconstruction (numpy 1 spells it numpy.core, which
# is what the official files, written by Python 2, name; numpy 2 spells it numpy._core) and the
# bytes helper Python 3 uses for protocol-2 pickles. Anything else is refused.
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that admits numpy arrays and plain Python containers only."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core") :]
        return getattr(importlib.import_module(module), name)


def load_pickle(path: Path) -> Any:
    """Load a CIFAR-style pickle as torchvision does (``encoding="latin1"``), numpy arrays only."""
    with open(path, "rb") as f:
        return _ArrayUnpickler(f, encoding="latin1").load()


def _read_cifar_batch(name: str, path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        entry = load_pickle(path)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise corrupt_error(name, path, f"unreadable pickle: {type(exc).__name__}: {exc}") from exc
    if not isinstance(entry, dict) or "data" not in entry:
        raise corrupt_error(name, path, "not a dict with a 'data' entry")
    data = entry["data"]
    labels = entry["labels"] if "labels" in entry else entry.get("fine_labels")  # as torchvision
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise corrupt_error(name, path, f"'data' is {dtype} {shape}, not uint8 (N, 3072)")
    if labels is None:
        raise corrupt_error(name, path, "no 'labels' or 'fine_labels' entry")
    try:
        lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise corrupt_error(name, path, f"labels are not integers ({exc})") from exc
    if lab.shape[0] != data.shape[0]:
        raise corrupt_error(name, path, f"{data.shape[0]} images but {lab.shape[0]} labels")
    if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
        raise corrupt_error(name, path, f"labels outside 0..{num_classes - 1}")
    return data, lab


def _load_cifar(name: str, split: str, root: Path, download: bool) -> ArrayDataset:
    check_split(name, split)
    spec = _CIFAR[name]
    info = DATASET_INFO[name]
    folder = Path(root) / spec["folder"]
    needed = [*spec["train"], *spec["test"], spec["meta"]]
    _maybe_download(name, Path(root), split, lambda: all((folder / f).is_file() for f in needed), download)
    if not folder.is_dir():
        raise missing_error(name, folder)
    for fname in [*spec[split], spec["meta"]]:
        if not (folder / fname).is_file():
            raise missing_error(name, folder, f"missing {fname}")
    meta_path = folder / spec["meta"]
    try:
        meta = load_pickle(meta_path)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise corrupt_error(name, meta_path, f"unreadable pickle: {type(exc).__name__}: {exc}") from exc
    classes = meta.get(spec["meta_key"]) if isinstance(meta, dict) else None
    if not isinstance(classes, (list, tuple)) or len(classes) != info.num_classes:
        raise corrupt_error(
            name, meta_path, f"no list of {info.num_classes} names under {spec['meta_key']!r}"
        )
    datas, labels = [], []
    for fname in spec[split]:
        d, lab = _read_cifar_batch(name, folder / fname, info.num_classes)
        datas.append(d)
        labels.append(lab)
    images = torch.from_numpy(np.ascontiguousarray(np.vstack(datas).reshape(-1, 3, 32, 32)))
    return ArrayDataset(
        name=name,
        images=images,
        labels=torch.from_numpy(np.concatenate(labels)),
        classes=tuple(str(c) for c in classes),
        mean=info.mean,
        std=info.std,
    )


@DATASETS.register("cifar10")
def cifar10(split: str, root: Path, download: bool = False) -> ArrayDataset:
    """CIFAR-10 (50k/10k, 32x32) from ``root/cifar-10-batches-py`` (torchvision's layout)."""
    return _load_cifar("cifar10", split, root, download)


@DATASETS.register("cifar100")
def cifar100(split: str, root: Path, download: bool = False) -> ArrayDataset:
    """CIFAR-100 (50k/10k, 32x32, fine labels) from ``root/cifar-100-python`` (torchvision's layout)."""
    return _load_cifar("cifar100", split, root, download)


# --------------------------------------------------------------------------------------------------
# STL-10: torchvision's binary layout


_STL_PIXELS = 3 * 96 * 96


@DATASETS.register("stl10")
def stl10(split: str, root: Path, download: bool = False) -> ArrayDataset:
    """STL-10 labelled splits (5k train / 8k test, 96x96, 10 classes) from ``root/stl10_binary``.

    Reads ``<split>_X.bin`` (uint8, each image 3 planes of 96x96 in column-major order) and
    ``<split>_y.bin`` (uint8 labels 1..10) exactly as ``torchvision.datasets.STL10`` does; the unlabeled
    split is not needed. Images come out row-major (N, 3, 96, 96), labels 0..9.
    """
    name = "stl10"
    check_split(name, split)
    info = DATASET_INFO[name]
    folder = Path(root) / "stl10_binary"
    files = [f"{s}_{k}.bin" for s in ("train", "test") for k in ("X", "y")]
    _maybe_download(name, Path(root), split, lambda: all((folder / f).is_file() for f in files), download)
    if not folder.is_dir():
        raise missing_error(name, folder)
    x_path, y_path = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
    for p in (x_path, y_path):
        if not p.is_file():
            raise missing_error(name, folder, f"missing {p.name}")
    raw = np.fromfile(x_path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _STL_PIXELS:
        raise corrupt_error(name, x_path, f"{raw.size} bytes is not a whole number of 3x96x96 images")
    images = raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)
    y = np.fromfile(y_path, dtype=np.uint8)
    if y.shape[0] != images.shape[0]:
        raise corrupt_error(
            name, y_path, f"{y.shape[0]} labels for {images.shape[0]} images in {x_path.name}"
        )
    if y.min() < 1 or y.max() > 10:
        raise corrupt_error(name, y_path, "labels outside 1..10")
    return ArrayDataset(
        name=name,
        images=torch.from_numpy(np.ascontiguousarray(images)),
        labels=torch.from_numpy(y.astype(np.int64) - 1),
        classes=STL10_CLASSES,
        mean=info.mean,
        std=info.std,
    )


# --------------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST: torchvision's idx files, padded to 3x32x32


def _gunzip_if_needed(raw: Path, fname: str) -> None:
    """A ``*-ubyte.gz`` without its ``*-ubyte`` (e.g. Debian's dataset-fashion-mnist): unpack it there."""
    target, packed = raw / fname, raw / f"{fname}.gz"
    if target.is_file() or not packed.is_file():
        return
    import gzip
    import shutil

    from wcbench.files import atomic_writer

    try:
        with gzip.open(packed, "rb") as src, atomic_writer(target) as dst:
            shutil.copyfileobj(src, dst)
    except (OSError, EOFError) as exc:
        raise DatasetError(_one_line(f"could not unpack {packed} into {target} ({exc})")) from exc


def _load_mnist_like(
    name: str, folder_name: str, classes: tuple[str, ...], split: str, root: Path, download: bool
) -> ArrayDataset:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    check_split(name, split)
    info = DATASET_INFO[name]
    raw = Path(root) / folder_name / "raw"
    prefix = "train" if split == "train" else "t10k"
    img_name, lab_name = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
    all_files = [f"{p}-{k}" for p in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    if raw.is_dir():
        for f in (img_name, lab_name):
            _gunzip_if_needed(raw, f)
    _maybe_download(name, Path(root), split, lambda: all((raw / f).is_file() for f in all_files), download)
    if not raw.is_dir():
        raise missing_error(name, raw)
    for f in (img_name, lab_name):
        if not (raw / f).is_file():
            raise missing_error(name, raw, f"missing {f}")

    def read(reader: Callable[[str], torch.Tensor], path: Path) -> torch.Tensor:
        try:
            return reader(str(path))
        except (AssertionError, RuntimeError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise corrupt_error(name, path, f"not a valid idx file: {type(exc).__name__}: {exc}") from exc

    images = read(read_image_file, raw / img_name)
    labels = read(read_label_file, raw / lab_name)
    if tuple(images.shape[1:]) != (28, 28):
        raise corrupt_error(name, raw / img_name, f"images are {tuple(images.shape[1:])}, not 28x28")
    if labels.shape[0] != images.shape[0]:
        raise corrupt_error(name, raw / lab_name, f"{labels.shape[0]} labels for {images.shape[0]} images")
    if labels.numel() and (labels.min() < 0 or labels.max() > 9):
        raise corrupt_error(name, raw / lab_name, "labels outside 0..9")
    return ArrayDataset(
        name=name,
        images=pad_grey_to_rgb32(images),
        labels=labels.to(torch.int64),
        classes=classes,
        mean=info.mean,
        std=info.std,
    )


def pad_grey_to_rgb32(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) grey -> (N, 3, 32, 32): zero-pad 2 pixels each side, replicate to 3 channels."""
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    return padded.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


@DATASETS.register("mnist")
def mnist(split: str, root: Path, download: bool = False) -> ArrayDataset:
    """MNIST (60k/10k) from ``root/MNIST/raw``, converted to 3x32x32 so every network takes one shape.

    The 28x28 grey digits are zero-padded by 2 pixels on each side (the LeNet-5 convention) and the grey
    channel is replicated to R, G and B. ``mean``/``std`` are the usual MNIST train constants
    (0.1307/0.3081) carried over exactly to the padded images.
    """
    return _load_mnist_like("mnist", "MNIST", MNIST_CLASSES, split, root, download)


@DATASETS.register("fashion-mnist")
def fashion_mnist(split: str, root: Path, download: bool = False) -> ArrayDataset:
    """Fashion-MNIST (60k/10k) from ``root/FashionMNIST/raw``, converted to 3x32x32 like :func:`mnist`.

    Zero-padded 28x28 -> 32x32, grey replicated to 3 channels; constants from the usual 0.2860/0.3530.
    Gzipped idx files (as Debian's ``dataset-fashion-mnist`` ships them) are unpacked in place.
    """
    return _load_mnist_like("fashion-mnist", "FashionMNIST", FASHION_MNIST_CLASSES, split, root, download)


# --------------------------------------------------------------------------------------------------
# digits: the embedded dataset

DIGITS_FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32)).unsqueeze(1) * (255.0 / 16.0)
    x = torch.nn.functional.interpolate(
        x, size=(32, 32), mode="bilinear", align_corners=False, antialias=False
    )
    images = x.round_().clamp_(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    idx = np.arange(len(labels))
    train, rest = train_test_split(idx, test_size=0.4, stratify=bunch.target, random_state=0)
    val, test = train_test_split(rest, test_size=0.5, stratify=bunch.target[rest], random_state=0)
    splits = {k: torch.from_numpy(np.sort(v)) for k, v in (("train", train), ("val", val), ("test", test))}
    return images, labels, splits


@DATASETS.register("digits")
def digits(split: str, root: Path | None = None, download: bool = False) -> ArrayDataset:
    """The embedded dataset: scikit-learn's ``load_digits`` (1,797 8x8 handwritten digits, 10 classes).

    Pixel values 0..16 are scaled to 0..255, upsampled to 32x32 (bilinear, ``align_corners=False``,
    no antialiasing), rounded to uint8 and replicated to RGB. Fixed stratified split
    (``train_test_split``, ``random_state=0``): train 60% (1,078), val 20% (359), test 20% (360).
    ``mean``/``std`` come from the train split. ``root`` and ``download`` are ignored.
    """
    check_split("digits", split)
    images, labels, splits = _digits_arrays()
    idx = splits[split]
    info = DATASET_INFO["digits"]
    return ArrayDataset(
        name="digits",
        images=images.index_select(0, idx),
        labels=labels.index_select(0, idx),
        classes=DIGITS_CLASSES,
        mean=info.mean,
        std=info.std,
    )
