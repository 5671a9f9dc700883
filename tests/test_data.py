"""wcbench.data: datasets in their real formats, the search split, device loaders, and the errors."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

import wcbench.data.datasets as datasets_mod
from wcbench.data import (
    DATASET_INFO,
    ArrayDataset,
    DeviceLoader,
    channel_stats,
    get_dataset,
    imagefolder_loader,
    normalize,
    resolve_data_root,
    search_split,
    search_split_dataset,
)
from wcbench.data.loaders import cutout, random_crop, random_flip
from wcbench.errors import ConfigError, DatasetError, RegistryError
from wcbench.registry import DATASETS

if TYPE_CHECKING:
    from conftest import TinyData

QUICK = "--preset quick"


def assert_loaded(ds: ArrayDataset, tiny: TinyData, split: str) -> None:
    assert ds.images.dtype == torch.uint8 and ds.labels.dtype == torch.int64
    assert ds.images.device.type == "cpu"
    assert torch.equal(ds.images, tiny.images(split))
    assert torch.equal(ds.labels, tiny.labels(split))
    assert len(ds) == len(tiny.labels(split))


# --------------------------------------------------------------------------------------------------
# Constants


def test_dataset_info_constants_are_the_darts_literals() -> None:
    c10, c100, stl = DATASET_INFO["cifar10"], DATASET_INFO["cifar100"], DATASET_INFO["stl10"]
    assert c10.mean == (0.49139968, 0.48215827, 0.44653124)
    assert c10.std == (0.24703233, 0.24348505, 0.26158768)
    assert c100.mean == (0.5071, 0.4865, 0.4409)
    assert c100.std == (0.2673, 0.2564, 0.2762)
    assert stl.mean == (0.4467, 0.4398, 0.4066)
    assert stl.std == (0.2603, 0.2566, 0.2713)
    assert (c10.num_classes, c10.image_size, c100.num_classes, stl.image_size) == (10, 32, 100, 96)
    assert c10["mean"] == c10.mean  # mapping-style access too
    for name in ("cifar10", "cifar100", "stl10", "mnist", "fashion-mnist"):
        assert DATASET_INFO[name].downloadable
    assert not DATASET_INFO["digits"].downloadable and not DATASET_INFO["imagefolder"].downloadable
    assert DATASET_INFO["digits"].splits == ("train", "val", "test")
    assert set(DATASET_INFO) <= set(DATASETS.names())


def test_mnist_constants_are_the_usual_ones_carried_to_32x32() -> None:
    # a 28x28 image with mean m and second moment q, padded with zeros to 32x32
    f = 784 / 1024
    m, s = DATASET_INFO["mnist"].mean[0], DATASET_INFO["mnist"].std[0]
    assert m == pytest.approx(0.1307 * f)
    assert s**2 + m**2 == pytest.approx((0.3081**2 + 0.1307**2) * f)


# --------------------------------------------------------------------------------------------------
# Each registered dataset from its fixture


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar10_reads_torchvision_layout(tiny_cifar10: TinyData, split: str) -> None:
    ds = get_dataset("cifar10", split, root=tiny_cifar10.root)
    assert_loaded(ds, tiny_cifar10, split)
    assert ds.images.shape[1:] == (3, 32, 32) and ds.image_size == 32
    assert ds.classes == tuple(tiny_cifar10.classes) and ds.num_classes == 10
    assert (ds.mean, ds.std) == (DATASET_INFO["cifar10"].mean, DATASET_INFO["cifar10"].std)


def test_cifar100_reads_fine_labels(tiny_cifar100: TinyData) -> None:
    for split in ("train", "test"):
        ds = get_dataset("cifar100", split, root=tiny_cifar100.root)
        assert_loaded(ds, tiny_cifar100, split)
        assert ds.num_classes == 100 and ds.classes[0] == "class_000"


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_reader_agrees_with_torchvision(
    tmp_path: Path, name: str, data_writers: SimpleNamespace
) -> None:
    """torchvision, with only its MD5 comparison switched off, reads the fixtures into the same arrays."""
    import torchvision.datasets as tvd

    base = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
    tiny = getattr(data_writers, name)(tmp_path)

    class NoMd5(base):  # type: ignore[misc, valid-type]
        train_list = [[f, None] for f, _ in base.train_list]
        test_list = [[f, None] for f, _ in base.test_list]
        meta = {**base.meta, "md5": None}

    for split in ("train", "test"):
        tv = NoMd5(str(tmp_path), train=split == "train")
        ours = get_dataset(name, split, root=tmp_path)
        assert np.array_equal(tv.data.transpose(0, 3, 1, 2), ours.images.numpy())
        assert tv.targets == ours.labels.tolist()
        assert tuple(tv.classes) == ours.classes == tuple(tiny.classes)


def test_cifar_reads_pickles_written_by_numpy1(tiny_cifar10: TinyData) -> None:
    """The official files name numpy.core.multiarray (numpy 1, Python 2); numpy 2 calls it numpy._core."""
    folder = tiny_cifar10.root / "cifar-10-batches-py"
    raw = (folder / "test_batch").read_bytes()
    assert b"numpy._core.multiarray" in raw
    (folder / "test_batch").write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert_loaded(get_dataset("cifar10", "test", root=tiny_cifar10.root), tiny_cifar10, "test")


def test_stl10_reads_binary_layout_like_torchvision(tiny_stl10: TinyData) -> None:
    import torchvision.datasets as tvd

    class NoMd5(tvd.STL10):
        train_list = [[f, None] for f, _ in tvd.STL10.train_list]
        test_list = [[f, None] for f, _ in tvd.STL10.test_list]

    for split in ("train", "test"):
        ds = get_dataset("stl10", split, root=tiny_stl10.root)
        assert_loaded(ds, tiny_stl10, split)
        assert ds.image_size == 96
        tv = NoMd5(str(tiny_stl10.root), split=split)
        assert np.array_equal(tv.data, ds.images.numpy()) and np.array_equal(tv.labels, ds.labels.numpy())
        assert ds.classes == tuple(tv.classes)
    assert ds.classes == ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")


@pytest.mark.parametrize("folder", ["MNIST", "FashionMNIST"])
def test_mnist_like_padded_to_rgb32(tmp_path: Path, folder: str, data_writers: SimpleNamespace) -> None:
    import torchvision.datasets as tvd

    tiny = data_writers.mnist(tmp_path, folder)
    for split in ("train", "test"):
        ds = get_dataset(tiny.name, split, root=tmp_path)
        assert_loaded(ds, tiny, split)
        assert ds.images.shape[1:] == (3, 32, 32)
        assert ds.images[:, :, :2].max() == 0 and ds.images[:, :, :, -2:].max() == 0  # zero padding
        assert torch.equal(ds.images[:, 0], ds.images[:, 1]) and torch.equal(ds.images[:, 1], ds.images[:, 2])
        tv = (tvd.MNIST if folder == "MNIST" else tvd.FashionMNIST)(str(tmp_path), train=split == "train")
        assert torch.equal(tv.data, ds.images[:, 0, 2:30, 2:30]) and torch.equal(tv.targets, ds.labels)
        assert ds.classes == tuple(tv.classes)


def test_fashion_mnist_gz_files_are_unpacked(tmp_path: Path, data_writers: SimpleNamespace) -> None:
    """Debian's dataset-fashion-mnist ships the four *-ubyte.gz files; they load without --download."""
    import gzip

    tiny = data_writers.mnist(tmp_path, "FashionMNIST")
    for f in (tmp_path / "FashionMNIST" / "raw").iterdir():
        (f.parent / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
    assert_loaded(get_dataset("fashion-mnist", "test", root=tmp_path), tiny, "test")


def test_imagefolder_loads_pngs_exactly(tiny_imagefolder: TinyData) -> None:
    train = get_dataset(tiny_imagefolder.name, "train")
    test = get_dataset(tiny_imagefolder.name, "test")
    assert_loaded(train, tiny_imagefolder, "train")
    assert_loaded(test, tiny_imagefolder, "test")
    assert train.classes == ("cat", "dog", "frog") and train.image_size == 32
    mean, std = channel_stats(tiny_imagefolder.images("train"))
    assert train.mean == pytest.approx(mean) and train.std == pytest.approx(std)
    assert test.mean == train.mean and test.std == train.std  # normalised with the train statistics


def test_imagefolder_path_relative_to_data_root(tiny_imagefolder: TinyData) -> None:
    root = tiny_imagefolder.root
    ds = get_dataset(f"imagefolder:{root.name}", "test", root=root.parent)
    assert_loaded(ds, tiny_imagefolder, "test")


def test_imagefolder_resizes_only_mixed_sizes(tmp_path: Path, data_writers: SimpleNamespace) -> None:
    from PIL import Image

    tiny = data_writers.imagefolder(tmp_path, {"train": 2, "test": 1}, size=40)
    assert get_dataset(f"imagefolder:{tmp_path}", "train").image_size == 40  # uniform: kept as is
    assert get_dataset(f"imagefolder:{tmp_path}", "train", image_size=24).image_size == 24  # asked for
    Image.new("RGB", (64, 48), (200, 10, 10)).save(tmp_path / "train" / "cat" / "big.png")
    ds = get_dataset(f"imagefolder:{tmp_path}", "train")
    assert ds.images.shape == (7, 3, 32, 32) and ds.labels.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert ds.images[2].float().mean((1, 2)).round().tolist() == [200, 10, 10]
    assert tiny.classes == list(ds.classes)


def test_imagefolder_jpegs_decode_like_pillow(tmp_path: Path, data_writers: SimpleNamespace) -> None:
    from PIL import Image

    tiny = data_writers.imagefolder(tmp_path, {"train": 3, "test": 1})
    for png in sorted(tmp_path.glob("*/*/*.png")):
        with Image.open(png) as im:
            im.save(png.with_suffix(".jpg"), quality=90)
        png.unlink()
    ds = get_dataset(f"imagefolder:{tmp_path}", "train")
    pil = []
    for jpg in sorted((tmp_path / "train").glob("*/*.jpg")):
        with Image.open(jpg) as im:
            pil.append(torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1))
    assert ds.labels.tolist() == tiny.labels("train").tolist()
    assert (ds.images.int() - torch.stack(pil).int()).abs().max() <= 1


