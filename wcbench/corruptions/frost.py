"""Procedural frost textures for the ``frost`` corruption.

The official generator (``make_cifar_c.py``) overlays crops of six photographs of frost
(``frost1.png`` ... ``frost6.jpg``, shipped with hendrycks/robustness, downscaled by 0.2 with
``cv2.resize``). Those images are not packaged anywhere wcbench can depend on, so wcbench draws six
frost-like textures procedurally instead: a deterministic function of the texture index, identical
on every machine. **They cannot reproduce the official frost pixels**: wcbench's ``frost`` keeps the
official blend ``clip(c0 * x + c1 * frost, 0, 255)``, severities, crop rule and the ``randint(5)``
choice (so the sixth texture is never used), but the texture content is wcbench's own. Frost numbers
from wcbench-generated -C data are therefore comparable with each other, not with the official
CIFAR-10-C ``frost.npy``.

Each texture is ice-crystal dendrites (straight branches with side branches at about 60 degrees, thin
bright lines, slightly blurred) over a low-frequency bright haze, tinted blue-white: a bright
texture (mean about 150 of 255), so that, as with the official photographs, the blend adds light
and its distortion rises with severity at 1->2->3 and falls where the image weight drops faster than
the frost weight grows (3->4, 4->5) on natural images.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

# (height, width) of the six textures after the official 0.2 downscale is accounted for
TEXTURE_SHAPES: tuple[tuple[int, int], ...] = (
    (172, 230),
    (196, 164),
    (150, 214),
    (236, 198),
    (168, 168),
    (208, 250),
)
TEXTURE_VERSION = "1"


def _haze(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    out = np.zeros((h, w))
    amp = 1.0
    for cells in (3, 6, 12, 24):
        grid = rng.random((cells + 1, cells + 1))
        out += amp * ndimage.zoom(grid, ((h + 1) / (cells + 1), (w + 1) / (cells + 1)), order=3)[:h, :w]
        amp *= 0.5
    out -= out.min()
    return out / max(out.max(), 1e-12)


def _dendrites(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    canvas = np.zeros((h, w))
    seeds = int(h * w / 900)
    stack = []
    for _ in range(seeds):
        y, x = rng.uniform(0, h), rng.uniform(0, w)
        theta = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.15, 0.45) * min(h, w)
        stack.append((y, x, theta, length, 1.0, 0))
    while stack:
        y, x, theta, length, bright, depth = stack.pop()
        steps = int(length)
        for s in range(steps):
            theta += rng.normal(0, 0.03)
            y += np.sin(theta)
            x += np.cos(theta)
            iy, ix = int(y) % h, int(x) % w
            canvas[iy, ix] = max(canvas[iy, ix], bright)
            if depth < 3 and s > 2 and rng.random() < 0.08:
                side = rng.choice((-1.0, 1.0)) * np.deg2rad(60) + rng.normal(0, 0.1)
                stack.append((y, x, theta + side, (steps - s) * 0.55, bright * 0.85, depth + 1))
    return ndimage.gaussian_filter(canvas, 0.6) * 2.2


@functools.cache
def frost_texture(index: int) -> np.ndarray:
    """Texture ``index`` (0..5) as uint8 (H, W, 3) RGB; deterministic, cached in memory."""
    if not 0 <= index < len(TEXTURE_SHAPES):
        raise IndexError(f"frost texture index {index} outside 0..{len(TEXTURE_SHAPES) - 1}")
    h, w = TEXTURE_SHAPES[index]
    rng = np.random.default_rng(np.random.SeedSequence([0xF057, index]))
    haze = _haze(rng, h, w)
    crystals = np.clip(_dendrites(rng, h, w), 0, 1)
    grain = ndimage.gaussian_filter(rng.random((h, w)), 0.8)
    grain = (grain - grain.mean()) / max(grain.std(), 1e-12)
    lum = np.clip(0.38 + 0.32 * haze + 0.55 * crystals + 0.04 * grain, 0, 1)
    tint = np.array([0.86, 0.94, 1.0])
    rgb = np.clip(lum[..., None] * tint * 255.0, 0, 255)
    out = np.asarray(rgb, dtype=np.uint8)
    out.setflags(write=False)
    return out
