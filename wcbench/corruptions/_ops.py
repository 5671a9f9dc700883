"""Array primitives the official CIFAR-C generator borrows from scikit-image, OpenCV and ImageMagick.

``make_cifar_c.py`` (hendrycks/robustness, ``ImageNet-C/create_c/``) calls scikit-image's ``gaussian``,
``rgb2hsv``/``hsv2rgb`` and ``random_noise``, OpenCV's ``GaussianBlur``, ``filter2D``, ``Canny``,
``distanceTransform``, ``blur``, ``equalizeHist``, ``getAffineTransform``/``warpAffine`` and
``cvtColor``, and ImageMagick's ``MotionBlurImage`` through Wand. wcbench depends on none of them: each
is re-implemented here, batched over a leading image axis, following the library's own arithmetic
(integer fixed point where the library uses it, float32 where it computes in float32, its border
modes). Where a library has several code paths (SIMD, IPP, a DFT for large kernels) results can differ
from it in the last bit of a float, which moves an output pixel by one level in rare cases; the tests
in ``tests/test_corruptions.py`` pin the arithmetic that matters.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from scipy import ndimage

# --------------------------------------------------------------------------------------------------
# scikit-image


def sk_gaussian(x: np.ndarray, sigma: float, *, channels: bool, mode: str = "nearest", truncate: float = 4.0):
    """``skimage.filters.gaussian`` on a batch (N, H, W[, C]): scipy's filter over H and W only.

    scikit-image forwards to ``scipy.ndimage.gaussian_filter`` with sigma 0 on the channel axis (and here
    on the batch axis too, which scipy skips), default mode ``nearest`` and ``truncate=4``.
    """
    sig = (0.0, sigma, sigma, 0.0) if channels else (0.0, sigma, sigma)
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return ndimage.gaussian_filter(x, sig, mode=mode, truncate=truncate)


def rgb2hsv(rgb: np.ndarray) -> np.ndarray:
    """``skimage.color.rgb2hsv`` on (..., 3) floats: V = max, S = ptp / V, H from the max channel.

    Ties resolve as scikit-image's successive masked assignments do: blue over green over red; NaN -> 0.
    """
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(-1)
    delta = np.ptp(rgb, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(delta == 0.0, 0.0, delta / v)
        h = np.where(
            b == v,
            4.0 + (r - g) / delta,
            np.where(g == v, 2.0 + (b - r) / delta, (g - b) / delta),
        )
        h = (h / 6.0) % 1.0
    h = np.where(delta == 0.0, 0.0, h)
    out = np.stack((h, s, v), axis=-1)
    out[np.isnan(out)] = 0
    return out


def hsv2rgb(hsv: np.ndarray) -> np.ndarray:
    """``skimage.color.hsv2rgb`` on (..., 3) floats (sector ``floor(6h) % 6`` through uint8, as there)."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    hi = np.floor(h * 6)
    f = h * 6 - hi
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    hi = hi.astype(np.uint8) % 6
    table = ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))
    sectors = [hi == k for k in range(6)]
    out = np.empty(hsv.shape, dtype=np.result_type(h, p))
    for ch in range(3):
        out[..., ch] = np.select(sectors, [row[ch] for row in table])
    return out


# --------------------------------------------------------------------------------------------------
# OpenCV (classic CPU paths; BORDER_DEFAULT = BORDER_REFLECT_101)


def cv_gaussian_kernel(ksize: int, sigma: float) -> np.ndarray:
    """``cv::getGaussianKernel(ksize, sigma, CV_32F)``: exp(-x^2 / 2 sigma^2), summed and scaled as OpenCV."""
    x = np.arange(ksize, dtype=np.float64) - (ksize - 1) * 0.5
    t = np.exp((-0.5 / (sigma * sigma)) * x * x).astype(np.float32)
    total = np.float64(0.0)
    for v in t:  # cv accumulates the float32 values in a double
        total += np.float64(v)
    return (t.astype(np.float64) * (1.0 / total)).astype(np.float32)


def _reflect101_index(n: int, pad: int) -> np.ndarray:
    idx = np.arange(-pad, n + pad)
    idx = np.abs(idx)
    return np.where(idx > n - 1, 2 * (n - 1) - idx, idx)