@pytest.mark.skipif(
    not Path("/work/shared/data/cifar10-jpeg.tar.gz").is_file(), reason="CIFAR-10 JPEG mirror not present"
)
def test_cifar10_jpeg_mirror_test_split(tmp_path: Path) -> None:
    """Optional: the JPEG mirror's 10k test images, in ImageFolder layout, load as CIFAR-10-like data."""
    with tarfile.open("/work/shared/data/cifar10-jpeg.tar.gz") as tar:
        # the test split, and one train image per class (the train split only sets the class list here)
        members = [m for m in tar if "/test/" in m.name or m.name.endswith("/0000.jpg")]
        tar.extractall(tmp_path, members=members, filter="data")
    ds = get_dataset(f"imagefolder:{tmp_path / 'cifar10-jpeg'}", "test")
    assert ds.images.shape == (10000, 3, 32, 32)
    assert ds.classes[:3] == ("airplane", "automobile", "bird")
    assert torch.bincount(ds.labels).tolist() == [1000] * 10
    mean, _ = channel_stats(ds.images)
    assert mean == pytest.approx(DATASET_INFO["cifar10"].mean, abs=0.01)


# --------------------------------------------------------------------------------------------------
# The embedded dataset


def test_digits_split_counts_and_determinism() -> None:
    splits = {s: get_dataset("digits", s) for s in ("train", "val", "test")}
    assert {s: len(d) for s, d in splits.items()} == {"train": 1078, "val": 359, "test": 360}
    again = get_dataset("digits", "train")
    assert torch.equal(again.images, splits["train"].images) and torch.equal(
        again.labels, splits["train"].labels
    )
    for d in splits.values():
        assert d.images.shape[1:] == (3, 32, 32) and d.images.dtype == torch.uint8
        assert torch.equal(d.images[:, 0], d.images[:, 2]) and d.num_classes == 10
        counts = torch.bincount(d.labels, minlength=10).float()
        assert (counts / len(d) - 0.1).abs().max() < 0.02  # stratified
    from sklearn.datasets import load_digits

    everything = torch.cat([d.images for d in splits.values()])
    assert everything.shape[0] == len(load_digits().target) == 1797
    assert int(everything.max()) == 255 and int(everything.min()) == 0
    assert (
        torch.unique(everything.flatten(1), dim=0).shape[0] > 1700
    )  # (near-)disjoint splits of distinct images


