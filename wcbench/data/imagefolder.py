"""``imagefolder:<path>``: any ``train/<class>/`` + ``test/<class>/`` tree, loaded whole into memory.

Classes are the sorted sub-folder names of ``<path>/train`` (torchvision's ``ImageFolder`` convention);
``test`` may hold the same classes or a subset, labelled by the train order. Files are found
recursively with torchvision's image extensions. Decoding is parallel: the bytes are read by a thread
pool, JPEGs are decoded in batches by ``torchvision.io.decode_jpeg`` (libjpeg-turbo; about 3 s for the
60k CIFAR-10 JPEG mirror on 2 cores), other formats by ``torchvision.io.decode_image`` and, where that
cannot (BMP, TIFF, ...) or is unavailable, by Pillow. Everything is converted to RGB.

Images keep their size when they all share one square size and no ``image_size`` is asked for (a
CIFAR-sized folder stays 32x32); otherwise each is resized (shorter side to ``image_size``, default 32,
antialiased) and centre-cropped square. ``mean``/``std`` are computed from the train split per channel
(memoised in-process only, keyed by the folder and its modification time).
"""

from __future__ import annotations

import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from wcbench.cpus import allowed_cpus
from wcbench.data.datasets import (
    QUICK_HINT,
    ArrayDataset,
    Triple,
    channel_stats,
    check_split,
    corrupt_error,
)
from wcbench.errors import DatasetError
from wcbench.registry import DATASETS

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
DEFAULT_IMAGE_SIZE = 32
_CHUNK = 512
_STATS: dict[tuple, tuple[Triple, Triple, int]] = {}


def _layout(root: Path) -> str:
    return f"an image folder: {root}/train/<class>/*.png|*.jpg and {root}/test/<class>/*.png|*.jpg"


def _not_found(root: Path, path: Path, detail: str = "") -> DatasetError:
    detail = f": {detail}" if detail else ""
    return DatasetError(
        " ".join(
            f"dataset 'imagefolder' not found at {path}{detail} (expected {_layout(root)}); it cannot be "
            f"downloaded automatically: point imagefolder:<path> at such a tree, or {QUICK_HINT}".split()
        )
    )


def _classes(root: Path, split: str) -> list[str]:
    folder = root / split
    if not folder.is_dir():
        raise _not_found(root, folder)
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    if not classes:
        raise _not_found(root, folder, "no class folders")
    return classes


def _files(folder: Path) -> list[Path]:
    found = []
    for dirpath, _dirs, names in sorted(os.walk(folder, followlinks=True)):
        found += [Path(dirpath) / n for n in sorted(names) if n.lower().endswith(IMG_EXTENSIONS)]
    return found


def list_images(root: Path, split: str) -> tuple[list[str], list[Path], list[int]]:
    """(classes, files, labels) of ``root/split``; classes and label order come from ``root/train``."""
    root = Path(root)
    classes = _classes(root, "train")
    if len(classes) < 2:  # one class trains to 100% accuracy and means nothing
        raise _not_found(
            root, root / "train", f"only one class folder ({classes[0]}); classification needs two or more"
        )
    here = classes if split == "train" else _classes(root, split)
    extra = sorted(set(here) - set(classes))
    if extra:
        raise _not_found(root, root / split, f"classes {extra[:3]} are not in {root / 'train'}")
    index = {c: i for i, c in enumerate(classes)}
    files: list[Path] = []
    labels: list[int] = []
    for c in here:
        got = _files(root / split / c)
        if not got:
            raise _not_found(root, root / split / c, f"no {'/'.join(IMG_EXTENSIONS)} files in class folder")
        files += got
        labels += [index[c]] * len(got)
    return classes, files, labels