def cv_sep_filter_2d(img: np.ndarray, kx: np.ndarray, ky: np.ndarray) -> np.ndarray:
    """Separable float32 filter (rows with ``kx``, then columns with ``ky``), reflect-101; (..., H, W)."""
    r = len(kx) // 2
    h, w = img.shape[-2:]
    cols = _reflect101_index(w, r)
    rows = _reflect101_index(h, r)
    a = img.astype(np.float32)[..., cols]
    tmp = np.zeros(img.shape, dtype=np.float32)
    for i, k in enumerate(kx):
        tmp += np.float32(k) * a[..., i : i + w]
    b = tmp[..., rows, :]
    out = np.zeros(img.shape, dtype=np.float32)
    for i, k in enumerate(ky):
        out += np.float32(k) * b[..., i : i + h, :]
    return out


def cv_filter2d(
    img: torch.Tensor | np.ndarray, kernel: np.ndarray, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """``cv2.filter2D`` (correlation, centred anchor, BORDER_REFLECT_101) of (N, C, H, W) in ``dtype``."""
    x = torch.as_tensor(img).to(dtype)
    k = torch.as_tensor(np.asarray(kernel, dtype=np.float64)).to(dtype)
    kh, kw = k.shape
    n, c, h, w = x.shape
    pad = (kw // 2, kw // 2, kh // 2, kh // 2)
    if max(pad) >= min(h, w):  # torch's reflect needs pad < size; index explicitly
        rows = torch.as_tensor(_reflect101_index(h, kh // 2))
        cols = torch.as_tensor(_reflect101_index(w, kw // 2))
        xp = x[:, :, rows][:, :, :, cols]
    else:
        xp = torch.nn.functional.pad(x, pad, mode="reflect")
    weight = k.view(1, 1, kh, kw).expand(c, 1, kh, kw)
    return torch.nn.functional.conv2d(xp, weight, groups=c)


def correlate_reflect101(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``cv2.filter2D`` of each channel of (N, H, W, C) float64 with a small odd kernel, reflect-101."""
    kh, kw = kernel.shape
    ry, rx = kh // 2, kw // 2
    h, w = img.shape[1:3]
    p = img[:, _reflect101_index(h, ry)][:, :, _reflect101_index(w, rx)]
    out = np.zeros(img.shape, dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            if kernel[i, j] != 0:
                out += kernel[i, j] * p[:, i : i + h, j : j + w]
    return out


def cv_box_sum3(img: np.ndarray) -> np.ndarray:
    """Sum over each 3x3 window with BORDER_REFLECT_101, (..., H, W) -> same shape, in img's dtype."""
    h, w = img.shape[-2:]
    a = img[..., _reflect101_index(h, 1), :]
    a = a[..., :-2, :] + a[..., 1:-1, :] + a[..., 2:, :]
    a = a[..., _reflect101_index(w, 1)]
    return a[..., :-2] + a[..., 1:-1] + a[..., 2:]


def cv_blur3_float(img: np.ndarray) -> np.ndarray:
    """``cv2.blur(float32, (3, 3))``: exact sums in double, times 1/9 in double, rounded to float32."""
    return (cv_box_sum3(img.astype(np.float64)) * (1.0 / 9.0)).astype(np.float32)


def cv_blur3_u8(img: np.ndarray) -> np.ndarray:
    """``cv2.blur(uint8, (3, 3))``: integer 3x3 sum, times 1/9, rounded to nearest (half to even)."""
    s = cv_box_sum3(img.astype(np.int64))
    return np.clip(np.rint(s * (1.0 / 9.0)), 0, 255).astype(np.uint8)


def cv_equalize_hist(img: np.ndarray) -> np.ndarray:
    """``cv2.equalizeHist`` of each uint8 image in a batch (N, H, W), with OpenCV's float32 LUT."""
    n = img.shape[0]
    flat = img.reshape(n, -1)
    total = flat.shape[1]
    out = np.empty_like(flat)
    for k in range(n):  # 256-bin histograms: cheap per image
        hist = np.bincount(flat[k], minlength=256)
        first = int(np.flatnonzero(hist)[0])
        if hist[first] == total:
            out[k] = first
            continue
        scale = np.float32(255.0) / np.float32(total - hist[first])
        lut = np.zeros(256, dtype=np.float32)
        csum = np.cumsum(hist[first + 1 :]).astype(np.float32)
        lut[first + 1 :] = csum * scale
        lut_u8 = np.clip(np.rint(lut), 0, 255).astype(np.uint8)
        lut_u8[: first + 1] = 0
        out[k] = lut_u8[flat[k]]
    return out.reshape(img.shape)


_CANNY_TG22 = int(0.4142135623730950488016887242097 * (1 << 15) + 0.5)


def cv_canny(img: np.ndarray, low: float, high: float) -> np.ndarray:
    """``cv2.Canny(uint8, low, high)`` (aperture 3, L1 gradient) of a batch (N, H, W) -> bool edges.

    Sobel with BORDER_REPLICATE; magnitude |dx| + |dy|; non-maximum suppression with OpenCV's
    fixed-point sector test (tan 22.5 = 13573 / 2^15) and its asymmetric comparisons (``>`` before,
    ``>=`` after along the gradient, ``>`` both ways on diagonals; zero magnitude outside the image);
    thresholds ``m > low`` and ``m > high``; hysteresis: weak pixels 8-connected to a strong one.
    """
    lo, hi = int(np.floor(low)), int(np.floor(high))
    x = img.astype(np.int64)
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
    dx = (p[:, :-2, 2:] + 2 * p[:, 1:-1, 2:] + p[:, 2:, 2:]) - (
        p[:, :-2, :-2] + 2 * p[:, 1:-1, :-2] + p[:, 2:, :-2]
    )
    dy = (p[:, 2:, :-2] + 2 * p[:, 2:, 1:-1] + p[:, 2:, 2:]) - (
        p[:, :-2, :-2] + 2 * p[:, :-2, 1:-1] + p[:, :-2, 2:]
    )
    mag = np.abs(dx) + np.abs(dy)
    m = np.pad(mag, ((0, 0), (1, 1), (1, 1)))  # zero magnitude outside
    c = m[:, 1:-1, 1:-1]
    left, right = m[:, 1:-1, :-2], m[:, 1:-1, 2:]
    up, down = m[:, :-2, 1:-1], m[:, 2:, 1:-1]
    ul, ur, dl, dr = m[:, :-2, :-2], m[:, :-2, 2:], m[:, 2:, :-2], m[:, 2:, 2:]
    ax, ay = np.abs(dx), np.abs(dy) << 15
    tg22x = ax * _CANNY_TG22
    tg67x = tg22x + (ax << 16)
    horiz = ay < tg22x
    vert = ~horiz & (ay > tg67x)
    diag = ~horiz & ~vert
    same_sign = (dx ^ dy) >= 0  # s = 1: previous row j-1, next row j+1
    nms = np.where(
        horiz,
        (c > left) & (c >= right),
        np.where(
            vert,
            (c > up) & (c >= down),
            np.where(same_sign, (c > ul) & (c > dr), (c > ur) & (c > dl)),
        ),
    )
    del diag
    cand = nms & (c > lo)
    strong = cand & (c > hi)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True
    labels, _ = ndimage.label(cand, structure=structure)
    keep = np.zeros(labels.max() + 1, dtype=bool)
    keep[labels[strong]] = True
    keep[0] = False
    return keep[labels]


_DIST_SHIFT = 16
_INIT_DIST0 = 2**31 - 1
_DIST_MAX = (2**31 - 1) >> 2
_HV = 1 << _DIST_SHIFT
_DIAG = int(np.rint(np.float64(np.float32(1.4)) * (1 << _DIST_SHIFT)))
_LONG = int(np.rint(np.float64(np.float32(2.1969)) * (1 << _DIST_SHIFT)))


def _scan_min_plus(a: np.ndarray, step: int) -> np.ndarray:
    """t[j] = min(a[j], t[j-1] + step) along the last axis (a left-to-right chamfer sweep)."""
    j = np.arange(a.shape[-1], dtype=np.int64) * step
    return np.minimum.accumulate(a - j, axis=-1) + j


def cv_distance_transform_l2_5(nonzero: np.ndarray) -> np.ndarray:
    """``cv2.distanceTransform(src, DIST_L2, 5)`` of a batch (N, H, W) of bool (True = nonzero) -> float32.

    OpenCV's 5x5 chamfer (a = 1, b = 1.4, c = 2.1969) in 16-bit fixed point: a forward and a backward
    pass over an image padded with INT_MAX, distances capped at INT_MAX >> 2, scaled by 2^-16.
    """
    n, h, w = nonzero.shape
    b = 2
    t = np.full((n, h + 2 * b, w + 2 * b), _INIT_DIST0, dtype=np.int64)
    for i in range(h):
        r = i + b
        rows = t[:, r - 2], t[:, r - 1]
        cand = np.minimum.reduce(
            [
                rows[0][:, b - 1 : b - 1 + w] + _LONG,
                rows[0][:, b + 1 : b + 1 + w] + _LONG,
                rows[1][:, b - 2 : b - 2 + w] + _LONG,
                rows[1][:, b - 1 : b - 1 + w] + _DIAG,
                rows[1][:, b : b + w] + _HV,
                rows[1][:, b + 1 : b + 1 + w] + _DIAG,
                rows[1][:, b + 2 : b + 2 + w] + _LONG,
            ]
        )
        cand = np.where(nonzero[:, i], cand, 0)
        # the left neighbour (tmp[j-1] + a) runs across the row, the border column included
        left = t[:, r, b - 1 : b].copy()  # INIT_DIST0
        seq = np.concatenate([left, cand], axis=1)
        swept = _scan_min_plus(seq, _HV)[:, 1:]
        t[:, r, b : b + w] = np.where(nonzero[:, i], np.minimum(cand, swept), 0)
    for i in range(h - 1, -1, -1):
        r = i + b
        rows = t[:, r + 2], t[:, r + 1]
        cur = t[:, r, b : b + w]
        cand = np.minimum.reduce(
            [
                cur,
                rows[0][:, b + 1 : b + 1 + w] + _LONG,
                rows[0][:, b - 1 : b - 1 + w] + _LONG,
                rows[1][:, b + 2 : b + 2 + w] + _LONG,
                rows[1][:, b + 1 : b + 1 + w] + _DIAG,
                rows[1][:, b : b + w] + _HV,
                rows[1][:, b - 1 : b - 1 + w] + _DIAG,
                rows[1][:, b - 2 : b - 2 + w] + _LONG,
            ]
        )
        right = t[:, r, b + w : b + w + 1].copy()
        seq = np.concatenate([right, cand[:, ::-1]], axis=1)
        swept = _scan_min_plus(seq, _HV)[:, 1:][:, ::-1]
        t[:, r, b : b + w] = np.minimum(cand, swept)
    d = np.minimum(t[:, b : b + h, b : b + w], _DIST_MAX)
    return (d.astype(np.float32) * np.float32(1.0 / (1 << _DIST_SHIFT))).astype(np.float32)


def cv_get_affine_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``cv2.getAffineTransform`` for a batch: (N, 3, 2) float32 point triples -> (N, 2, 3) float64."""
    n = src.shape[0]
    a = np.zeros((n, 6, 6), dtype=np.float64)
    bvec = np.zeros((n, 6), dtype=np.float64)
    s = src.astype(np.float64)
    d = dst.astype(np.float64)
    for i in range(3):
        a[:, i, 0], a[:, i, 1], a[:, i, 2] = s[:, i, 0], s[:, i, 1], 1.0
        a[:, i + 3, 3], a[:, i + 3, 4], a[:, i + 3, 5] = s[:, i, 0], s[:, i, 1], 1.0
        bvec[:, i], bvec[:, i + 3] = d[:, i, 0], d[:, i, 1]
    sol = np.linalg.solve(a, bvec[..., None])[..., 0]
    return sol.reshape(n, 2, 3)


_INTER_BITS = 5
_INTER_TAB = 1 << _INTER_BITS
_AB_BITS = 10
_AB_SCALE = 1 << _AB_BITS


def cv_warp_affine_reflect101(img: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``cv2.warpAffine(float32 img, M, (W, H), borderMode=BORDER_REFLECT_101)``, bilinear, batched.

    ``img`` (N, H, W, C) float32, ``m`` (N, 2, 3) forward maps. As OpenCV (up to 4.10): the map is
    inverted in double, source coordinates are computed in 10-bit then 5-bit fixed point (a 1/32-pixel
    grid, rounded), and the four taps are weighted by float32 products of (1 - f, f) from that grid.
    """
    n, h, w, ch = img.shape
    m = m.astype(np.float64).copy()
    det = m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] * m[:, 1, 0]
    det = np.where(det != 0, 1.0 / np.where(det != 0, det, 1.0), 0.0)
    a11, a22 = m[:, 1, 1] * det, m[:, 0, 0] * det
    a12, a21 = -m[:, 0, 1] * det, -m[:, 1, 0] * det
    b1 = -a11 * m[:, 0, 2] - a12 * m[:, 1, 2]
    b2 = -a21 * m[:, 0, 2] - a22 * m[:, 1, 2]
    xs = np.arange(w, dtype=np.float64)
    ys = np.arange(h, dtype=np.float64)
    adelta = np.rint(a11[:, None] * xs[None] * _AB_SCALE).astype(np.int64)  # (N, W)
    bdelta = np.rint(a21[:, None] * xs[None] * _AB_SCALE).astype(np.int64)
    round_delta = _AB_SCALE // _INTER_TAB // 2
    x0 = np.rint((a12[:, None] * ys[None] + b1[:, None]) * _AB_SCALE).astype(np.int64) + round_delta  # (N, H)
    y0 = np.rint((a22[:, None] * ys[None] + b2[:, None]) * _AB_SCALE).astype(np.int64) + round_delta
    gx = (x0[:, :, None] + adelta[:, None, :]) >> (_AB_BITS - _INTER_BITS)  # (N, H, W)
    gy = (y0[:, :, None] + bdelta[:, None, :]) >> (_AB_BITS - _INTER_BITS)
    ix, fx = gx >> _INTER_BITS, gx & (_INTER_TAB - 1)
    iy, fy = gy >> _INTER_BITS, gy & (_INTER_TAB - 1)
    wx1 = (fx.astype(np.float32) * np.float32(1.0 / _INTER_TAB)).astype(np.float32)
    wy1 = (fy.astype(np.float32) * np.float32(1.0 / _INTER_TAB)).astype(np.float32)
    wx0, wy0 = np.float32(1.0) - wx1, np.float32(1.0) - wy1

    def refl(i: np.ndarray, size: int) -> np.ndarray:
        if size == 1:
            return np.zeros_like(i)
        period = 2 * (size - 1)
        i = np.abs(i) % period
        return np.where(i > size - 1, period - i, i)

    bi = np.arange(n)[:, None, None]
    x0i, x1i = refl(ix, w), refl(ix + 1, w)
    y0i, y1i = refl(iy, h), refl(iy + 1, h)
    s00, s01 = img[bi, y0i, x0i], img[bi, y0i, x1i]
    s10, s11 = img[bi, y1i, x0i], img[bi, y1i, x1i]
    w00 = (wy0 * wx0)[..., None]
    w01 = (wy0 * wx1)[..., None]
    w10 = (wy1 * wx0)[..., None]
    w11 = (wy1 * wx1)[..., None]
    out = s00 * w00 + s01 * w01 + s10 * w10 + s11 * w11
    return out.astype(np.float32)


def _fma32(a: np.ndarray, b: np.floating, c: np.ndarray) -> np.ndarray:
    """float32 fused multiply-add ``a * b + c`` (exact product, one rounding, emulated in double)."""
    return (a.astype(np.float64) * np.float64(b) + c.astype(np.float64)).astype(np.float32)


def cv_rgb2gray_f32(x: np.ndarray) -> np.ndarray:
    """``cv2.cvtColor(float32 RGB, COLOR_RGB2GRAY)``: 0.299 R + 0.587 G + 0.114 B in float32.

    Evaluated as OpenCV's SIMD path does, ``fma(B, 0.114, fma(R, 0.299, G * 0.587))`` (bit-exact with
    opencv-python 4.10 on x86-64).
    """
    x = x.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    return _fma32(b, np.float32(0.114), _fma32(r, np.float32(0.299), g * np.float32(0.587)))


# --------------------------------------------------------------------------------------------------
# ImageMagick 6 (Q16): MotionBlurImage


def im_motion_kernel(radius: float, sigma: float) -> np.ndarray:
    """ImageMagick's one-sided motion kernel: width 2*ceil(radius)+1, exp(-i^2 / 2 sigma^2), normalised."""
    width = int(2.0 * np.ceil(radius) + 1.0)
    i = np.arange(width, dtype=np.float64)
    k = np.exp(-(i * i) / (2.0 * sigma * sigma)) / (np.sqrt(2.0 * np.pi) * sigma)
    return k / k.sum()


def im_motion_offsets(width: int, angles_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image tap offsets (dx, dy), each (N, width): ``ceil(i cos(a) - 0.5)``, ``ceil(i sin(a) - 0.5)``."""
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    px = width * np.sin(a)
    py = width * np.cos(a)
    hyp = np.hypot(px, py)
    i = np.arange(width, dtype=np.float64)[None]
    ox = np.ceil(i * py[:, None] / hyp[:, None] - 0.5).astype(np.int64)
    oy = np.ceil(i * px[:, None] / hyp[:, None] - 0.5).astype(np.int64)
    return ox, oy


def im_motion_blur_u8(img: np.ndarray, radius: float, sigma: float, angles_deg: np.ndarray) -> np.ndarray:
    """``MagickMotionBlurImage`` on 8-bit images (N, H, W[, C]) -> uint8, edge virtual pixels.

    As ImageMagick 6 Q16 through a PNG round trip: pixels scaled to 16 bits (x 257), the weighted sum of
    the taps ``(x + dx_i, y + dy_i)`` (coordinates clamped to the image) in double, rounded to a 16-bit
    quantum, written back as 8 bits by ``q // 257`` (what ImageMagick 6.9.11 Q16 + Wand writes: checked
    pixel for pixel against it while developing; a rounding ``q -> 8 bit`` would differ by +1 on half
    of all pixels).
    """
    k = im_motion_kernel(radius, sigma)
    width = len(k)
    ox, oy = im_motion_offsets(width, angles_deg)
    x = np.asarray(img)
    squeeze = x.ndim == 3
    if squeeze:
        x = x[..., None]
    n, h, w, c = x.shape
    pad = width  # |offset| < width: edge padding = ImageMagick's clamped (edge) virtual pixels
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    hp, wp = h + 2 * pad, w + 2 * pad
    rows_u8 = torch.from_numpy(np.ascontiguousarray(xp).reshape(n * hp * wp, c))
    base = ((np.arange(h)[:, None] + pad) * wp + (np.arange(w)[None, :] + pad)).reshape(1, h * w)
    base = base + (np.arange(n) * (hp * wp))[:, None]  # (N, H*W) flat pixel index of each output pixel
    shift = oy * wp + ox  # (N, width)
    acc = torch.zeros(n * h * w, c, dtype=torch.float64)
    for i in range(width):
        idx = torch.from_numpy((base + shift[:, i : i + 1]).reshape(-1))
        acc += float(k[i]) * (rows_u8.index_select(0, idx).to(torch.float64) * 257.0)
    q = torch.floor(acc.clamp(0.0, 65535.0) + 0.5).to(torch.int64)  # ClampToQuantum
    out = torch.div(q, 257, rounding_mode="floor")  # 16 -> 8 bits as measured on IM 6.9.11 Q16: q // 257
    out = out.to(torch.uint8).numpy().reshape(n, h, w, c)
    return out[..., 0] if squeeze else out


# --------------------------------------------------------------------------------------------------
# Helpers of make_cifar_c.py itself


def plasma_fractal(rng: np.random.Generator, n: int, mapsize: int = 32, wibbledecay: float = 3) -> np.ndarray:
    """The diamond-square height maps of ``make_cifar_c.py`` for ``n`` images at once, each in [0, 1]."""
    assert mapsize & (mapsize - 1) == 0
    maparray = np.empty((n, mapsize, mapsize), dtype=np.float64)
    maparray[:, 0, 0] = 0
    stepsize = mapsize
    wibble = 100.0

    def wibbledmean(array: np.ndarray) -> np.ndarray:
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while stepsize >= 2:
        half = stepsize // 2
        cornerref = maparray[:, 0:mapsize:stepsize, 0:mapsize:stepsize]
        squareaccum = cornerref + np.roll(cornerref, shift=-1, axis=1)
        squareaccum += np.roll(squareaccum, shift=-1, axis=2)
        maparray[:, half:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(squareaccum)
        drgrid = maparray[:, half:mapsize:stepsize, half:mapsize:stepsize]
        ulgrid = maparray[:, 0:mapsize:stepsize, 0:mapsize:stepsize]
        ltsum = drgrid + np.roll(drgrid, 1, axis=1) + (ulgrid + np.roll(ulgrid, -1, axis=2))
        maparray[:, 0:mapsize:stepsize, half:mapsize:stepsize] = wibbledmean(ltsum)
        ttsum = drgrid + np.roll(drgrid, 1, axis=2) + (ulgrid + np.roll(ulgrid, -1, axis=1))
        maparray[:, half:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(ttsum)
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min(axis=(1, 2), keepdims=True)
    return maparray / maparray.max(axis=(1, 2), keepdims=True)


@functools.lru_cache(maxsize=256)
def zoom_matrix(size: int, zoom_factor: float) -> np.ndarray:
    """scipy's order-1 ``ndimage.zoom`` of a length-``size`` axis as a (round(size * z), size) matrix.

    Built by zooming the identity with scipy itself, so every weight and boundary rule is scipy's;
    an order-1 zoom of several axes is the tensor product of these 1D operators.
    """
    out = ndimage.zoom(np.eye(size), (1, zoom_factor), order=1)
    m = np.ascontiguousarray(out.T)
    m.setflags(write=False)
    return m


@functools.lru_cache(maxsize=256)
def _zoom_taps(size: int, zoom_factor: float, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per kept output row of :func:`zoom_matrix`: (first input index, its weight, the next one's weight).

    Only the centre ``out_size`` rows are kept (``clipped_zoom``'s trim). Order 1 has at most two
    non-zero weights per row, adjacent; every other weight is an exact zero.
    """
    m = zoom_matrix(size, zoom_factor)
    trim = (m.shape[0] - out_size) // 2
    m = m[trim : trim + out_size]
    assert np.count_nonzero(m, axis=1).max() <= 2
    rows = np.arange(out_size)
    first = np.argmax(m != 0, axis=1)
    w0 = m[rows, first].copy()
    w1 = np.where(first + 1 < size, m[rows, np.minimum(first + 1, size - 1)], 0.0)
    return first, w0, w1


def clipped_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    """``make_cifar_c.clipped_zoom`` on a batch (N, H, W, C): centre crop ceil(H / z), order-1 zoom, trim.

    scipy's weights (:func:`zoom_matrix`, at most two adjacent non-zero taps per output row), applied
    along rows then columns in double and cast back to the input's dtype, as scipy does.
    """
    h = img.shape[1]
    ch = int(np.ceil(h / zoom_factor))
    top = (h - ch) // 2
    first, w0, w1 = _zoom_taps(ch, float(zoom_factor), h)
    nxt = np.minimum(first + 1, ch - 1)
    crop = img[:, top : top + ch, top : top + ch].astype(np.float64)
    rows = w0[None, :, None, None] * np.take(crop, first, axis=1) + w1[None, :, None, None] * np.take(
        crop, nxt, axis=1
    )
    out = w0[None, None, :, None] * np.take(rows, first, axis=2) + w1[None, None, :, None] * np.take(
        rows, nxt, axis=2
    )
    return out.astype(img.dtype)


def map_coordinates_reflect(img: np.ndarray, cy: np.ndarray, cx: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.map_coordinates(order=1, mode='reflect')`` of each image of (N, H, W, C) at (cy, cx).

    ``cy``/``cx`` (N, H, W) float64 sample positions, shared by the channels; bilinear in double with
    scipy's half-sample symmetric extension (d c b a | a b c d | d c b a), cast to ``img``'s dtype.
    """
    n, h, w, _ = img.shape

    def refl(i: np.ndarray, size: int) -> np.ndarray:
        i = np.mod(i, 2 * size)
        return np.where(i >= size, 2 * size - 1 - i, i)

    y0, x0 = np.floor(cy), np.floor(cx)
    ty, tx = cy - y0, cx - x0
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    ya, yb = refl(y0, h), refl(y0 + 1, h)
    xa, xb = refl(x0, w), refl(x0 + 1, w)
    bi = np.arange(n)[:, None, None]
    src = img.astype(np.float64)
    out = (
        ((1 - ty) * (1 - tx))[..., None] * src[bi, ya, xa]
        + ((1 - ty) * tx)[..., None] * src[bi, ya, xb]
        + (ty * (1 - tx))[..., None] * src[bi, yb, xa]
        + (ty * tx)[..., None] * src[bi, yb, xb]
    )
    return out.astype(img.dtype)
