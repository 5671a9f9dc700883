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
from wcbench.results import collect_runs

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


# --------------------------------------------------------------------------------------------------
# Readable charts: no two labels of a chart overlap where Chromium actually draws them

_MEASURE = """<script>
const boxes = [];
document.querySelectorAll('.fig svg').forEach((svg, chart) => {
  svg.querySelectorAll('text').forEach((t) => {
    const r = t.getBoundingClientRect();
    if (t.textContent.trim() && r.width > 0 && r.height > 0) {
      boxes.push([svg.closest('section').id, chart, t.textContent.trim(), r.left, r.top, r.right, r.bottom]);
    }
  });
});
const pre = document.createElement('pre');
pre.id = 'label-boxes';
pre.textContent = JSON.stringify(boxes);
document.body.appendChild(pre);
</script>"""

SEARCHERS = [
    "darts2nd", "ours-darts2nd", "pdarts", "spcl-pdarts", "dihcl-pdarts", "ours-pdarts", "pcdarts",
    "ours-pcdarts", "prdarts", "ours-prdarts",
]  # fmt: skip


def _write_many_runs(root: Path) -> None:
    """Ten searchers x two seeds on the Table 1 board: the size at which the old x-labels overlapped."""
    for i, searcher in enumerate(SEARCHERS):
        for seed in (1, 2):
            path = root / "cifar100" / searcher / f"seed-{seed}" / "scores" / "worst-case.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            wc = 30.0 - 0.3 * i + 0.2 * seed
            metrics = {"worst_case_error": wc, "average_case_error": wc - 12, "all_error": wc - 10}
            scored = {k: {"value": v, "unit": "%"} for k, v in metrics.items()}
            path.write_text(json.dumps({"scorer": "worst-case", "dataset": "cifar100", "metrics": scored}))


def label_boxes(html_text: str, tmp_path: Path) -> list[tuple[str, int, str, float, float, float, float]]:
    """Every chart label's box (section, chart, text, left, top, right, bottom) as Chromium lays it out."""
    import html as html_lib

    page = tmp_path / "measure.html"
    page.write_text(html_text.replace("</body>", _MEASURE + "</body>"))
    profile = tmp_path / "chromium-profile-dom"
    argv = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", "--virtual-time-budget=5000",
        "--dump-dom", page.resolve().as_uri(),
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(profile)}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=hang_guard(60), env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    start = dom.index('<pre id="label-boxes">') + len('<pre id="label-boxes">')
    return [tuple(b) for b in json.loads(html_lib.unescape(dom[start : dom.index("</pre>", start)]))]


def overlapping(boxes: list[tuple], slack: float = 0.5) -> list[tuple[str, str, str]]:
    """Pairs of labels of one chart whose boxes intersect by more than `slack` px both ways."""
    found = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if a[:2] != b[:2]:
                continue
            dx = min(a[5], b[5]) - max(a[3], b[3])
            dy = min(a[6], b[6]) - max(a[4], b[4])
            if dx > slack and dy > slack:
                found.append((a[0], a[2], b[2]))
    return found


@pytest.mark.timeout(180)
def test_chart_labels_do_not_overlap_in_chromium(tmp_path: Path) -> None:
    from wcbench.report import to_html

    runs = tmp_path / "runs"
    _write_many_runs(runs)
    mine = build_boards(collect_runs(runs), ["worst_case_cifar100"])  # ten rows of runs
    paper = build_boards(collect_runs(tmp_path / "none"), ["imagenet", "imagenet_a_r_sketch", "cifar10c"])
    page = to_html([*mine, *paper])
    boxes = label_boxes(page, tmp_path)
    shown = {b[0] for b in boxes}
    assert {"worst_case_cifar100", "imagenet"} <= shown, shown  # the charts were drawn and measured
    assert any(b[2] == "ours-pdarts" for b in boxes)  # the tick labels are text, not paths
    assert not overlapping(boxes), overlapping(boxes)[:10]
    # strategy colours have a legend: each strategy on the board is named once
    legend = [b[2] for b in boxes if b[0] == "worst_case_cifar100"]
    for strategy in ("ours", "spcl", "dihcl"):
        assert sum(strategy in text for text in legend if text.startswith(f"{strategy} ")) == 1, legend
