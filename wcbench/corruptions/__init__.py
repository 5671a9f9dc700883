"""The corruption engine: CIFAR-10-C's 19 corruptions at CIFAR scale, and the official -C file layout.

Reproduces hendrycks/robustness ``ImageNet-C/create_c/make_cifar_c.py`` (Hendrycks & Dietterich 2019,
the CIFAR-10-C / CIFAR-100-C of the paper's Table 2) without ImageMagick, OpenCV or scikit-image; see
:mod:`wcbench.corruptions.functions` for what is kept from the script on purpose and
:mod:`wcbench.corruptions.frost` for the one thing that cannot be kept (the frost photographs).

    >>> from wcbench.corruptions import corrupt, write_c_layout
    >>> out = corrupt(images_nhwc_uint8, "motion_blur", severity=3, seed=0)   # uint8, same shape
    >>> write_c_layout(get_dataset("digits", "test"), "digits-C", seed=0)     # <corruption>.npy + labels.npy

Determinism: ``corrupt(x, name, severity, seed)`` is a pure function of its arguments (same bytes on
every run and machine with the same numpy / Pillow). Images are processed in fixed chunks of
:data:`CHUNK`, each with its own generator seeded by ``(seed, crc32(name), severity, chunk index)``.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from wcbench.corruptions.functions import FUNCTIONS, SEVERITY_PARAMS
from wcbench.corruptions.layout import (
    C_LAYOUT,
    ENGINE_VERSION,
    MANIFEST_FILE,
    open_c_layout,
    write_c_layout,
)

#: The 15 benchmark corruptions, in the order of the ImageNet-C paper (and REFERENCE.md).
CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
#: The 4 extra ("validation") corruptions of the CIFAR-10-C release.
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL_CORRUPTIONS: tuple[str, ...] = CORRUPTIONS + EXTRA_CORRUPTIONS
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
#: Images per independently seeded chunk (part of the output's definition: do not change).
CHUNK = 500
IMAGE_SIZE = 32

__all__ = [
    "ALL_CORRUPTIONS",
    "CHUNK",
    "CORRUPTIONS",
    "C_LAYOUT",
    "ENGINE_VERSION",
    "EXTRA_CORRUPTIONS",
    "MANIFEST_FILE",
    "SEVERITIES",
    "SEVERITY_PARAMS",
    "chunk_rng",
    "corrupt",
    "open_c_layout",
    "write_c_layout",
]


#: Corruptions that draw random numbers (the others are pure functions of the image).
_USES_RNG = frozenset(
    {
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "glass_blur",
        "motion_blur",
        "snow",
        "frost",
        "fog",
        "elastic_transform",
        "speckle_noise",
        "spatter",
    }
)


def _in_blocks(fn):  # noqa: ANN001, ANN202 - a corruption function
    from wcbench.corruptions.functions import _blockwise

    return lambda x, severity, rng: _blockwise(lambda xb: fn(xb, severity, rng), x.shape[0], x)


def chunk_rng(seed: int, name: str, severity: int, chunk: int) -> np.random.Generator:
    """The generator of chunk ``chunk`` of ``corrupt(.., name, severity, seed)``."""
    key = [int(seed) & 0xFFFFFFFFFFFFFFFF, zlib.crc32(name.encode()), int(severity), int(chunk)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))


def _check(name: str, severity: int) -> None:
    if name not in FUNCTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(ALL_CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be 1..5, got {severity}")


def to_uint8(values: np.ndarray) -> np.ndarray:
    """The script's final ``np.uint8(...)``: truncation toward zero (NaN -> 0, as numpy on x86)."""
    if values.dtype == np.uint8:
        return values
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    return np.clip(np.trunc(v), 0, 255).astype(np.uint8)


def corrupt(images: np.ndarray | torch.Tensor, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """Corrupt uint8 RGB images (N, 32, 32, 3) with ``name`` at ``severity`` (1..5) -> uint8 (N, 32, 32, 3).

    Reproduces the function of the same name in ``make_cifar_c.py`` with its CIFAR-scale parameters
    (:data:`SEVERITY_PARAMS`), batched; deterministic in ``seed``.
    """
    _check(name, severity)
    x = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(
            f"corrupt() takes uint8 (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3) RGB images (the CIFAR scale its "
            f"parameters are made for), got {x.dtype} {tuple(x.shape)}"
        )
    fn = FUNCTIONS[name]
    if name not in _USES_RNG:  # deterministic: cache-sized blocks, same bytes
        fn = _in_blocks(fn)
    out = np.empty_like(x)
    for k, start in enumerate(range(0, x.shape[0], CHUNK)):
        part = np.ascontiguousarray(x[start : start + CHUNK])
        out[start : start + CHUNK] = to_uint8(
            np.asarray(fn(part, severity, chunk_rng(seed, name, severity, k)))
        )
    return out
