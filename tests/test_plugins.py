"""A searcher from another package: installed, discovered through the `wcbench.searchers` entry-point
group, and run by `wcbench run` with no edit to wcbench."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_pipeline import TINY
from tests.timeouts import hang_guard

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "wcbench-random-strategy"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    src = build / "src"
    subprocess.run(["cp", "-r", str(EXAMPLE), str(src)], check=True)  # build outside the repo tree
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(src)],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip
    assert list(target.glob("wcbench_random_strategy-*.dist-info/entry_points.txt"))
    return target


def _wcbench(site: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    code = "import sys; from wcbench.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=hang_guard(600)
    )


def test_the_plugin_is_listed(installed_plugin: Path) -> None:
    out = _wcbench(installed_plugin, "list", "searchers", "--json")
    names = {row["name"] for row in json.loads(out.stdout)}
    assert {"random-darts1st", "random-pdarts"} <= names


def test_wcbench_run_runs_the_plugin(installed_plugin: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    out = _wcbench(installed_plugin, "run", "--searcher", "random-darts1st", "--preset", "smoke", "--scorers",
                   "clean", "--runs-dir", str(runs), "--no-progress", "--device", "cpu", *TINY)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    history = (runs / "digits" / "random-darts1st" / "seed-1" / "search" / "history.jsonl").read_text()
    record = json.loads(history.splitlines()[0])
    assert abs(record["strategy"]["selected_fraction"] - 0.5) < 0.01  # the plug-in's rule picked half
    assert (runs / "digits" / "random-darts1st" / "seed-1" / "scores" / "clean.json").exists()


def test_without_the_plugin_the_name_is_unknown(tmp_path: Path) -> None:
    out = _wcbench(tmp_path, "run", "--searcher", "random-darts1st", "--preset", "smoke")
    assert out.returncode == 2 and "unknown searcher 'random-darts1st'" in out.stderr
