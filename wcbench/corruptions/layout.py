"""The official CIFAR-10-C file layout: writing it for any CIFAR-sized dataset, and reading it by memory map.

Layout (as ``make_cifar_c.py`` writes it and RobustBench's ``load_cifar10c`` reads it)::

    <root>/<corruption>.npy   uint8 (5 n, 32, 32, 3): severity s in rows (s - 1) n .. s n - 1
    <root>/labels.npy         the n test labels repeated 5 times (uint8; int64 if a label exceeds 255)

wcbench also writes ``<root>/wcbench-c.json`` (what was generated, from what, with which seed and
engine version, and the SHA-256 of every file) so that a rerun resumes instead of redoing finished
corruptions, and so that a score can say exactly which files it read.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from wcbench.corruptions.engine import ALL_CORRUPTIONS, IMAGE_SIZE, SEVERITIES, corrupt
from wcbench.errors import DatasetError
from wcbench.files import sha256_file

ENGINE_VERSION = "2"  # 2: frost crops the official photographs (1: procedural textures)
MANIFEST_FILE = "wcbench-c.json"
C_LAYOUT = (
    "the CIFAR-10-C layout: <root>/<corruption>.npy uint8 (5n, 32, 32, 3), severities 1..5 in blocks of n, "
    "and <root>/labels.npy (5n,)"
)

ProgressFn = Callable[[str, int, float], None]


def _layout_error(root: Path, what: str) -> DatasetError:
    return DatasetError(
        f"no usable corruption data at {root}: {what} (expected {C_LAYOUT}); make it with `wcbench data "
        f"corrupt --dataset D --out {root}`, or download the official CIFAR-10-C / CIFAR-100-C there"
    )


def open_c_layout(root: str | Path, corruption: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(images memmap (5n, H, W, 3) uint8, labels (5n,) int64, n) of ``<root>/<corruption>.npy``; checked."""
    root = Path(root)
    path = root / f"{corruption}.npy"
    labels_path = root / "labels.npy"
    if not root.is_dir():
        raise _layout_error(root, "folder missing")
    if not path.is_file():
        raise _layout_error(root, f"missing {path.name}")
    if not labels_path.is_file():
        raise _layout_error(root, "missing labels.npy")
    try:
        images = np.load(path, mmap_mode="r")
        labels = np.load(labels_path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise _layout_error(root, f"unreadable {path.name} or labels.npy ({exc})") from exc
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise _layout_error(
            root, f"{path.name} is {images.dtype} {images.shape}, expected uint8 (5n, H, W, 3)"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise _layout_error(root, f"labels.npy is {labels.dtype} {labels.shape}, expected integers (5n,)")
    if images.shape[0] != labels.shape[0] or images.shape[0] % 5:
        raise _layout_error(
            root,
            f"{path.name} has {images.shape[0]} images and labels.npy {labels.shape[0]}; expected 5n each",
        )
    return images, np.asarray(labels, dtype=np.int64), images.shape[0] // 5


# --------------------------------------------------------------------------------------------------
# writing


_WORKER_IMAGES: np.ndarray | None = None


def _init_worker(images: np.ndarray) -> None:
    global _WORKER_IMAGES
    import torch

    torch.set_num_threads(1)
    _WORKER_IMAGES = images


def _write_one(
    root: str, name: str, seed: int, images: np.ndarray | None = None, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Write ``<root>/<name>.npy`` (all 5 severities) atomically; returns timing and hash."""
    from wcbench.files import atomic_path

    x = images if images is not None else _WORKER_IMAGES
    assert x is not None
    n = x.shape[0]
    final = Path(root) / f"{name}.npy"
    seconds: dict[int, float] = {}
    with atomic_path(final) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(5 * n, *x.shape[1:]))
        for s in SEVERITIES:
            start = time.perf_counter()
            out[(s - 1) * n : s * n] = corrupt(x, name, s, seed)
            seconds[s] = time.perf_counter() - start
            if progress is not None:
                progress(name, s, seconds[s])
        out.flush()
        del out
    return {"name": name, "seconds": seconds, "sha256": sha256_file(final), "n": n}


def write_c_layout(
    dataset: Any,
    out_dir: str | Path,
    seed: int = 0,
    corruptions: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
    *,
    workers: int = 1,
    source: str | None = None,
) -> dict[str, Any]:
    """Write the -C layout of ``dataset`` (an :class:`~wcbench.data.ArrayDataset`, usually a test split).

    ``corruptions`` defaults to all 19. Finished corruptions recorded in the manifest with the same
    dataset fingerprint, seed and engine version are kept (a rerun resumes); anything else present is
    regenerated. ``progress(name, severity, seconds)`` is called as each severity finishes (with
    ``workers > 1``: once per corruption, with severity 0 and the seconds of all five). Returns the
    manifest (with per-corruption images/second).
    """
    from wcbench.files import atomic_write_json, atomic_writer, read_json

    names = list(corruptions) if corruptions is not None else list(ALL_CORRUPTIONS)
    unknown = [c for c in names if c not in ALL_CORRUPTIONS]
    if unknown:
        raise ValueError(f"unknown corruption(s) {unknown}; known: {', '.join(ALL_CORRUPTIONS)}")
    images = dataset.images.permute(0, 2, 3, 1).contiguous().numpy()
    if images.shape[1:3] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DatasetError(
            f"dataset {dataset.name!r} has {images.shape[1]}x{images.shape[2]} images; the CIFAR-scale "
            f"corruption engine needs 32x32 (for an image folder, load it with image_size=32)"
        )
    labels = dataset.labels.numpy()
    label_dtype = np.uint8 if labels.size == 0 or int(labels.max()) < 256 else np.int64
    fingerprint = hashlib.sha256(images.tobytes() + labels.astype(np.int64).tobytes()).hexdigest()
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    manifest_path = root / MANIFEST_FILE
    old = read_json(manifest_path) if manifest_path.is_file() else {}
    same = (
        old.get("images_sha256") == fingerprint
        and old.get("seed") == int(seed)
        and old.get("engine_version") == ENGINE_VERSION
    )
    done: dict[str, Any] = dict(old.get("corruptions", {})) if same else {}
    done = {k: v for k, v in done.items() if (root / f"{k}.npy").is_file()}
    labels_path = root / "labels.npy"
    tiled = np.tile(labels.astype(label_dtype), 5)
    if not labels_path.is_file() or not same:
        with atomic_writer(labels_path) as f:
            np.save(f, tiled)
    manifest: dict[str, Any] = {
        "layout": C_LAYOUT,
        "dataset": dataset.name,
        "source": source or dataset.name,
        "num_images": int(images.shape[0]),
        "num_classes": int(getattr(dataset, "num_classes", int(labels.max()) + 1 if labels.size else 0)),
        "images_sha256": fingerprint,
        "labels_sha256": sha256_file(labels_path),
        "seed": int(seed),
        "engine_version": ENGINE_VERSION,
        "generator": "wcbench.corruptions: hendrycks/robustness make_cifar_c.py, CIFAR-scale severities",
        "frost": "the official frost photographs (imagecorruptions 1.1.2 wheel, Apache-2.0), shrunk by 0.2",
        "corruptions": done,
    }
    todo = [c for c in names if c not in done]

    def record(res: dict[str, Any]) -> None:
        total = sum(res["seconds"].values())
        done[res["name"]] = {
            "sha256": res["sha256"],
            "seconds": round(total, 3),
            "images_per_second": round(5 * res["n"] / total, 1) if total > 0 else None,
        }
        manifest["corruptions"] = {k: done[k] for k in ALL_CORRUPTIONS if k in done}
        atomic_write_json(manifest_path, manifest)

    atomic_write_json(manifest_path, manifest)
    if workers <= 1 or len(todo) <= 1:
        for name in todo:
            record(_write_one(str(root), name, seed, images, progress))
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(images,)) as pool:
            futures = [pool.submit(_write_one, str(root), name, seed) for name in todo]
            for fut in futures:
                res = fut.result()
                record(res)
                if progress is not None:  # severity 0: all five severities at once
                    progress(res["name"], 0, sum(res["seconds"].values()))
    return manifest
