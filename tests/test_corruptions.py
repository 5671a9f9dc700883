"""The corruption engine (wcbench.corruptions): layout, determinism, the official script's quirks, trends.

The engine was checked pixel for pixel against hendrycks/robustness ``make_cifar_c.py`` (its 19
functions fed the same random draws; scikit-image 0.26, opencv-python 4.10, ImageMagick 6.9.11 Q16
via Wand): all 19 corruptions x 5 severities agreed on every pixel of 200 CIFAR-10 test images
(frost, then on procedural textures, now crops the official photographs: its golden hash was renewed
when they replaced the textures). ``GOLDEN`` pins those outputs.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from wcbench.corruptions import (
    ALL_CORRUPTIONS,
    CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    SEVERITY_PARAMS,
    _ops,
    chunk_rng,
    corrupt,
    functions,
    open_c_layout,
    to_uint8,
    write_c_layout,
)
from wcbench.data import get_dataset

RANDOM = {
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


def natural_images(n: int, seed: int) -> np.ndarray:
    """Smooth colour fields with a few solid ellipses and mild noise: CIFAR-like statistics, numpy only."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 32, 32, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:32, 0:32]
    grid = np.linspace(0, 3, 32)
    for k in range(n):
        base = rng.uniform(40, 215, size=(4, 4, 3))
        rows = np.stack([[np.interp(grid, np.arange(4), base[i, :, c]) for c in range(3)] for i in range(4)])
        img = np.stack([[np.interp(grid, np.arange(4), rows[:, c, j]) for j in range(32)] for c in range(3)])
        img = img.transpose(2, 1, 0).copy()
        for _ in range(rng.integers(2, 5)):
            cy, cx = rng.uniform(4, 28, 2)
            ry, rx = rng.uniform(3, 10, 2)
            img[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 6, img.shape)
        out[k] = np.clip(img, 0, 255).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return natural_images(48, 0)


def test_names_and_parameters() -> None:
    assert len(CORRUPTIONS) == 15 and len(EXTRA_CORRUPTIONS) == 4
    assert set(ALL_CORRUPTIONS) == set(SEVERITY_PARAMS) == set(functions.FUNCTIONS)
    assert all(len(v) == 5 for v in SEVERITY_PARAMS.values())
    # spot checks against make_cifar_c.py (hendrycks/robustness)
    assert SEVERITY_PARAMS["gaussian_noise"] == (0.04, 0.06, 0.08, 0.09, 0.10)
    assert SEVERITY_PARAMS["glass_blur"][3] == (0.25, 1, 2)
    assert SEVERITY_PARAMS["elastic_transform"][0] == (0.0, 0.0, 32 * 0.08)
    assert SEVERITY_PARAMS["snow"][4] == (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)
    assert SEVERITY_PARAMS["jpeg_compression"] == (80, 65, 58, 50, 40)


def test_every_corruption_shape_dtype_and_seed(images: np.ndarray) -> None:
    x = images[:6]
    for name in ALL_CORRUPTIONS:
        for s in (1, 5):
            a = corrupt(x, name, s, seed=3)
            assert a.dtype == np.uint8 and a.shape == x.shape, name
            assert np.array_equal(a, corrupt(torch.from_numpy(x), name, s, seed=3)), (
                name
            )  # same seed, same bytes
            b = corrupt(x, name, s, seed=4)
            assert np.array_equal(a, b) == (name not in RANDOM), name


GOLDEN = {  # sha256[:16] of corrupt(natural_images(6, 7), name, s, seed=0) for s = 1..5, concatenated
    "gaussian_noise": "a48625fdcdfaac43",
    "shot_noise": "ed077582425ccad3",
    "impulse_noise": "cd0fc2d140e6f8cd",
    "defocus_blur": "64a5319cdbd491aa",
    "glass_blur": "b4f42066d0e9f18d",
    "motion_blur": "886022bdacbfe933",
    "zoom_blur": "61012921a5dbba23",
    "snow": "13fe2748341788d4",
    "frost": "1109aaee24d109df",
    "fog": "0c61b969b59a85db",
    "brightness": "a4bd09adfc4d6c10",
    "contrast": "b5ace9ea9c25a4ee",
    "elastic_transform": "83b50b7881e44795",
    "pixelate": "c19bc6062aed411b",
    "jpeg_compression": "ab5fa3654a0e3d52",
    "speckle_noise": "8a0f4683e50efbb2",
    "gaussian_blur": "79454984c69177aa",
    "spatter": "d2a6076c7cf3477e",
    "saturate": "b9c4d60c086a97f4",
}