def test_digits_constants_match_a_recomputation() -> None:
    train = get_dataset("digits", "train")
    mean, std = channel_stats(train.images)
    assert DATASET_INFO["digits"].mean == pytest.approx(mean, abs=1e-9)
    assert DATASET_INFO["digits"].std == pytest.approx(std, abs=1e-9)
    assert train.mean == DATASET_INFO["digits"].mean


# --------------------------------------------------------------------------------------------------
# Roots, ArrayDataset


def test_resolve_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resolve_data_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("WCBENCH_DATA", str(tmp_path / "env"))
    assert resolve_data_root(None) == tmp_path / "env"
    monkeypatch.delenv("WCBENCH_DATA")
    assert resolve_data_root(None) == Path.home() / ".cache" / "wcbench" / "data"


def test_get_dataset_uses_wcbench_data(data_env: Path) -> None:
    assert len(get_dataset("cifar100", "test")) == 20
    assert len(get_dataset("stl10", "train")) == 12


def test_array_dataset_subset_and_checks(tiny_cifar10: TinyData) -> None:
    ds = get_dataset("cifar10", "train", root=tiny_cifar10.root)
    sub = ds.subset([3, 0, 7])
    assert len(sub) == 3 and torch.equal(sub.images[1], ds.images[0]) and sub.labels[2] == ds.labels[7]
    assert sub.classes == ds.classes and sub.mean == ds.mean
    assert len(ds.subset(torch.arange(5))) == 5 and len(ds.subset(np.array([1]))) == 1
    with pytest.raises(ValueError):
        ArrayDataset("x", ds.images.float(), ds.labels, ds.classes, ds.mean, ds.std)
    with pytest.raises(ValueError):
        ArrayDataset("x", ds.images, ds.labels[:-1], ds.classes, ds.mean, ds.std)