def _pil_decode(data: bytes) -> torch.Tensor:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        arr = np.array(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _decode_one(path: Path, data: bytes, layout: str) -> torch.Tensor:
    if not data:
        raise corrupt_error("imagefolder", path, "empty file", layout)
    try:
        from torchvision.io import ImageReadMode, decode_image

        img = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
        if img.dtype == torch.uint8:  # 16-bit PNGs come back as uint16: Pillow converts those
            return img
    except Exception:  # unsupported format or no image ops: Pillow decides
        pass
    try:
        return _pil_decode(data)
    except Exception as exc:
        raise corrupt_error(
            "imagefolder", path, f"cannot decode image: {type(exc).__name__}: {exc}", layout
        ) from exc


def _check_pixels(path: Path, data: bytes) -> None:
    """Refuse an image whose header declares more than Pillow's ``Image.MAX_IMAGE_PIXELS`` pixels, before
    anything decodes it: torchvision's decoders skip Pillow's decompression-bomb check, and an 873 KB
    PNG can declare 30000x30000 pixels (2.7 GB decoded). Headers Pillow cannot read pass unchecked (the
    decoders then name the file)."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if not limit:  # the user switched Pillow's limit off
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:  # lazy: reads the header only
                width, height = im.size
    except Image.DecompressionBombError:
        width, height = limit + 1, 1
    except Exception:  # noqa: BLE001 - not an image Pillow knows: the decoders decide
        return
    if width * height > limit:
        raise DatasetError(
            f"image {path} declares {width}x{height} pixels, over the limit of {limit} "
            f"(PIL.Image.MAX_IMAGE_PIXELS); resize or remove it"
        )


def _load_chunk(paths: list[Path], layout: str) -> list[torch.Tensor]:
    """Read and decode a chunk of files; JPEGs go to torchvision in one batched call. Each file's
    declared size is checked first (:func:`_check_pixels`)."""
    items = [(p, _read_bytes(p)) for p in paths]
    for p, d in items:
        _check_pixels(p, d)
    out: list[torch.Tensor | None] = [None] * len(items)
    jpeg = [i for i, (_, d) in enumerate(items) if d[:2] == b"\xff\xd8"]
    if jpeg:
        try:
            from torchvision.io import ImageReadMode, decode_jpeg

            decoded = decode_jpeg(
                [torch.frombuffer(bytearray(items[i][1]), dtype=torch.uint8) for i in jpeg],
                mode=ImageReadMode.RGB,
            )
            for i, t in zip(jpeg, decoded, strict=True):
                out[i] = t
        except Exception:  # one bad file spoils the batch: fall back to one by one, to name it
            pass
    return [t if t is not None else _decode_one(*items[i], layout) for i, t in enumerate(out)]


def _resize_square(img: torch.Tensor, size: int) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as F

    if img.shape[1] != size or img.shape[2] != size:
        img = F.resize(img, [size], antialias=True)
        img = F.center_crop(img, [size, size])
    return img


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path} ({exc.strerror or exc})") from exc


def decode_images(
    paths: list[Path],
    image_size: int | None = None,
    workers: int | None = None,
    layout: str = "an image file",
) -> torch.Tensor:
    """Decode ``paths`` to one uint8 tensor (N, 3, S, S) in parallel; see the module docstring."""
    workers = workers or min(8, allowed_cpus())
    chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
    with warnings.catch_warnings(), ThreadPoolExecutor(workers) as pool:
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision.io decoders (0.29+)
        images = [t for chunk in pool.map(lambda c: _load_chunk(c, layout), chunks) for t in chunk]
    size = image_size or DEFAULT_IMAGE_SIZE
    if not images:
        return torch.empty(0, 3, size, size, dtype=torch.uint8)
    sizes = {tuple(t.shape[1:]) for t in images}
    first = next(iter(sizes))
    if len(sizes) == 1 and first[0] == first[1] and image_size in (None, first[0]):
        return torch.stack(images)
    return torch.stack([_resize_square(t, size) for t in images])


def _stats_key(root: Path, image_size: int | None) -> tuple:
    """The train split's identity for the in-process statistics memo: path, size, folder mtimes."""
    train = (root / "train").resolve()
    stamps = tuple(
        e.stat().st_mtime_ns for e in sorted(os.scandir(train), key=lambda e: e.name) if e.is_dir()
    )
    return (str(train), image_size, train.stat().st_mtime_ns, stamps)


def _train_stats(root: Path, image_size: int | None) -> tuple[Triple, Triple, int]:
    """(mean, std, size) of the train split, decoded once per process and folder state."""
    key = _stats_key(root, image_size)
    if key not in _STATS:
        _, files, _ = list_images(root, "train")
        images = decode_images(files, image_size, layout=_layout(root))
        _STATS[key] = (*channel_stats(images), images.shape[2])
    return _STATS[key]


@DATASETS.register("imagefolder")
def imagefolder(
    split: str, root: Path, download: bool = False, *, image_size: int | None = None
) -> ArrayDataset:
    """``imagefolder:<path>``: your images in ``<path>/train/<class>/`` and ``<path>/test/<class>/``.

    Returns split ``split`` of the folder ``root``. Called through
    ``get_dataset("imagefolder:<path>", split)``; ``download`` is ignored (nothing to fetch). The
    test split takes the train split's image size and normalisation constants.
    """
    check_split("imagefolder", split)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise _not_found(root, root)
    if image_size is not None and image_size < 1:
        raise DatasetError(f"image_size must be a positive number of pixels, got {image_size}")
    classes, files, labels = list_images(root, split)
    if split == "train":
        images = decode_images(files, image_size, layout=_layout(root))
        mean, std = channel_stats(images)
        _STATS[_stats_key(root, image_size)] = (mean, std, images.shape[2])
    else:
        mean, std, size = _train_stats(root, image_size)
        images = decode_images(files, image_size or size, layout=_layout(root))
    std = tuple(max(s, 1e-3) for s in std)  # a constant channel: keep normalisation finite
    return ArrayDataset(
        name=f"imagefolder:{root}",
        images=images,
        labels=torch.tensor(labels, dtype=torch.int64),
        classes=tuple(classes),
        mean=mean,
        std=std,  # type: ignore[arg-type]
    )