def test_golden_bytes() -> None:
    """Same seed, same bytes, across runs and machines (numpy, scipy, Pillow at the pinned versions)."""
    x = natural_images(6, 7)
    got = {}
    for name in ALL_CORRUPTIONS:
        h = hashlib.sha256()
        for s in range(1, 6):
            h.update(corrupt(x, name, s, seed=0).tobytes())
        got[name] = h.hexdigest()[:16]
    assert got == GOLDEN


def test_distortion_trend_follows_the_official_generator(images: np.ndarray) -> None:
    """Mean |x - x_c| rises with severity where the official generator's does, and falls where it falls.

    Official: glass_blur falls 2->3 and 4->5, frost 3->4 and 4->5, elastic_transform at every step
    (severity 1 is the largest affine jitter), spatter 3->4 (water becomes mud), saturate 2->3 (colour
    removed, then added); everything else rises, except motion_blur 3->4, whose pixels are identical for
    the same angle (tested below), so that step only differs by the drawn angles.
    """
    falls = {
        "glass_blur": {(2, 3), (4, 5)},
        "frost": {(3, 4), (4, 5)},
        "elastic_transform": {(1, 2), (2, 3), (3, 4), (4, 5)},
        "spatter": {(3, 4)},
        "saturate": {(2, 3)},
    }
    for name in ALL_CORRUPTIONS:
        d = [
            float(np.abs(corrupt(images, name, s, 0).astype(np.float64) - images).mean()) for s in range(1, 6)
        ]
        for s in range(1, 5):
            if name == "motion_blur" and s == 3:
                continue
            if (s, s + 1) in falls.get(name, set()):
                assert d[s] < d[s - 1], (name, s, d)
            else:
                assert d[s] > d[s - 1], (name, s, d)


def test_motion_blur_severities_3_and_4_identical_for_the_same_angle(images: np.ndarray) -> None:
    """(6, 2) and (8, 2): the extra taps weigh less than one 16-bit quantum (ImageMagick 6)."""
    a = functions.motion_blur(images, 3, np.random.default_rng(5))
    b = functions.motion_blur(images, 4, np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, functions.motion_blur(images, 5, np.random.default_rng(5)))


def test_motion_kernel_and_offsets() -> None:
    k = _ops.im_motion_kernel(6, 1)
    assert len(k) == 13 and k[0] == k.max() and abs(k.sum() - 1) < 1e-12  # one-sided, width 2*ceil(r)+1
    assert len(_ops.im_motion_kernel(9, 2.5)) == 19
    ox, oy = _ops.im_motion_offsets(13, np.array([0.0, 90.0, 45.0]))
    assert ox[0].tolist() == list(range(13)) and not oy[0].any()  # 0 degrees: along +x
    assert oy[1].tolist() == list(range(13)) and not ox[1].any()  # 90 degrees: along +y (down)
    assert np.array_equal(ox[2], oy[2])
    # a single bright pixel is smeared along +x only, towards -x in the image (taps look ahead)
    img = np.zeros((1, 32, 32), dtype=np.uint8)
    img[0, 16, 20] = 255
    out = _ops.im_motion_blur_u8(img, 6, 1.0, np.array([0.0]))[0]
    assert out[16, 20] > out[16, 19] > out[16, 18] > 0 and out[16, 21] == 0 and out[15].sum() == 0


def test_glass_blur_swap_is_a_copy_and_offsets_are_minus_one_or_zero() -> None:
    y = np.arange(32 * 32 * 3, dtype=np.int64).reshape(1, 32, 32, 3).astype(np.uint8)
    draws = np.full((1, 1, 30, 30, 2), -1)  # every pixel takes its up-left neighbour
    out = functions.glass_shuffle(y, draws)
    assert np.array_equal(out[0, 2:, 2:], y[0, 1:-1, 1:-1])  # the neighbour's value, from before the pass
    assert np.array_equal(out[0, :2], y[0, :2]) and np.array_equal(out[0, :, :2], y[0, :, :2])
    # a real swap would also have moved values into row/column 1: the script's "swap" does not
    d = chunk_rng(0, "glass_blur", 5, 0).integers(-1, 1, size=10000)
    assert set(np.unique(d).tolist()) == {-1, 0}