# --------------------------------------------------------------------------------------------------
# Search split


def test_search_split_halves_disjoint_covering_and_seeded() -> None:
    a_train, a_val = search_split(50_000, seed=1)
    assert len(a_train) == len(a_val) == 25_000
    assert torch.cat([a_train, a_val]).sort().values.equal(torch.arange(50_000))
    b_train, b_val = search_split(50_000, seed=1)
    assert a_train.equal(b_train) and a_val.equal(b_val)
    c_train, _ = search_split(50_000, seed=2)
    assert not a_train.equal(c_train)
    tr, va = search_split(11, seed=0, fraction=0.3)
    assert (len(tr), len(va)) == (3, 8) and not set(tr.tolist()) & set(va.tolist())
    with pytest.raises(ConfigError):
        search_split(10, 0, fraction=1.0)
    with pytest.raises(DatasetError):
        search_split(1, 0)


def test_search_split_dataset(tiny_cifar10: TinyData) -> None:
    ds = get_dataset("cifar10", "train", root=tiny_cifar10.root)
    s_train, s_val = search_split_dataset(ds, seed=3)
    assert len(s_train) == len(s_val) == 15
    tr, va = search_split(30, 3)
    assert torch.equal(s_train.images, ds.images[tr]) and torch.equal(s_val.labels, ds.labels[va])


# --------------------------------------------------------------------------------------------------
# Loader and augmentation


def _dataset(n: int = 20, size: int = 32, value: int | None = None, seed: int = 0) -> ArrayDataset:
    g = torch.Generator().manual_seed(seed)
    if value is None:
        images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    else:
        images = torch.full((n, 3, size, size), value, dtype=torch.uint8)
    labels = torch.arange(n) % 10
    return ArrayDataset("t", images, labels, tuple("abcdefghij"), (0.4, 0.5, 0.6), (0.2, 0.25, 0.3))


def test_normalize_matches_torchvision() -> None:
    from torchvision.transforms import Normalize

    x = torch.rand(4, 3, 8, 8)
    mean, std = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)
    assert torch.allclose(normalize(x, mean, std), Normalize(mean, std)(x))


