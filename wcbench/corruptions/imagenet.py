"""ImageNet-C for your own data: the ImageNet-scale severities and the official folder layout.

Reproduces hendrycks/robustness ``ImageNet-C/create_c/make_imagenet_c.py`` (Hendrycks & Dietterich 2019;
the ImageNet-C of the paper's Table 3): every image of an ImageNet-layout folder (``<src>/<wnid>/*``) is
resized (shorter side 256, Pillow bilinear) and centre-cropped to 224x224 as the script's
``trn.Compose([trn.Resize(256), trn.CenterCrop(224)])``, corrupted by the function of the same name
with the script's ImageNet parameters (:data:`IMAGENET_SEVERITY_PARAMS`), cast with ``np.uint8``
(truncation) and saved as JPEG quality 85 (``optimize=True``) to
``<out>/<corruption>/<severity>/<wnid>/<stem>.JPEG``: the layout the ``imagenet-c`` scorer reads.

The corruption functions are those of the CIFAR engine (:mod:`wcbench.corruptions.functions`, which
take the parameter table and the image size as they come), with what differs at this scale:
glass_blur's pixel "swap" reaches pixels already visited in a pass (offsets up to +-4), fog's plasma
map is 256x256 (cropped to 224), zoom_blur has its own steps, and frost crops the full photographs.

Determinism and resuming: the numbers of image ``<wnid>/<file>`` at (corruption, severity) come from a
generator seeded by ``(seed, corruption, severity, crc32("<wnid>/<file>"))``, so an image's output does
not depend on which others are made, in which order or process. Each file is written atomically; an
interrupted build rerun with the same arguments skips the files already there. The manifest
``wcbench-imagenet-c.json`` records the parameters, seed and counts.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from wcbench.corruptions.engine import ALL_CORRUPTIONS, CORRUPTIONS, SEVERITIES, chunk_rng, to_uint8
from wcbench.corruptions.functions import FUNCTIONS
from wcbench.errors import ConfigError, DatasetError

IMAGENET_SIZE = 224
RESIZE = 256
JPEG_QUALITY = 85
MANIFEST = "wcbench-imagenet-c.json"
IMAGENET_C_ENGINE_VERSION = "1"
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm")  # make_imagenet_c.py IMG_EXTENSIONS

#: make_imagenet_c.py's ``c = [...][severity - 1]`` of each function, severities 1..5, verbatim.
IMAGENET_SEVERITY_PARAMS: dict[str, tuple] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),  # gaussian_noise: c = [.08, .12, 0.18, 0.26, 0.38]
    "shot_noise": (60, 25, 12, 5, 3),  # shot_noise: c = [60, 25, 12, 5, 3]
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),  # impulse_noise: c = [.03, .06, .09, 0.17, 0.27]
    # defocus_blur: c = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)]  (radius, alias_blur)
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    # glass_blur: c = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)]  (sigma, delta, iters)
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    # motion_blur: c = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)]  (radius, sigma)
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    # zoom_blur: np.arange(1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02), (1, 1.31, 0.03)
    "zoom_blur": ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)),
    "snow": (  # snow: c = [...] (loc, scale, zoom, threshold, blur radius, blur sigma, blend)
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    # frost: c = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)]  (image weight, frost weight)
    "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    # fog: c = [(1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)]  (strength, wibble decay); map 256
    "fog": ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),  # brightness: c = [.1, .2, .3, .4, .5]
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),  # contrast: c = [0.4, .3, .2, .1, .05]
    # elastic_transform: c = [(244 * 2, 244 * 0.7, 244 * 0.1), (244 * 2, 244 * 0.08, 244 * 0.2),
    # (244 * 0.05, 244 * 0.01, 244 * 0.02), (244 * 0.07, 244 * 0.01, 244 * 0.02),
    # (244 * 0.12, 244 * 0.01, 244 * 0.02)]  (alpha, sigma, affine jitter; "244 should have been 224")
    "elastic_transform": tuple(
        (244 * a, 244 * b, 244 * c)
        for a, b, c in (
            (2, 0.7, 0.1),
            (2, 0.08, 0.2),
            (0.05, 0.01, 0.02),
            (0.07, 0.01, 0.02),
            (0.12, 0.01, 0.02),
        )
    ),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),  # pixelate: c = [0.6, 0.5, 0.4, 0.3, 0.25]
    "jpeg_compression": (25, 18, 15, 10, 7),  # jpeg_compression: c = [25, 18, 15, 10, 7]
    "speckle_noise": (0.15, 0.2, 0.35, 0.45, 0.6),  # speckle_noise: c = [.15, .2, 0.35, 0.45, 0.6]
    "gaussian_blur": (1, 2, 3, 4, 6),  # gaussian_blur: c = [1, 2, 3, 4, 6]
    "spatter": (  # spatter: c = [...] (loc, scale, sigma, threshold, intensity / mud sigma, mud?)
        (0.65, 0.3, 4, 0.69, 0.6, 0),
        (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1),
    ),
    "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),  # saturate: c = [...] (scale, shift)
}


def corrupt_imagenet(x: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """``make_imagenet_c.<name>(x, severity)`` on uint8 RGB images (N, 224, 224, 3) -> uint8, numbers from
    ``rng`` (the script uses the global ``np.random``; the distributions are its, the draws wcbench's)."""
    if name not in FUNCTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(ALL_CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be 1..5, got {severity}")
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (IMAGENET_SIZE, IMAGENET_SIZE, 3):
        raise ValueError(
            f"corrupt_imagenet() takes uint8 (N, {IMAGENET_SIZE}, {IMAGENET_SIZE}, 3) RGB images, "
            f"got {x.dtype} {tuple(x.shape)}"
        )
    out = FUNCTIONS[name](np.ascontiguousarray(x), severity, rng, params=IMAGENET_SEVERITY_PARAMS)
    return to_uint8(np.asarray(out))


def preprocess(path: str | Path) -> np.ndarray:
    """The script's loader and transform: Pillow RGB, torchvision's ``Resize(256)`` (shorter side to 256,
    the longer ``int(256 * long / short)``, Pillow bilinear) and ``CenterCrop(224)`` (offsets
    ``round((side - 224) / 2)``), written with Pillow alone; uint8 (224, 224, 3)."""
    from PIL import Image

    with open(path, "rb") as fh, Image.open(fh) as im:
        img = im.convert("RGB")
    w, h = img.size
    if w <= h:
        size = (RESIZE, int(RESIZE * h / w))
    else:
        size = (int(RESIZE * w / h), RESIZE)
    if size != (w, h):
        img = img.resize(size, Image.BILINEAR)
    w, h = img.size
    top, left = int(round((h - IMAGENET_SIZE) / 2.0)), int(round((w - IMAGENET_SIZE) / 2.0))
    return np.asarray(img.crop((left, top, left + IMAGENET_SIZE, top + IMAGENET_SIZE)), dtype=np.uint8)


def image_rng(seed: int, name: str, severity: int, key: str) -> np.random.Generator:
    """The generator of image ``key`` (``"<wnid>/<file>"``) at (``name``, ``severity``)."""
    return chunk_rng(seed, name, severity, zlib.crc32(key.encode()))


def list_val_images(src: Path) -> list[tuple[str, Path]]:
    """``(wnid, path)`` of every image under ``src/<wnid>/`` (sorted folders and names, as the script)."""
    src = Path(src).expanduser()
    layout = f"an ImageNet-layout folder: {src}/<wnid>/*.JPEG"
    if not src.is_dir():
        raise DatasetError(f"source folder not found at {src} (expected {layout})")
    found: list[tuple[str, Path]] = []
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        found += [(folder.name, p) for p in sorted(folder.rglob("*")) if p.suffix.lower() in IMG_EXTENSIONS]
    if not found:
        raise DatasetError(f"no images under {src} (expected {layout})")
    return found


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    from wcbench.files import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=JPEG_QUALITY, optimize=True)


def _build_one(
    task: tuple[str, int], src_files: Sequence[tuple[str, str]], out: str, seed: int
) -> tuple[str, int, int, int]:
    """Every missing output of one (corruption, severity): (name, severity, written, skipped)."""
    name, severity = task
    written = skipped = 0
    for wnid, path in src_files:
        p = Path(path)
        target = Path(out) / name / str(severity) / wnid / f"{p.stem}.JPEG"
        if target.exists():
            skipped += 1
            continue
        x = preprocess(p)[None]
        key = f"{wnid}/{p.name}"
        y = corrupt_imagenet(x, name, severity, image_rng(seed, name, severity, key))
        _write_jpeg(target, y[0])
        written += 1
    return name, severity, written, skipped


def build_imagenet_c(
    src: str | Path,
    out: str | Path,
    *,
    seed: int = 0,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    workers: int = 1,
    progress: Callable[[str, int, int, int], None] | None = None,
) -> dict[str, Any]:
    """Write ``<out>/<corruption>/<severity>/<wnid>/<stem>.JPEG`` for every image of ``src`` (module doc).

    ``corruptions`` default to the 15 of the benchmark (the 4 extra ones may be named); ``workers``
    processes each take one (corruption, severity) at a time. Returns the manifest (also written to
    ``<out>/wcbench-imagenet-c.json``)."""
    from wcbench.files import atomic_write_json, read_json

    names = list(corruptions) if corruptions is not None else list(CORRUPTIONS)
    unknown = [c for c in names if c not in ALL_CORRUPTIONS]
    if unknown or not names:
        raise ConfigError(f"unknown corruption(s) {unknown or names}; known: {', '.join(ALL_CORRUPTIONS)}")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad or not severities:
        raise ConfigError(f"severities must be a non-empty subset of 1..5, got {list(severities)}")
    files = [(w, str(p)) for w, p in list_val_images(Path(src))]
    out_dir = Path(out).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST
    settings = {
        "layout": "<corruption>/<severity>/<wnid>/<stem>.JPEG (ImageNet-C)",
        "source": str(Path(src).expanduser().resolve()),
        "num_images": len(files),
        "num_classes": len({w for w, _ in files}),
        "seed": int(seed),
        "engine_version": IMAGENET_C_ENGINE_VERSION,
        "generator": "wcbench.corruptions: hendrycks/robustness make_imagenet_c.py, ImageNet severities",
        "preprocess": f"Resize({RESIZE}) + CenterCrop({IMAGENET_SIZE}); JPEG quality {JPEG_QUALITY}",
        "frost": "the official frost photographs (imagecorruptions 1.1.2 wheel, Apache-2.0)",
    }
    if manifest_path.exists():
        old = read_json(manifest_path)
        differs = [k for k in ("source", "seed", "engine_version") if old.get(k) != settings[k]]
        if differs:
            raise ConfigError(
                f"{out_dir} holds an ImageNet-C build with another {', '.join(differs)} "
                f"({old.get(differs[0])!r}); use a new --out, or the same --src and --seed to resume"
            )
    done: dict[str, list[int]] = (
        {} if not manifest_path.exists() else dict(read_json(manifest_path).get("done", {}))
    )
    tasks = [(c, s) for c in names for s in severities]
    run = functools.partial(_build_one, src_files=files, out=str(out_dir), seed=int(seed))

    def record(res: tuple[str, int, int, int]) -> None:
        name, severity, written, skipped = res
        done[name] = sorted(set(done.get(name, [])) | {severity})
        atomic_write_json(manifest_path, {**settings, "done": done})
        if progress is not None:
            progress(name, severity, written, skipped)

    if workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(min(workers, len(tasks))) as pool:
            for res in pool.map(run, tasks):
                record(res)
    else:
        for task in tasks:
            record(run(task))
    manifest = {**settings, "done": done}
    atomic_write_json(manifest_path, manifest)
    return manifest
