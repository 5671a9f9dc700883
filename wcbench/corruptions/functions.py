"""The 19 corruptions of CIFAR-10-C at CIFAR scale, batched.

Each function reproduces the function of the same name in hendrycks/robustness
``ImageNet-C/create_c/make_cifar_c.py`` (Hendrycks & Dietterich 2019; the CIFAR-10-C of the paper's
Table 2), with that script's severity parameters, on a batch of 32x32 RGB images: ``fn(x, severity,
rng)`` takes uint8 (N, 32, 32, 3) and returns float values in [0, 255] before the script's final
``np.uint8(...)`` cast (which :func:`wcbench.corruptions.corrupt` applies: truncation, not rounding).
``fn(x, severity, rng, params=IMAGENET_SEVERITY_PARAMS)`` on (N, 224, 224, 3) is ``make_imagenet_c.py``'s
function of that name (:mod:`wcbench.corruptions.imagenet`): the image size comes from ``x``.

What is kept from the official script, on purpose (as seen running hendrycks/robustness's
``make_cifar_c.py`` unchanged):

- glass_blur's "swap" ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on numpy row views copies: the
  pixel takes its neighbour's value and the neighbour keeps its own; offsets come from
  ``randint(-1, 1)``, i.e. -1 or 0 only; pixels are visited from (31, 31) down to (2, 2), so within one
  iteration every pixel reads neighbours not yet changed (which makes the pass a parallel gather);
- frost chooses its texture with ``randint(5)``: the sixth texture is never used;
- motion_blur and snow use ImageMagick's one-sided motion kernel (re-implemented in
  :mod:`wcbench.corruptions._ops`; no ImageMagick needed), so severities 3 (6, 2) and 4 (8, 2) differ
  only by taps whose weights are below one 16-bit quantum: identical pixels for the same angle;
- elastic_transform's severity 1 is an affine jitter of 2.56 px with no elastic field
  (``gaussian(.., sigma=0) * 0``), the largest distortion of its five severities;
- contrast uses per-channel means (``axis=(0, 1)``), fog's plasma map is 32x32;
- spatter's liquid layer is cast to uint8 with ``astype`` (values above 1 wrap around, as numpy does);
- the float arithmetic follows the script's dtypes (float32 where it builds float32 arrays).

Randomness comes from the ``numpy.random.Generator`` passed in (the script uses the global
``np.random`` state and scikit-image's own generator): the distributions are the script's, the draws
are wcbench's, so outputs are deterministic by seed but not the official files' pixels.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from wcbench.corruptions import _ops
from wcbench.corruptions.frost import frost_texture

Array = np.ndarray
Params = dict[str, tuple]

SEVERITY_PARAMS: dict[str, tuple] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    "zoom_blur": (1.06, 1.11, 1.16, 1.21, 1.26),  # np.arange(1, stop, 0.01)
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "elastic_transform": tuple(
        (32 * a, 32 * b, 32 * c)
        for a, b, c in (
            (0, 0, 0.08),
            (0.05, 0.2, 0.07),
            (0.08, 0.06, 0.06),
            (0.1, 0.04, 0.05),
            (0.1, 0.03, 0.03),
        )
    ),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg_compression": (80, 65, 58, 50, 40),
    "speckle_noise": (0.06, 0.1, 0.12, 0.16, 0.2),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1),
    "spatter": (
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ),
    "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
}

SIZE = 32
#: Images per block of the heavy per-pixel work: a cache-sized block runs about 3x faster than a
#: 500-image chunk for zoom_blur. Blocks never change results (every draw is made before them).
BLOCK = 64


def _blockwise(fn: Callable[..., Array], n: int, *arrays: Array) -> Array:
    """``fn(*[a[i:i+BLOCK] for a in arrays])`` over blocks of the leading axis, concatenated."""
    return np.concatenate([fn(*(a[i : i + BLOCK] for a in arrays)) for i in range(0, n, BLOCK)])


def _unit(x: Array) -> Array:
    return np.asarray(x, dtype=np.float64) / 255.0


# ---------------------------------------------------------------------------------------------- noise


def gaussian_noise(
    x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS
) -> Array:
    """``clip(x + N(0, c)) * 255``, c = sigma on the [0, 1] scale."""
    c = params["gaussian_noise"][severity - 1]
    x = _unit(x)
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS) -> Array:
    """``clip(Poisson(x * c) / c) * 255``."""
    c = params["shot_noise"][severity - 1]
    x = _unit(x)
    return np.clip(rng.poisson(x * c) / c, 0, 1) * 255


def impulse_noise(
    x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS
) -> Array:
    """scikit-image ``random_noise(mode='s&p', amount=c)``: each value flipped w.p. c, to 1 or 0 evenly."""
    c = params["impulse_noise"][severity - 1]
    x = _unit(x).copy()
    flipped = rng.random(x.shape) <= c
    salted = rng.random(x.shape) <= 0.5
    x[flipped & salted] = 1.0
    x[flipped & ~salted] = 0.0
    return np.clip(x, 0, 1) * 255


def speckle_noise(
    x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS
) -> Array:
    """``clip(x + x * N(0, c)) * 255``."""
    c = params["speckle_noise"][severity - 1]
    x = _unit(x)
    return np.clip(x + x * rng.normal(size=x.shape, scale=c), 0, 1) * 255


# ---------------------------------------------------------------------------------------------- blur


def gaussian_blur(
    x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS
) -> Array:
    """scikit-image ``gaussian(x, sigma=c)`` per channel (mode nearest, truncate 4)."""
    c = params["gaussian_blur"][severity - 1]
    return np.clip(_ops.sk_gaussian(_unit(x), c, channels=True), 0, 1) * 255


def glass_shuffle(y: Array, draws: Array, delta: int = 1) -> Array:
    """The official local pixel "swap" of ``glass_blur`` on uint8 (N, 32, 32, 3), as it really behaves.

    ``draws`` (N, iterations, span, span, 2) holds ``(dx, dy)`` for pixel ``(delta + 1 + r, delta + 1 + c)``.
    The script's ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on numpy row views copies: ``x[h, w]``
    takes the neighbour's value and the neighbour keeps its own. Pixels are visited from (31, 31) down
    to (2, 2) and read only neighbours at (h - 1 or h, w - 1 or w), not yet visited in that pass, so each
    pass is a parallel gather from the previous pass's image.
    """
    n, size = y.shape[0], y.shape[1]
    lo, hi = delta + 1, size - delta
    span = hi - lo + 1
    rows = torch.arange(lo, hi + 1).view(1, span, 1)
    cols = torch.arange(lo, hi + 1).view(1, 1, span)
    bi = torch.arange(n).view(n, 1, 1)
    t = torch.from_numpy(np.ascontiguousarray(y))
    for it in range(draws.shape[1]):
        d = torch.from_numpy(np.ascontiguousarray(draws[:, it]))  # [..., 0] = dx, [..., 1] = dy
        t = t.clone()
        t[:, lo : hi + 1, lo : hi + 1] = t[bi, rows + d[..., 1], cols + d[..., 0]]
    return t.numpy()


def glass_shuffle_sequential(y: Array, draws: Array, delta: int) -> Array:
    """The official "swap" pass for any ``delta`` (ImageNet-C: up to 4), in the script's visiting order.

    ``draws`` (N, iterations, span, span, 2) holds ``(dx, dy)`` in the script's loop order (h = S - delta
    down to delta + 1, then w likewise). Each visit copies: ``x[h, w] = x[h + dy, w + dx]`` as it is at
    that moment. Rows are visited one after another (a row reads rows below it that this pass already
    changed); within a row, a pixel whose source lies to its right in the same row (already visited)
    takes that pixel's new value, resolved by pointer jumping, so a row is a few vectorised steps.
    """
    y = np.array(y, copy=True)
    n, size = y.shape[0], y.shape[1]
    hi = size - delta
    cols = np.arange(hi, delta, -1)  # visiting order of w
    bi = np.arange(n)[:, None]
    for it in range(draws.shape[1]):
        for i, h in enumerate(range(hi, delta, -1)):
            dx, dy = draws[:, it, i, :, 0], draws[:, it, i, :, 1]  # (N, span) in visiting order
            src_r, src_c = h + dy, cols[None, :] + dx
            value = y[
                bi, src_r, src_c
            ]  # every source's current value (rows above and the row's left part unvisited)
            chained = (dy == 0) & (dx > 0) & (src_c <= hi)  # a pixel of this row visited before it
            # position of the source in visiting order (earlier = larger w): k = hi - c
            ptr = np.where(chained, hi - src_c, np.arange(cols.size)[None, :])
            for _ in range(int(np.ceil(np.log2(max(cols.size, 2)))) + 1):
                ptr = np.take_along_axis(ptr, ptr, axis=1)
            y[:, h, delta + 1 : hi + 1] = np.take_along_axis(value, ptr[..., None], axis=1)[:, ::-1]
    return y


def glass_blur(x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS) -> Array:
    """Blur, then ``iterations`` passes of the official local pixel "swap" (a copy), then blur again."""
    sigma, delta, iterations = params["glass_blur"][severity - 1]
    n, size = x.shape[0], x.shape[1]
    y = (_ops.sk_gaussian(_unit(x), sigma, channels=True) * 255).astype(np.uint8)
    span = size - 2 * delta
    # the script draws (dx, dy) = randint(-delta, delta, 2) per pixel, h = 31..2 then w = 31..2:
    # offsets are -1 or 0 only (randint's high is exclusive); reversed to row-major (2..31) order
    draws = rng.integers(-delta, delta, size=(n, iterations, span, span, 2))
    if delta == 1:
        y = glass_shuffle(y, draws[:, :, ::-1, ::-1], delta)
    else:  # ImageNet scale: offsets reach pixels already visited in the pass
        y = glass_shuffle_sequential(y, draws, delta)
    return np.clip(_ops.sk_gaussian(y / 255.0, sigma, channels=True), 0, 1) * 255


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """``make_cifar_c.disk``: a normalised aliased disk on a 17x17 grid, ``cv2.GaussianBlur`` 3x3."""
    if radius <= 8:
        grid = np.arange(-8, 8 + 1)
        ksize = 3
    else:
        grid = np.arange(-radius, radius + 1)
        ksize = 5
    xx, yy = np.meshgrid(grid, grid)
    disk = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
    disk /= np.sum(disk)
    k = _ops.cv_gaussian_kernel(ksize, alias_blur)
    return _ops.cv_sep_filter_2d(disk, k, k)


def defocus_blur(
    x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS
) -> Array:
    """Each channel correlated (``cv2.filter2D``, reflect-101) with the anti-aliased disk kernel."""
    radius, alias = params["defocus_blur"][severity - 1]
    kernel = _disk(radius, alias).astype(np.float64)
    # rows and columns of zeros add exact zeros to every sum: correlate with the non-zero core only
    mid = kernel.shape[0] // 2  # 8 for radius <= 8 (a 17x17 grid), else the radius
    nz = np.flatnonzero(np.abs(kernel).sum(axis=0) + np.abs(kernel).sum(axis=1))
    r = int(max(abs(nz[0] - mid), abs(nz[-1] - mid))) if nz.size else 0
    core = kernel[mid - r : mid + r + 1, mid - r : mid + r + 1]
    out = _ops.correlate_reflect101(_unit(x), core)
    return np.clip(out, 0, 1) * 255


def motion_blur(x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS) -> Array:
    """ImageMagick ``MotionBlurImage(radius, sigma, angle ~ U(-45, 45))`` through 8-bit PNG."""
    radius, sigma = params["motion_blur"][severity - 1]
    angles = rng.uniform(-45, 45, size=x.shape[0])
    x = np.asarray(x, dtype=np.uint8)
    out = _blockwise(lambda xb, ab: _ops.im_motion_blur_u8(xb, radius, sigma, ab), x.shape[0], x, angles)
    return out.astype(np.float64)


def zoom_blur(x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS) -> Array:
    """Mean of the image and its centre zooms by ``np.arange(1, stop, 0.01)`` (float32, as the script)."""
    spec = params["zoom_blur"][severity - 1]
    stop, step = spec if isinstance(spec, tuple) else (spec, 0.01)  # CIFAR: stop; ImageNet: (stop, step)
    factors = np.arange(1, stop, step)

    def block(xb: Array) -> Array:
        xf = (np.asarray(xb) / 255.0).astype(np.float32)
        out = np.zeros_like(xf)
        for z in factors:
            out += _ops.clipped_zoom(xf, z)
        xf = (xf + out) / (len(factors) + 1)
        return np.clip(xf, 0, 1) * 255

    return _blockwise(block, x.shape[0], np.asarray(x))


# ---------------------------------------------------------------------------------------------- weather


def snow(x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS) -> Array:
    """Zoomed Gaussian snow layer, thresholded, motion-blurred (angle ~ U(-135, -45)), added twice."""
    c = params["snow"][severity - 1]
    n, size = x.shape[0], x.shape[1]
    xf = np.asarray(x, dtype=np.float32) / np.float32(255.0)
    layer = rng.normal(size=(n, size, size), loc=c[0], scale=c[1])
    layer = _ops.clipped_zoom(layer[..., None], c[2])
    layer[layer < c[3]] = 0
    layer8 = (np.clip(layer[..., 0], 0, 1) * 255).astype(np.uint8)
    angles = rng.uniform(-135, -45, size=n)
    blurred = _ops.im_motion_blur_u8(layer8, c[4], c[5], angles) / 255.0
    blurred = blurred[..., None]
    gray = _ops.cv_rgb2gray_f32(xf).reshape(n, size, size, 1)
    xf = c[6] * xf + (1 - c[6]) * np.maximum(xf, gray * np.float32(1.5) + np.float32(0.5))
    return np.clip(xf + blurred + np.rot90(blurred, k=2, axes=(1, 2)), 0, 1) * 255


def frost(x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS) -> Array:
    """``clip(c0 * x + c1 * crop)``, a random crop of photograph ``randint(5)`` (:func:`frost_texture`:
    shrunk by 0.2 for CIFAR-sized images, whole at ImageNet scale)."""
    c = params["frost"][severity - 1]
    n, size = x.shape[0], x.shape[1]
    idx = rng.integers(5, size=n)
    crops = np.empty((n, size, size, 3), dtype=np.uint8)
    for k in range(n):
        tex = frost_texture(int(idx[k]), size)
        r0 = rng.integers(0, tex.shape[0] - size)
        c0 = rng.integers(0, tex.shape[1] - size)
        crops[k] = tex[r0 : r0 + size, c0 : c0 + size]
    return np.clip(c[0] * np.asarray(x, dtype=np.float64) + c[1] * crops, 0, 255)


def fog(x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS) -> Array:
    """Add ``c0`` x a 32x32 plasma fractal (decay ``c1``), rescale by max / (max + c0)."""
    c = params["fog"][severity - 1]
    xf = _unit(x)
    max_val = xf.max(axis=(1, 2, 3), keepdims=True)
    size = xf.shape[1]
    mapsize = 1 << (size - 1).bit_length()  # make_cifar_c: 32; make_imagenet_c: 256 (cropped to 224)
    xf = xf + c[0] * _ops.plasma_fractal(rng, xf.shape[0], mapsize, c[1])[:, :size, :size, None]
    return np.clip(xf * max_val / (max_val + c[0]), 0, 1) * 255


def spatter(x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS) -> Array:
    """Water (severities 1-3: Canny/distance-transform shading, pale turquoise) or mud (4-5, brown)."""
    c = params["spatter"][severity - 1]
    n, size = x.shape[0], x.shape[1]
    xf = np.asarray(x, dtype=np.float32) / np.float32(255.0)
    liquid = rng.normal(size=(n, size, size), loc=c[0], scale=c[1])
    liquid = _ops.sk_gaussian(liquid, c[2], channels=False)
    liquid[liquid < c[3]] = 0
    if c[5] == 0:
        # numpy's float -> uint8 cast: values >= 256 wrap around (modulo 256) on the usual platforms
        liquid8 = (liquid * 255).astype(np.int64).astype(np.uint8)
        edges = _ops.cv_canny(liquid8, 50, 150)
        dist = _ops.cv_distance_transform_l2_5(~edges)
        dist = np.minimum(dist, np.float32(20))
        dist = _ops.cv_blur3_float(dist).astype(np.uint8)
        dist = _ops.cv_equalize_hist(dist)
        ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float64)
        d = _ops.cv_filter2d(torch.from_numpy(dist.astype(np.float64))[:, None], ker)[:, 0].numpy()
        dist = np.clip(np.rint(d), 0, 255).astype(np.uint8)
        dist = _ops.cv_blur3_u8(dist).astype(np.float32)
        m = liquid8.astype(np.float32) * dist
        mx = m.max(axis=(1, 2), keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = m / mx
        m = (m * np.float32(c[4]))[..., None]
        color = np.array([175 / 255.0, 238 / 255.0, 238 / 255.0], dtype=np.float32)
        return np.clip(xf + m * color, 0, 1) * np.float32(255)
    m = np.where(liquid > c[3], 1, 0).astype(np.float32)
    m = _ops.sk_gaussian(m, c[4], channels=False).astype(np.float32)
    m[m < 0.8] = 0
    color = np.array([63 / 255.0, 42 / 255.0, 20 / 255.0], dtype=np.float32) * m[..., None]
    xf = xf * (1 - m[..., None])
    return np.clip(xf + color, 0, 1) * 255


# ---------------------------------------------------------------------------------------------- digital


def brightness(x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS) -> Array:
    """HSV value + c (clipped), back to RGB."""
    c = params["brightness"][severity - 1]
    hsv = _ops.rgb2hsv(_unit(x))
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return np.clip(_ops.hsv2rgb(hsv), 0, 1) * 255


def contrast(x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS) -> Array:
    """``(x - mean) * c + mean`` with per-image, per-channel means."""
    c = params["contrast"][severity - 1]
    xf = _unit(x)
    means = np.mean(xf, axis=(1, 2), keepdims=True)
    return np.clip((xf - means) * c + means, 0, 1) * 255


def saturate(x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS) -> Array:
    """HSV saturation * c0 + c1 (clipped), back to RGB."""
    c = params["saturate"][severity - 1]
    hsv = _ops.rgb2hsv(_unit(x))
    hsv[..., 1] = np.clip(hsv[..., 1] * c[0] + c[1], 0, 1)
    return np.clip(_ops.hsv2rgb(hsv), 0, 1) * 255


def jpeg_compression(
    x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS
) -> Array:
    """Pillow JPEG round trip at quality c (Pillow's defaults otherwise, as the script)."""
    quality = params["jpeg_compression"][severity - 1]
    out = np.empty_like(np.asarray(x, dtype=np.uint8))
    for k in range(out.shape[0]):
        buf = io.BytesIO()
        Image.fromarray(np.asarray(x[k], dtype=np.uint8)).save(buf, "JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as im:
            out[k] = np.asarray(im)
    return out


def pixelate(x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS) -> Array:
    """Pillow BOX resize to ``int(32 * c)`` and back to 32."""
    c = params["pixelate"][severity - 1]
    size = x.shape[1]
    small = int(size * c)
    out = np.empty_like(np.asarray(x, dtype=np.uint8))
    for k in range(out.shape[0]):
        im = Image.fromarray(np.asarray(x[k], dtype=np.uint8))
        out[k] = np.asarray(im.resize((small, small), Image.BOX).resize((size, size), Image.BOX))
    return out


def elastic_transform(
    x: Array, severity: int, rng: np.random.Generator, params: Params = SEVERITY_PARAMS
) -> Array:
    """Random affine (``cv2.warpAffine``, reflect-101) then a smooth displacement field (scipy, reflect)."""
    c = params["elastic_transform"][severity - 1]
    n, size = x.shape[0], x.shape[1]
    img = np.asarray(x, dtype=np.float32) / np.float32(255.0)
    center = np.float32((size, size)) // 2
    square = size // 3
    pts1 = np.float32([center + square, [center[0] + square, center[1] - square], center - square])
    # the script's draws, in its order: affine jitter, then the dx field, then the dy field
    jitter = rng.uniform(-c[2], c[2], size=(n, 3, 2)).astype(np.float32)
    u_dx = rng.uniform(-1, 1, size=(n, size, size))
    u_dy = rng.uniform(-1, 1, size=(n, size, size))
    rows = np.arange(size, dtype=np.float64)[None, :, None]
    cols = np.arange(size, dtype=np.float64)[None, None, :]

    def block(ib: Array, jb: Array, ub_dx: Array, ub_dy: Array) -> Array:
        pts2 = pts1[None] + jb
        m = _ops.cv_get_affine_transform(np.broadcast_to(pts1, pts2.shape), pts2)
        warped = _ops.cv_warp_affine_reflect101(ib, m)
        dx, dy = (
            (_ops.sk_gaussian(u, c[1], channels=False, mode="reflect", truncate=3) * c[0]).astype(np.float32)
            for u in (ub_dx, ub_dy)
        )
        out = _ops.map_coordinates_reflect(warped, rows + dy.astype(np.float64), cols + dx.astype(np.float64))
        return np.clip(out, 0, 1) * 255

    return _blockwise(block, n, img, jitter, u_dx, u_dy)


CorruptionFn = Callable[[Array, int, np.random.Generator], Array]

FUNCTIONS: dict[str, CorruptionFn] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "frost": frost,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
    "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur,
    "spatter": spatter,
    "saturate": saturate,
}
