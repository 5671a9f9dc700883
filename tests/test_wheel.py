"""The wheel is a working tool on its own: it carries the presets and the paper's reported numbers, and
`wcbench leaderboard` runs from an installed wheel outside any checkout (issue #12, item 5)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.timeouts import hang_guard

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "wcbench", "searchers", "evaluators")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (no build/ or egg-info in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(dist), str(src)],
        check=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}, timeout=hang_guard(300),
    )  # fmt: skip
    (whl,) = dist.glob("wcbench-*.whl")
    return whl


def test_the_wheel_carries_the_paper_csvs_and_every_preset(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    csvs = sorted(p.name for p in (ROOT / "wcbench" / "leaderboards" / "paper").glob("*.csv"))
    presets = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "wcbench" / "presets").rglob("*.toml"))
    assert len(csvs) >= 13 and len(presets) >= 14  # the globs found the files, or this test proves nothing
    missing = [
        f"wcbench/leaderboards/paper/{c}" for c in csvs if f"wcbench/leaderboards/paper/{c}" not in names
    ]
    missing += [p for p in presets if p not in names]
    assert not missing, f"the wheel lacks {missing}"
    assert "evaluators/attacks.py" in names and "searchers/loop.py" in names  # the three packages


def test_the_wheel_declares_its_extras_and_tomli(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    requires = [
        line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")
    ]
    assert any(r.startswith("torchattacks") and 'extra == "attacks"' in r for r in requires), requires
    assert any(r.startswith("tensorboard") and 'extra == "tensorboard"' in r for r in requires), requires
    assert any(r.startswith("tomli") and 'python_version < "3.11"' in r for r in requires), requires


def test_leaderboard_runs_from_the_installed_wheel_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
         str(wheel)],
        check=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}, timeout=hang_guard(300),
    )  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "WCBENCH_PAPER_RESULTS"}
    env["PYTHONPATH"] = str(site)  # the installed copy, not the checkout
    code = (
        "import sys, wcbench\n"
        f"assert wcbench.__file__.startswith({str(site)!r}), wcbench.__file__\n"
        "from wcbench.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = ["leaderboard", "--benchmark", "worst_case_cifar100", "--format", "csv"]
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=work, env=env, capture_output=True, text=True,
        timeout=hang_guard(300),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "30.07" in out.stdout  # Table 1, DARTS 2nd order, worst-case error: read from the wheel's CSV
    assert list(work.iterdir()) == []  # without --out nothing is written
