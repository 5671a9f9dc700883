"""Shared test fixtures: tiny datasets written in the real on-disk formats, and a hermetic environment.

Every ``tiny_*`` fixture writes a few dozen images into a fresh ``tmp_path`` folder, byte for byte in
the layout the real dataset ships in, and returns a :class:`TinyData` (``.root`` is the data root to
pass as ``root=`` / ``--data-root``, ``.name`` the dataset name for ``get_dataset``, ``.images(split)``
and ``.labels(split)`` what a correct reader must return: uint8 (N, 3, H, W) and int64 (N,) tensors in
file order). The images are class-coloured noise, so a small network can learn them.

Formats:

- CIFAR-10/100: torchvision's python pickles (protocol 2, ``encoding="latin1"`` readable) under
  ``cifar-10-batches-py`` (``data_batch_1..5``, ``test_batch``, ``batches.meta``) and
  ``cifar-100-python`` (``train``, ``test``, ``meta``), with the official keys. Their MD5 sums cannot be
  the official ones, so torchvision's ``CIFAR10`` refuses them; wcbench reads them with its own reader
  of the same layout, and ``tests/test_data.py`` checks that torchvision, its MD5 check switched off,
  reads the same arrays.
- STL-10: ``stl10_binary/{train,test,unlabeled}_X.bin`` (column-major 3x96x96 planes),
  ``{train,test}_y.bin`` (labels 1..10), ``class_names.txt``, ``fold_indices.txt``.
- MNIST / Fashion-MNIST: idx files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (big-endian
  headers) under ``<root>/MNIST/raw`` / ``<root>/FashionMNIST/raw``; 28x28 grey images.
- Image folder: ``train/<class>/NNNN.png`` and ``test/<class>/NNNN.png`` (classes cat, dog, frog).
- ImageNet: ``<split>/<wnid>/<wnid>_N.JPEG`` (three real wnids).

Autouse fixtures keep every test in the repository hermetic: no connection leaves the machine (only
loopback and Unix sockets are allowed), and ``WCBENCH_DATA`` points at a fresh empty folder per test so no
test reads a real data root by accident (tests that want one pass ``root=`` or set the variable).
"""

from __future__ import annotations

import pickle
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
IMAGEFOLDER_CLASSES = ["cat", "dog", "frog"]


@dataclass
class TinyData:
    """A tiny dataset on disk and what loading it must give."""

    name: str
    root: Path
    classes: list[str]
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def images(self, split: str) -> torch.Tensor:
        return torch.from_numpy(self.arrays[split][0])

    def labels(self, split: str) -> torch.Tensor:
        return torch.from_numpy(self.arrays[split][1].astype(np.int64))


# --------------------------------------------------------------------------------------------------
# Hermetic environment


