"""The HTML leaderboard rendered in headless Chromium: the screenshot is a real, non-blank page with
the bar plots' colours (issue #7, "the HTML board has been rendered in headless Chromium").

Needs Debian's chromium (``apt-get install -y chromium``); skipped with the reason when it is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.timeouts import hang_guard
from wcbench.report import build_boards, write_boards
from wcbench.runs import collect_runs

WIDTH, HEIGHT = 1280, 2000


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install -y chromium)"
)


def _write_runs(root: Path) -> None:
    per_seed = {
        "pdarts": {1: (29.0, 17.1, 19.4), 2: (29.8, 17.2, 19.8)},
        "ours-pdarts": {1: (27.9, 16.0, 18.3), 2: (28.4, 16.3, 18.6)},
    }
    for searcher, seeds in per_seed.items():
        for seed, (wc, ac, al) in seeds.items():
            path = root / "cifar100" / searcher / f"seed-{seed}" / "scores" / "worst-case.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            metrics = {"worst_case_error": wc, "average_case_error": ac, "all_error": al}
            scored = {k: {"value": v, "unit": "%"} for k, v in metrics.items()}
            record = {"scorer": "worst-case", "dataset": "cifar100", "metrics": scored}
            path.write_text(json.dumps(record))


def _screenshot(html: Path, png: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    argv = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={png}",
        html.resolve().as_uri(),
    ]
    env = {**os.environ, "HOME": str(profile)}  # keep Chromium's caches out of the real home
    return subprocess.run(argv, capture_output=True, text=True, timeout=hang_guard(60), env=env, check=False)


def _near(rgb: np.ndarray, hex_colour: str, tol: int = 40) -> int:
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb.astype(int) - target).sum(axis=-1) <= tol).sum())


@pytest.mark.timeout(120)
def test_html_board_renders_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    runs = tmp_path / "runs"
    _write_runs(runs)
    boards = build_boards(collect_runs(runs), ["worst_case_cifar100", "cifar10c"])
    out = tmp_path / "leaderboards"
    (html,) = write_boards(boards, out, ["html"])

    png = tmp_path / "board.png"
    proc = _screenshot(html, png, tmp_path / "chromium-profile")
    assert proc.returncode == 0 and png.is_file(), proc.stderr[-2000:]

    with Image.open(png) as img:
        assert img.format == "PNG" and img.size == (WIDTH, HEIGHT)
        rgb = np.asarray(img.convert("RGB"))
    non_white = (rgb.min(axis=-1) < 240).mean()
    assert 0.03 < non_white < 0.9, (
        f"{non_white:.1%} of the pixels are non-white"
    )  # not blank, not a black box
    colours = len(np.unique(rgb.reshape(-1, 3)[::7], axis=0))
    assert colours > 50, f"only {colours} distinct colours"
    # the bars: the baseline (pdarts, blue) and ours (red) from the worst-case board's plot
    assert _near(rgb, "#1f77b4") > 2000 and _near(rgb, "#d62728") > 2000
    # the best cells are highlighted (pale green), so the tables rendered too
    assert _near(rgb, "#e7f5e7", tol=6) > 500