def test_frost_uses_randint5_textures_only(monkeypatch: pytest.MonkeyPatch, images: np.ndarray) -> None:
    seen: list[int] = []
    real = functions.frost_texture

    def spy(i: int, size: int) -> np.ndarray:
        seen.append(i)
        return real(i, size)

    monkeypatch.setattr(functions, "frost_texture", spy)
    functions.frost(np.repeat(images, 3, axis=0), 3, np.random.default_rng(0))
    assert set(seen) == {0, 1, 2, 3, 4}  # the sixth texture (index 5) is never drawn
    tex = real(5)
    assert tex.dtype == np.uint8 and tex.ndim == 3 and min(tex.shape[:2]) > 32


def test_uint8_cast_truncates() -> None:
    v = np.array([0.0, 1.9999, 254.99, 255.0, np.nan])
    assert to_uint8(v).tolist() == [0, 1, 254, 255, 0]


def test_ops_match_scipy() -> None:
    """clipped_zoom and the elastic bilinear lookup equal scipy.ndimage's own results."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    img = rng.random((3, 32, 32, 3)).astype(np.float32)
    for z in (1.01, 1.06, 1.17, 1.26, 1.75, 2.25):
        ch = int(np.ceil(32 / z))
        top = (32 - ch) // 2
        for k in range(3):
            ref = ndimage.zoom(img[k, top : top + ch, top : top + ch], (z, z, 1), order=1)
            trim = (ref.shape[0] - 32) // 2
            np.testing.assert_allclose(
                _ops.clipped_zoom(img, z)[k], ref[trim : trim + 32, trim : trim + 32], atol=1e-7
            )
    cy = np.arange(32)[None, :, None] + rng.normal(0, 3, (3, 32, 32))
    cx = np.arange(32)[None, None, :] + rng.normal(0, 3, (3, 32, 32))
    for k in range(3):
        yy, xx, zz = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing="ij")
        coords = [(cy[k][..., None] + 0 * zz).ravel(), (cx[k][..., None] + 0 * zz).ravel(), zz.ravel()]
        ref = ndimage.map_coordinates(img[k], coords, order=1, mode="reflect").reshape(32, 32, 3)
        assert np.array_equal(_ops.map_coordinates_reflect(img, cy, cx)[k], ref)


def test_opencv_like_primitives() -> None:
    # distance transform: OpenCV's 5x5 chamfer (1, 1.4, 2.1969) in 16-bit fixed point
    src = np.ones((1, 9, 9), dtype=bool)
    src[0, 4, 4] = False
    d = _ops.cv_distance_transform_l2_5(src)[0]
    assert d[4, 4] == 0 and d[4, 5] == 1 and d[4, 7] == 3
    assert d[5, 5] == np.float32(91750 / 65536) and d[5, 6] == np.float32(143976 / 65536)
    assert _ops.cv_distance_transform_l2_5(np.ones((1, 4, 4), dtype=bool)).max() == np.float32(8192.0)
    # Canny: a vertical step edge gives one thin vertical line, nothing on flat images
    img = np.zeros((1, 16, 16), dtype=np.uint8)
    img[:, :, 8:] = 200
    edges = _ops.cv_canny(img, 50, 150)[0]
    assert edges[:, 7].all() and edges.sum() == 16
    assert not _ops.cv_canny(np.full((1, 16, 16), 90, np.uint8), 50, 150).any()
    # equalizeHist: a two-level image maps to 0 and 255
    eq = _ops.cv_equalize_hist(np.array([[[3, 3], [9, 9]]], dtype=np.uint8))
    assert eq.tolist() == [[[0, 0], [255, 255]]]
    # skimage's HSV round trip is the identity on valid colours
    rgb = np.random.default_rng(1).random((50, 3))
    np.testing.assert_allclose(_ops.hsv2rgb(_ops.rgb2hsv(rgb)), rgb, atol=1e-12)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="32, 32, 3"):
        corrupt(np.zeros((2, 28, 28, 3), np.uint8), "fog", 1)
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(np.zeros((2, 32, 32, 3), np.uint8), "rain", 1)
    with pytest.raises(ValueError, match="severity"):
        corrupt(np.zeros((2, 32, 32, 3), np.uint8), "fog", 6)


def test_write_c_layout_is_the_official_layout_and_resumes(tmp_path) -> None:
    ds = get_dataset("digits", "test").subset(torch.arange(40))
    out = tmp_path / "digits-C"
    calls: list[tuple[str, int]] = []
    manifest = write_c_layout(
        ds, out, seed=1, corruptions=["fog", "contrast"], progress=lambda c, s, t: calls.append((c, s))
    )
    assert calls == [(c, s) for c in ("fog", "contrast") for s in range(1, 6)]
    for name in ("fog", "contrast"):
        arr = np.load(out / f"{name}.npy")
        assert arr.dtype == np.uint8 and arr.shape == (200, 32, 32, 3)
        x = ds.images.permute(0, 2, 3, 1).numpy()
        for s in range(1, 6):  # severity s in rows (s-1)n .. sn-1
            assert np.array_equal(arr[(s - 1) * 40 : s * 40], corrupt(x, name, s, seed=1))
    labels = np.load(out / "labels.npy")
    assert labels.dtype == np.uint8 and labels.shape == (200,)
    assert np.array_equal(labels, np.tile(ds.labels.numpy(), 5))
    images, lab, n = open_c_layout(out, "fog")
    assert isinstance(images, np.memmap) and n == 40 and lab.dtype == np.int64
    assert set(manifest["corruptions"]) == {"fog", "contrast"}
    recorded = json.loads((out / "wcbench-c.json").read_text())
    assert recorded["seed"] == 1 and "official frost photographs" in recorded["frost"]
    # a rerun keeps finished corruptions (same dataset, seed, engine) and adds the missing ones
    mtime = (out / "fog.npy").stat().st_mtime_ns
    calls.clear()
    write_c_layout(
        ds,
        out,
        seed=1,
        corruptions=["fog", "contrast", "brightness"],
        progress=lambda c, s, t: calls.append((c, s)),
    )
    assert {c for c, _ in calls} == {"brightness"} and (out / "fog.npy").stat().st_mtime_ns == mtime
    # another seed regenerates
    calls.clear()
    write_c_layout(ds, out, seed=2, corruptions=["fog"], progress=lambda c, s, t: calls.append((c, s)))
    assert {c for c, _ in calls} == {"fog"}


def test_write_c_layout_in_worker_processes_matches(tmp_path) -> None:
    ds = get_dataset("digits", "test").subset(torch.arange(12))
    write_c_layout(ds, tmp_path / "a", seed=0, corruptions=["shot_noise", "pixelate"], workers=2)
    write_c_layout(ds, tmp_path / "b", seed=0, corruptions=["shot_noise", "pixelate"])
    for name in ("shot_noise", "pixelate"):
        assert (tmp_path / "a" / f"{name}.npy").read_bytes() == (tmp_path / "b" / f"{name}.npy").read_bytes()


def test_open_c_layout_errors_name_the_path_and_layout(tmp_path) -> None:
    from wcbench.errors import DatasetError

    with pytest.raises(DatasetError, match="missing fog.npy.*expected the CIFAR-10-C layout"):
        tmp_path.joinpath("C").mkdir()
        open_c_layout(tmp_path / "C", "fog")
    np.save(tmp_path / "C" / "fog.npy", np.zeros((7, 32, 32, 3), np.uint8))
    np.save(tmp_path / "C" / "labels.npy", np.zeros(7, np.uint8))
    with pytest.raises(DatasetError, match="expected 5n"):
        open_c_layout(tmp_path / "C", "fog")
    np.save(tmp_path / "C" / "fog.npy", np.zeros((10, 32, 32), np.float32))
    with pytest.raises(DatasetError, match="uint8"):
        open_c_layout(tmp_path / "C", "fog")