_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "", None}


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (the README runs ``-n auto``), the allowed CPUs are shared among the workers:
    each worker's torch, and every wcbench process a test starts, gets ``allowed // workers`` threads
    (``WCBENCH_THREADS``), unless the user set a thread count."""
    import os

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers < 2 or any(os.environ.get(k) for k in ("WCBENCH_THREADS", "OMP_NUM_THREADS")):
        return
    from wcbench import cpus

    share = max(1, cpus.allowed_cpus() // workers)
    os.environ["WCBENCH_THREADS"] = str(share)
    torch.set_num_threads(share)


def _is_local(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if isinstance(address, tuple) and address:
        host = address[0]
        return host in _LOCAL_HOSTS or (isinstance(host, str) and host.startswith("127."))
    return False


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail fast on any connection or name lookup that would leave the machine."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def guard(address: object) -> None:
        if not _is_local(address):
            raise ConnectionRefusedError(f"tests must not use the network (tried to reach {address!r})")

    def connect(self: socket.socket, address: object) -> None:
        guard(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        guard(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object):
        guard((host.decode() if isinstance(host, bytes) else host, 0))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def _hermetic_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """``WCBENCH_DATA`` = a fresh empty folder per test (never the user's ``~/.cache/wcbench/data``)."""
    monkeypatch.setenv("WCBENCH_DATA", str(tmp_path_factory.mktemp("wcbench-data")))


# --------------------------------------------------------------------------------------------------
# Writers (the real formats)


def make_images(seed: int, labels: np.ndarray, num_classes: int, size: int) -> np.ndarray:
    """uint8 (N, 3, size, size): a per-class colour plus noise."""
    rng = np.random.default_rng(seed)
    palette = np.random.default_rng(1234 + num_classes).integers(0, 160, size=(num_classes, 3))
    noise = rng.integers(0, 96, size=(len(labels), 3, size, size))
    return (palette[labels][:, :, None, None] + noise).astype(np.uint8)


def _labels(seed: int, n: int, num_classes: int) -> np.ndarray:
    labels = np.arange(n) % num_classes
    np.random.default_rng(seed).shuffle(labels)
    return labels.astype(np.int64)


def _dump(path: Path, obj: object) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar10(root: Path, per_batch: int = 6, n_test: int = 10, seed: int = 0) -> TinyData:
    """``root/cifar-10-batches-py``: five train batches of ``per_batch`` images, a test batch, the meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    data = TinyData("cifar10", root, list(CIFAR10_CLASSES))
    train_x, train_y = [], []
    for b in range(1, 6):
        y = _labels(seed + b, per_batch, 10)
        x = make_images(seed + b, y, 10, 32)
        _dump(
            folder / f"data_batch_{b}",
            {
                "batch_label": f"training batch {b} of 5",
                "labels": [int(v) for v in y],
                "data": x.reshape(len(y), 3072),
                "filenames": [f"img_{b}_{i}.png" for i in range(len(y))],
            },
        )
        train_x.append(x)
        train_y.append(y)
    y = _labels(seed + 100, n_test, 10)
    x = make_images(seed + 100, y, 10, 32)
    _dump(
        folder / "test_batch",
        {
            "batch_label": "testing batch 1 of 1",
            "labels": [int(v) for v in y],
            "data": x.reshape(len(y), 3072),
            "filenames": [f"test_{i}.png" for i in range(len(y))],
        },
    )
    _dump(
        folder / "batches.meta",
        {"num_cases_per_batch": per_batch, "label_names": CIFAR10_CLASSES, "num_vis": 3072},
    )
    data.arrays["train"] = (np.concatenate(train_x), np.concatenate(train_y))
    data.arrays["test"] = (x, y)
    return data


def write_cifar100(root: Path, n_train: int = 40, n_test: int = 20, seed: int = 0) -> TinyData:
    """``root/cifar-100-python``: ``train``, ``test`` (fine and coarse labels) and ``meta``."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    fine = [f"class_{i:03d}" for i in range(100)]
    coarse = [f"super_{i:02d}" for i in range(20)]
    data = TinyData("cifar100", root, fine)
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        y = np.random.default_rng(s).integers(0, 100, size=n).astype(np.int64)
        x = make_images(s, y, 100, 32)
        _dump(
            folder / split,
            {
                "filenames": [f"{split}_{i}.png" for i in range(n)],
                "batch_label": f"{split}ing batch 1 of 1",
                "fine_labels": [int(v) for v in y],
                "coarse_labels": [int(v) // 5 for v in y],
                "data": x.reshape(n, 3072),
            },
        )
        data.arrays[split] = (x, y)
    _dump(folder / "meta", {"fine_label_names": fine, "coarse_label_names": coarse})
    return data


def write_stl10(
    root: Path, n_train: int = 12, n_test: int = 8, n_unlabeled: int = 3, seed: int = 0
) -> TinyData:
    """``root/stl10_binary``: ``*_X.bin`` as column-major 3x96x96 planes, ``*_y.bin`` labels 1..10."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    data = TinyData("stl10", root, list(STL10_CLASSES))
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        y = _labels(s, n, 10)
        x = make_images(s, y, 10, 96)
        np.ascontiguousarray(x.transpose(0, 1, 3, 2)).tofile(folder / f"{split}_X.bin")
        (y + 1).astype(np.uint8).tofile(folder / f"{split}_y.bin")
        data.arrays[split] = (x, y)
    unlabeled = make_images(seed + 2, np.zeros(n_unlabeled, dtype=np.int64), 10, 96)
    np.ascontiguousarray(unlabeled.transpose(0, 1, 3, 2)).tofile(folder / "unlabeled_X.bin")
    (folder / "class_names.txt").write_text("\n".join(STL10_CLASSES) + "\n")
    folds = [" ".join(str(i) for i in range(k % n_train, n_train, 10)) for k in range(10)]
    (folder / "fold_indices.txt").write_text("\n".join(folds) + "\n")
    return data


def write_idx(path: Path, array: np.ndarray) -> None:
    """An idx file of uint8: magic 0x0000 08 <ndim>, big-endian int32 dims, then the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def write_mnist(
    root: Path, folder: str = "MNIST", n_train: int = 20, n_test: int = 10, seed: int = 0
) -> TinyData:
    """``root/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` with 28x28 grey images.

    ``.images(split)`` is what wcbench yields: zero-padded to 32x32 and replicated to 3 channels; the
    raw 28x28 images are in ``.arrays[split + "-raw"]``.
    """
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    name = "mnist" if folder == "MNIST" else "fashion-mnist"
    data = TinyData(name, root, [])
    for split, prefix, n, s in (("train", "train", n_train, seed), ("test", "t10k", n_test, seed + 1)):
        y = _labels(s, n, 10)
        grey = make_images(s, y, 10, 28)[:, 0]
        write_idx(raw / f"{prefix}-images-idx3-ubyte", grey)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y.astype(np.uint8))
        padded = np.zeros((n, 3, 32, 32), dtype=np.uint8)
        padded[:, :, 2:30, 2:30] = grey[:, None]
        data.arrays[split] = (padded, y)
        data.arrays[f"{split}-raw"] = (grey, y)
    return data


def write_imagefolder(
    root: Path, per_class: dict[str, int] | None = None, size: int = 32, seed: int = 0
) -> TinyData:
    """``root/{train,test}/<class>/NNNN.png`` (lossless PNG, so pixels round-trip exactly)."""
    from PIL import Image

    per_class = per_class or {"train": 4, "test": 2}
    data = TinyData(f"imagefolder:{root}", root, list(IMAGEFOLDER_CLASSES))
    for k, (split, n) in enumerate(per_class.items()):
        xs, ys = [], []
        for c, cls in enumerate(IMAGEFOLDER_CLASSES):
            y = np.full(n, c, dtype=np.int64)
            x = make_images(seed + 10 * k + c, y, len(IMAGEFOLDER_CLASSES), size)
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(x[i].transpose(1, 2, 0)).save(root / split / cls / f"{i:04d}.png")
            xs.append(x)
            ys.append(y)
        data.arrays[split] = (np.concatenate(xs), np.concatenate(ys))
    return data


IMAGENET_WNIDS = ["n01440764", "n01443537", "n01484850"]


def write_imagenet_layout(
    root: Path, split: str = "train", per_class: int = 8, size: tuple[int, int] = (40, 48), seed: int = 0
) -> TinyData:
    """ImageNet's layout: ``root/<split>/<wnid>/<wnid>_N.JPEG`` (RGB JPEGs of ``size`` = (h, w), quality 95).

    ``arrays[split]`` holds the pixels as written (before the JPEG round trip)."""
    from PIL import Image

    data = TinyData(f"imagefolder:{root}", root, list(IMAGENET_WNIDS))
    h, w = size
    xs, ys = [], []
    for c, wnid in enumerate(IMAGENET_WNIDS):
        y = np.full(per_class, c, dtype=np.int64)
        x = make_images(seed + c, y, len(IMAGENET_WNIDS), max(h, w))[:, :, :h, :w]
        (root / split / wnid).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(np.ascontiguousarray(x[i].transpose(1, 2, 0))).save(
                root / split / wnid / f"{wnid}_{i}.JPEG", quality=95
            )
        xs.append(x)
        ys.append(y)
    data.arrays[split] = (np.concatenate(xs), np.concatenate(ys))
    return data


# --------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def tiny_cifar10(tmp_path: Path) -> TinyData:
    """CIFAR-10 in torchvision's layout: 30 train images (5 batches of 6), 10 test images."""
    return write_cifar10(tmp_path / "data")


@pytest.fixture
def tiny_cifar100(tmp_path: Path) -> TinyData:
    """CIFAR-100 in torchvision's layout: 40 train, 20 test images, 100 fine / 20 coarse class names."""
    return write_cifar100(tmp_path / "data")


@pytest.fixture
def tiny_stl10(tmp_path: Path) -> TinyData:
    """STL-10 binary layout: 12 train, 8 test, 3 unlabeled 96x96 images."""
    return write_stl10(tmp_path / "data")


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> TinyData:
    """MNIST idx files: 20 train, 10 test 28x28 images under ``MNIST/raw``."""
    return write_mnist(tmp_path / "data", "MNIST")


@pytest.fixture
def tiny_fashion_mnist(tmp_path: Path) -> TinyData:
    """Fashion-MNIST idx files: 20 train, 10 test 28x28 images under ``FashionMNIST/raw``."""
    return write_mnist(tmp_path / "data", "FashionMNIST")


@pytest.fixture
def tiny_imagefolder(tmp_path: Path) -> TinyData:
    """An image folder of 32x32 PNGs, classes cat/dog/frog: 4 per class in train, 2 in test."""
    return write_imagefolder(tmp_path / "images")


@pytest.fixture
def tiny_imagenet(tmp_path: Path) -> TinyData:
    """ImageNet's layout: ``train/<wnid>/*.JPEG``, 3 classes x 8 JPEGs of 40x48."""
    return write_imagenet_layout(tmp_path / "imagenet")


@pytest.fixture
def data_writers() -> SimpleNamespace:
    """The writers, for tests that build their own variants: ``data_writers.cifar10(root)`` etc.

    ``cifar10``, ``cifar100``, ``stl10``, ``mnist(root, folder="MNIST"|"FashionMNIST")``,
    ``imagefolder(root, per_class={"train": n, "test": m}, size=32)`` return a :class:`TinyData`;
    ``idx(path, array)`` writes one idx file; ``images(seed, labels, num_classes, size)`` makes pixels.
    """
    return SimpleNamespace(
        cifar10=write_cifar10,
        cifar100=write_cifar100,
        stl10=write_stl10,
        mnist=write_mnist,
        imagefolder=write_imagefolder,
        idx=write_idx,
        images=make_images,
    )


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """One data root holding tiny cifar10, cifar100, stl10, mnist and fashion-mnist (for CLI tests)."""
    root = tmp_path / "data-root"
    write_cifar10(root)
    write_cifar100(root)
    write_stl10(root)
    write_mnist(root, "MNIST")
    write_mnist(root, "FashionMNIST")
    return root


@pytest.fixture
def data_env(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``data_root`` exported as ``WCBENCH_DATA`` for the duration of the test."""
    monkeypatch.setenv("WCBENCH_DATA", str(data_root))
    yield data_root


@pytest.fixture
def small_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded digits at their native 8x8 (not upsampled to 32x32): the same search code path,
    16x fewer pixels, so the end-to-end search tests stay fast on 2 CPU cores."""
    import torch.nn.functional as F

    import wcbench.data

    real = wcbench.data.get_dataset

    def get_dataset(name, split="train", root=None, download=False, **kw):  # noqa: ANN001, ANN202
        ds = real(name, split, root, download, **kw)
        if name != "digits":
            return ds
        small = F.interpolate(ds.images.float(), size=(8, 8), mode="area").round().to(torch.uint8)
        return type(ds)(ds.name, small, ds.labels, ds.classes, ds.mean, ds.std)

    monkeypatch.setattr(wcbench.data, "get_dataset", get_dataset)


# --------------------------------------------------------------------------------------------------
# Hang guards (issue #16): timeout markers scaled by WCBENCH_TEST_TIMEOUT_FACTOR (tests/timeouts.py)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each ``@pytest.mark.timeout(s)`` (also a module's ``pytestmark``) becomes ``s * factor``."""
    from tests.timeouts import timeout_factor

    try:
        factor = timeout_factor()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    for item in items:
        marker = item.get_closest_marker("timeout")
        if marker is None:
            continue
        kwargs = dict(marker.kwargs)
        args = list(marker.args)
        seconds = args.pop(0) if args else kwargs.pop("timeout", None)
        if seconds is None:
            continue
        item.add_marker(pytest.mark.timeout(float(seconds) * factor, *args, **kwargs), append=False)
