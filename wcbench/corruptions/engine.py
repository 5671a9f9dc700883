"""The corruption engine: ``corrupt(images, name, severity, seed)`` and the corruption lists.

Reproduces hendrycks/robustness ``make_cifar_c.py`` at CIFAR scale (see the package docstring of
:mod:`wcbench.corruptions`); the per-corruption functions are in :mod:`wcbench.corruptions.functions`.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from wcbench.corruptions.functions import FUNCTIONS

#: The 15 benchmark corruptions, in the order of the ImageNet-C paper.
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
    (:data:`~wcbench.corruptions.functions.SEVERITY_PARAMS`), batched; deterministic in ``seed``.
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