def test_device_loader_is_reproducible_per_seed_and_epoch() -> None:
    ds = _dataset(50)

    def batches(seed: int, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        loader = DeviceLoader(ds, 16, shuffle=True, augment=True, cutout=8, seed=seed)
        loader.set_epoch(epoch)
        return list(loader)

    a, b = batches(0, 3), batches(0, 3)
    assert len(a) == 4 and all(
        torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b)
    )
    c, d = batches(0, 4), batches(1, 3)
    assert not torch.equal(a[0][1], c[0][1]) and not torch.equal(a[0][1], d[0][1])
    labels = torch.cat([y for _, y in c])
    assert labels.sort().values.equal(ds.labels.sort().values)  # each example once per epoch


def test_device_loader_plain_pass_shapes_and_lengths() -> None:
    ds = _dataset(20)
    loader = DeviceLoader(ds, 8, shuffle=False, augment=False)
    assert len(loader) == 3 and len(DeviceLoader(ds, 8, shuffle=True, augment=False, drop_last=True)) == 2
    xs, ys = zip(*loader, strict=True)
    assert [x.shape[0] for x in xs] == [8, 8, 4] and xs[0].dtype == torch.float32
    x = torch.cat(xs)
    assert torch.allclose(x, normalize(ds.images.float() / 255, ds.mean, ds.std), atol=1e-6)
    assert torch.equal(torch.cat(ys), ds.labels)
    raw = torch.cat([x for x, _ in DeviceLoader(ds, 8, shuffle=False, augment=False, normalize=False)])
    assert torch.equal(raw, ds.images.float() / 255)
    x_cl, _ = next(iter(DeviceLoader(ds, 4, shuffle=True, augment=True, channels_last=True)))
    assert x_cl.shape == (4, 3, 32, 32) and x_cl.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_loader_on_cuda_gives_the_cpu_batches() -> None:
    ds = _dataset(40)
    cpu = DeviceLoader(ds, 16, shuffle=True, augment=True, cutout=8, seed=7)
    gpu = DeviceLoader(
        ds, 16, shuffle=True, augment=True, cutout=8, seed=7, device="cuda", channels_last=True
    )
    for loader in (cpu, gpu):
        loader.set_epoch(2)
    for (xc, yc), (xg, yg) in zip(cpu, gpu, strict=True):
        assert xg.device.type == "cuda" and torch.equal(yc, yg.cpu())
        assert torch.allclose(xc, xg.cpu(), atol=1e-6)


def test_random_crop_and_flip_match_the_pil_pipeline() -> None:
    x = torch.rand(3, 3, 32, 32)
    out = random_crop(x, torch.tensor([0, 4, 8]), torch.tensor([8, 4, 1]), padding=4)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    assert torch.equal(out[0], padded[0, :, 0:32, 8:40])  # shifted down-left, zeros enter at the top/right
    assert torch.equal(out[1], x[1])  # (padding, padding) is the identity
    assert torch.equal(out[2], padded[2, :, 8:40, 1:33])
    flipped = random_flip(x, torch.tensor([True, False, True]))
    assert torch.equal(flipped[0], x[0].flip(-1)) and torch.equal(flipped[1], x[1])


def test_augmented_batches_are_crops_and_flips_of_the_images() -> None:
    ds = _dataset(12)
    loader = DeviceLoader(ds, 12, shuffle=False, augment=True, normalize=False, seed=5)
    ((x, _),) = list(loader)
    src = ds.images.float() / 255
    padded = torch.nn.functional.pad(src, (4, 4, 4, 4))
    offsets = set()
    for i in range(12):
        found = [
            (dy, dx, f)
            for dy in range(9)
            for dx in range(9)
            for f in (False, True)
            if torch.equal(x[i], (lambda c: c.flip(-1) if f else c)(padded[i, :, dy : dy + 32, dx : dx + 32]))
        ]
        assert len(found) == 1, f"image {i} is not a padded crop (+ flip) of its source"
        offsets.add(found[0])
    assert len(offsets) > 3 and any(f for *_, f in offsets) and not all(f for *_, f in offsets)


