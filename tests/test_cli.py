"""The command line: version, listings, and the genotype commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wcbench.cli import main
from wcbench.genotype import PUBLISHED, load_genotype


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> object:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_console_script_prints_the_version() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from wcbench.cli import run; run()", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("wcbench 0.")


def test_genotype_show_json_has_the_exact_counts(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["genotype", "show", "DARTS_V2", "--dataset", "cifar10", "--json"], capsys)
    assert data["params"] == 3_349_342
    assert isinstance(data["params_with_aux"], int) and data["params_with_aux"] > data["params"]
    assert isinstance(data["macs"], int) and data["macs"] > 0
    assert data["published"]["params_m"] == 3.3
    assert "flop_counter" in data["macs_counter"]


def test_genotype_show_imagenet_shows_published_beside_measured(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(["genotype", "show", "DARTS_V2", "--dataset", "imagenet", "--json"], capsys)
    assert data["params"] == 4_718_752 and data["published"]["macs_m"] == 574
    assert main(["genotype", "show", "DARTS_V2", "--dataset", "imagenet"]) == 0
    text = capsys.readouterr().out
    assert "574M" in text and "4,718,752" in text and "flop_counter" in text


def test_genotype_convert_round_trip(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.json"
    assert main(["genotype", "convert", "PRDARTS", "--to", "json", "--file", str(out)]) == 0
    assert load_genotype(out) == PUBLISHED["PRDARTS"]
    assert main(["genotype", "convert", str(out), "--to", "darts"]) == 0
    assert capsys.readouterr().out.strip() == PUBLISHED["PRDARTS"].to_darts()


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_genotype_plot_writes_a_cell_diagram(tmp_path, suffix: str) -> None:
    out = tmp_path / f"cell{suffix}"
    assert main(["genotype", "plot", "PDARTS", "--file", str(out)]) == 0
    head = out.read_bytes()[:200]
    assert head.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in out.read_bytes()[:2000]
    assert out.stat().st_size > 5000


def test_list_genotypes_and_spaces(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(["list", "genotypes", "--json"], capsys)
    assert [r["name"] for r in rows] == list(PUBLISHED)
    spaces = run_json(["list", "spaces", "--json"], capsys)
    assert [s["name"] for s in spaces] == ["darts", "s1", "s2", "s3", "s4"]


@pytest.mark.parametrize("kind", ["searchers", "scorers", "datasets"])
def test_list_registries(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(["list", kind, "--json"], capsys)
    assert isinstance(rows, list)
    assert main(["list", kind]) == 0


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["run", "--help"], ["search", "--help"], ["retrain", "--help"]]
    + [["score", "--help"], ["leaderboard", "--help"], ["genotype", "--help"], ["bench", "--help"]],
)
def test_help_and_version_import_no_torch(argv):
    # --help and --version answer at once: torch (seconds to import) is loaded only by commands that run
    import subprocess
    import sys

    code = (
        "import sys, io, contextlib\n"
        "from wcbench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main({argv!r})\n"
        "print(rc, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "False"], out