def test_cutout_zeroes_a_clipped_square_after_normalisation() -> None:
    ds = _dataset(64, value=255)
    loader = DeviceLoader(ds, 64, shuffle=True, augment=True, cutout=16, seed=0)
    x, _ = next(iter(loader))
    sides = []
    for img in x:
        zero = (img == 0).all(0)
        assert ((img == 0).any(0) == zero).all()  # all channels at once
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert len(rows) and len(cols), "every image gets a cutout"
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert zero[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # a filled rectangle
        assert int(zero.sum()) == h * w and h <= 16 and w <= 16
        sides.append((int(h), int(w)))
        # outside the square: the normalised image (1 - mean) / std or normalised zero padding
        white = torch.isclose(img, torch.tensor([(1 - m) / s for m, s in zip(ds.mean, ds.std)]).view(3, 1, 1))
        padding = torch.isclose(img, torch.tensor([-m / s for m, s in zip(ds.mean, ds.std)]).view(3, 1, 1))
        assert (white | padding | (img == 0)).all()
    assert (16, 16) in sides and any(h < 16 or w < 16 for h, w in sides)  # clipped at the borders


def test_cutout_function_follows_darts() -> None:
    x = torch.ones(2, 3, 10, 10)
    out = cutout(x, torch.tensor([5, 0]), torch.tensor([5, 9]), length=4)
    assert (out[0] == 0).all(0).nonzero().tolist() == [[r, c] for r in range(3, 7) for c in range(3, 7)]
    assert (out[1] == 0).all(0).nonzero().tolist() == [[r, c] for r in (0, 1) for c in (7, 8, 9)]  # clipped
    assert int((cutout(x, torch.tensor([5, 5]), torch.tensor([5, 5]), 5)[0] == 0).all(0).sum()) == 16


def test_imagefolder_loader_uses_darts_transforms(tiny_imagefolder: TinyData) -> None:
    from torchvision import transforms as T

    root = tiny_imagefolder.root
    train = imagefolder_loader(root, "train", batch_size=4, train=True, workers=0, image_size=32)
    x, y = next(iter(train))
    assert x.shape == (4, 3, 32, 32) and y.dtype == torch.int64 and len(train.dataset) == 12
    kinds = [type(t) for t in train.dataset.transform.transforms]
    assert kinds[:3] == [T.RandomResizedCrop, T.RandomHorizontalFlip, T.ColorJitter]
    jitter = train.dataset.transform.transforms[2]
    assert (jitter.brightness, jitter.hue) == ((0.6, 1.4), (-0.2, 0.2))
    norm = train.dataset.transform.transforms[-1]
    assert tuple(norm.mean) == (0.485, 0.456, 0.406) and tuple(norm.std) == (0.229, 0.224, 0.225)
    ev = imagefolder_loader(root, "test", batch_size=6, train=False, workers=0)
    steps = ev.dataset.transform.transforms
    assert steps[0].size == 256 and steps[1].size == (224, 224)
    assert next(iter(ev))[0].shape == (6, 3, 224, 224)


# --------------------------------------------------------------------------------------------------
# Downloads happen only when asked


def test_no_download_unless_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_writers: SimpleNamespace
) -> None:
    calls: list[tuple[str, Path, str]] = []

    def fake_fetch(name: str, root: Path, split: str) -> None:
        calls.append((name, root, split))
        data_writers.cifar10(root)

    monkeypatch.setattr(datasets_mod, "fetch", fake_fetch)
    with pytest.raises(DatasetError, match="--download"):
        get_dataset("cifar10", "test", root=tmp_path)
    assert calls == []
    assert len(get_dataset("cifar10", "test", root=tmp_path, download=True)) == 10
    assert calls == [("cifar10", tmp_path, "test")]
    get_dataset("cifar10", "train", root=tmp_path, download=True)  # present: not fetched again
    assert len(calls) == 1


def test_failed_download_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from urllib.error import URLError

    def offline(name: str, root: Path, split: str) -> None:
        raise URLError("[Errno -3] Temporary failure\nin name resolution")

    monkeypatch.setattr(datasets_mod, "fetch", offline)
    with pytest.raises(DatasetError) as err:
        get_dataset("mnist", "train", root=tmp_path, download=True)
    msg = str(err.value)
    assert "\n" not in msg and "download" in msg and str(tmp_path) in msg and QUICK in msg


def test_the_real_download_path_is_torchvision_and_never_runs_here(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    import torchvision.datasets.utils as tvu

    seen: list[tuple[str, str | None]] = []
    monkeypatch.setattr(
        tvu, "download_and_extract_archive", lambda url, root, filename, md5: seen.append((url, md5))
    )
    with pytest.raises(DatasetError, match="not found"):
        get_dataset("cifar100", "train", root=tmp_path, download=True)
    import torchvision.datasets as tvd

    assert seen == [(tvd.CIFAR100.url, tvd.CIFAR100.tgz_md5)]


# --------------------------------------------------------------------------------------------------
# Malformed and missing data: one-line errors that name the path and the layout


def _truncate(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _repickle(path: Path, **changes: object) -> Path:
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    entry.update(changes)
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)
    return path


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def _case_missing_root(tmp: Path, w: SimpleNamespace) -> tuple[str, str, Path, tuple[str, ...]]:
    return (
        "cifar100",
        "train",
        tmp,
        (f"{tmp / 'cifar-100-python'}", "cifar-100-python/{train,test,meta}", "--download", QUICK),
    )


def _case_missing_batch(tmp: Path, w: SimpleNamespace):
    w.cifar10(tmp)
    (tmp / "cifar-10-batches-py" / "data_batch_3").unlink()
    return "cifar10", "train", tmp, ("missing data_batch_3", "cifar-10-batches-py", "--download")


def _case_truncated_pickle(tmp: Path, w: SimpleNamespace):
    w.cifar10(tmp)
    path = _truncate(tmp / "cifar-10-batches-py" / "test_batch")
    return "cifar10", "test", tmp, (str(path), "corrupt")


def _case_wrong_array_size(tmp: Path, w: SimpleNamespace):
    w.cifar10(tmp)
    path = _repickle(tmp / "cifar-10-batches-py" / "data_batch_2", data=np.zeros((6, 3000), np.uint8))
    return "cifar10", "train", tmp, (str(path), "not uint8 (N, 3072)")


def _case_label_count(tmp: Path, w: SimpleNamespace):
    w.cifar100(tmp)
    path = _repickle(tmp / "cifar-100-python" / "test", fine_labels=[1, 2, 3])
    return "cifar100", "test", tmp, (str(path), "20 images but 3 labels")


def _case_label_range(tmp: Path, w: SimpleNamespace):
    w.cifar10(tmp)
    path = _repickle(tmp / "cifar-10-batches-py" / "test_batch", labels=[10] * 10)
    return "cifar10", "test", tmp, (str(path), "labels outside 0..9")


def _case_evil_pickle(tmp: Path, w: SimpleNamespace):
    w.cifar10(tmp)
    path = _repickle(tmp / "cifar-10-batches-py" / "test_batch", labels=_Evil())
    return "cifar10", "test", tmp, (str(path), "refusing to load global")


def _case_bad_meta(tmp: Path, w: SimpleNamespace):
    w.cifar100(tmp)
    path = _repickle(tmp / "cifar-100-python" / "meta", fine_label_names=["a", "b"])
    return "cifar100", "train", tmp, (str(path), "fine_label_names")


def _case_stl_truncated(tmp: Path, w: SimpleNamespace):
    w.stl10(tmp)
    path = tmp / "stl10_binary" / "train_X.bin"
    path.write_bytes(path.read_bytes()[:-5])
    return "stl10", "train", tmp, (str(path), "3x96x96")


def _case_stl_label_count(tmp: Path, w: SimpleNamespace):
    w.stl10(tmp)
    path = tmp / "stl10_binary" / "test_y.bin"
    path.write_bytes(path.read_bytes()[:-1])
    return "stl10", "test", tmp, (str(path), "7 labels for 8 images")


def _case_mnist_missing(tmp: Path, w: SimpleNamespace):
    return "mnist", "test", tmp, (str(tmp / "MNIST" / "raw"), "t10k", "--download", QUICK)


def _case_mnist_truncated(tmp: Path, w: SimpleNamespace):
    w.mnist(tmp, "MNIST")
    path = _truncate(tmp / "MNIST" / "raw" / "train-images-idx3-ubyte")
    return "mnist", "train", tmp, (str(path), "idx")


def _case_fmnist_labels(tmp: Path, w: SimpleNamespace):
    w.mnist(tmp, "FashionMNIST")
    path = tmp / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    w.idx(path, np.zeros(3, np.uint8))
    return "fashion-mnist", "test", tmp, (str(path), "3 labels for 10 images")


def _case_unknown_split(tmp: Path, w: SimpleNamespace):
    return "digits", "valid", tmp, ("'valid'", "train, val, test")


def _case_folder_missing(tmp: Path, w: SimpleNamespace):
    return f"imagefolder:{tmp / 'nope'}", "train", tmp, (str(tmp / "nope"), "train/<class>/")


def _case_folder_no_path(tmp: Path, w: SimpleNamespace):
    return "imagefolder", "train", tmp, ("imagefolder:<path>", QUICK)


def _case_folder_corrupt_image(tmp: Path, w: SimpleNamespace):
    w.imagefolder(tmp)
    path = tmp / "train" / "dog" / "0001.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    return f"imagefolder:{tmp}", "train", tmp, (str(path), "cannot decode")


def _case_folder_empty_class(tmp: Path, w: SimpleNamespace):
    w.imagefolder(tmp)
    (tmp / "train" / "owl").mkdir()
    return f"imagefolder:{tmp}", "train", tmp, (str(tmp / "train" / "owl"), "no .jpg")


def _case_folder_test_class_not_in_train(tmp: Path, w: SimpleNamespace):
    w.imagefolder(tmp)
    (tmp / "test" / "owl").mkdir()
    return f"imagefolder:{tmp}", "test", tmp, (str(tmp / "test"), "['owl'] are not in")


def _case_folder_no_train(tmp: Path, w: SimpleNamespace):
    w.imagefolder(tmp, {"test": 1})
    return f"imagefolder:{tmp}", "test", tmp, (str(tmp / "train"), "train/<class>/*.png")


def _case_path_on_fixed_dataset(tmp: Path, w: SimpleNamespace):
    return f"cifar10:{tmp}", "train", tmp, ("imagefolder:<path>",)


BAD_DATA = [
    _case_missing_root,
    _case_missing_batch,
    _case_truncated_pickle,
    _case_wrong_array_size,
    _case_label_count,
    _case_label_range,
    _case_evil_pickle,
    _case_bad_meta,
    _case_stl_truncated,
    _case_stl_label_count,
    _case_mnist_missing,
    _case_mnist_truncated,
    _case_fmnist_labels,
    _case_unknown_split,
    _case_folder_missing,
    _case_folder_no_path,
    _case_folder_corrupt_image,
    _case_folder_empty_class,
    _case_folder_test_class_not_in_train,
    _case_folder_no_train,
    _case_path_on_fixed_dataset,
]


@pytest.mark.parametrize("case", BAD_DATA, ids=[c.__name__[6:] for c in BAD_DATA])
def test_bad_data_is_a_one_line_dataset_error(
    tmp_path: Path, case, capsys: pytest.CaptureFixture, data_writers: SimpleNamespace
) -> None:
    name, split, root, expected = case(tmp_path, data_writers)
    with pytest.raises(DatasetError) as err:
        get_dataset(name, split, root=root)
    msg = str(err.value)
    assert "\n" not in msg and msg.strip() == msg
    for part in expected:
        assert part in msg, f"{part!r} not in {msg!r}"
    assert "pwned" not in capsys.readouterr().out


def test_unknown_dataset_is_a_registry_error_with_a_suggestion() -> None:
    with pytest.raises(RegistryError) as err:
        get_dataset("cifar-10")
    assert "did you mean 'cifar10'" in str(err.value) and "\n" not in str(err.value)


def test_image_size_only_for_image_folders() -> None:
    with pytest.raises(ConfigError):
        get_dataset("digits", image_size=64)


def test_imagefolder_loader_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        imagefolder_loader(tmp_path / "imagenet", "val", 8, train=False, workers=0)
    msg = str(err.value)
    assert "\n" not in msg and f"{tmp_path / 'imagenet'}/val/<wnid>/*.JPEG" in msg and QUICK in msg
    (tmp_path / "imagenet" / "val" / "n01440764").mkdir(parents=True)
    with pytest.raises(DatasetError, match="unusable"):
        imagefolder_loader(tmp_path / "imagenet", "val", 8, train=False, workers=0)


def test_tests_cannot_reach_the_network() -> None:
    import urllib.request

    with pytest.raises(OSError, match="must not use the network"):
        urllib.request.urlopen("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", timeout=5)
