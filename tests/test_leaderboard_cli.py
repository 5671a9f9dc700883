"""`wcbench leaderboard` and `wcbench compare` on a run tree written in the on-disk layout.

The issue's acceptance check, with the runs written directly: two searchers x three seeds, then
`wcbench leaderboard --format md` shows both rows with n=3 and a p-value equal to scipy's.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from wcbench.cli import main

# worst-case error (%) per seed; three seeds: fewer is no test (wcbench.report.fairness)
WC = {"ours-pdarts": {1: 27.9, 2: 28.4, 3: 28.0}, "pdarts": {1: 29.0, 2: 29.8, 3: 29.3}}
ALL = {"ours-pdarts": {1: 18.3, 2: 18.6, 3: 18.2}, "pdarts": {1: 19.4, 2: 19.8, 3: 19.5}}


def write_score(
    root: Path,
    dataset: str,
    searcher: str,
    seed: int,
    scorer: str,
    metrics: dict[str, float],
    unit: str = "%",
) -> None:
    """``runs/<dataset>/<searcher>/seed-<n>/scores/<scorer>.json`` as the scorers write it."""
    path = root / dataset / searcher / f"seed-{seed}" / "scores" / f"{scorer}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics_json = {k: {"value": v, "unit": unit} for k, v in metrics.items()}
    path.write_text(json.dumps({"scorer": scorer, "metrics": metrics_json, "dataset": dataset, "seed": seed}))


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for searcher in WC:
        for seed in (1, 2, 3):
            wc, al = WC[searcher][seed], ALL[searcher][seed]
            write_score(
                root,
                "cifar100",
                searcher,
                seed,
                "worst-case",
                {"worst_case_error": wc, "average_case_error": al - 2, "all_error": al},
            )
            write_score(
                root, "cifar100", searcher, seed, "clean", {"top1_error": al, "top5_error": 4.0 + seed}
            )
    return root


def welch(metric: dict[str, dict[int, float]]) -> float:
    a, b = list(metric["ours-pdarts"].values()), list(metric["pdarts"].values())
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def cells(markdown: str, first: str, after: str = "") -> list[str]:
    text = markdown.split(after, 1)[1] if after else markdown
    for line in text.splitlines():
        row = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and row[0] == first:
            return row
    raise AssertionError(f"no row {first!r}")


# --------------------------------------------------------------------------------------------------
# wcbench leaderboard


def test_md_board_on_stdout_with_n3_and_scipys_p_and_files_only_with_out(
    runs: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["leaderboard", "--format", "md", "--runs-dir", str(runs)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    board = out.split("## CIFAR-10-C")[0]  # the Table 1 board comes first
    assert board.startswith("## Worst-case CIFAR-100 (paper Table 1)")
    header = cells(board, "searcher")
    ours, base = cells(board, "ours-pdarts"), cells(board, "pdarts")
    assert ours[header.index("n")] == base[header.index("n")] == "3"
    assert ours[header.index("p (Welch, worst-case error)")] == f"{welch(WC):.3g}"
    assert "Reported in the paper (Table 1)" in board
    # the clean scores feed the CIFAR overall board (Tables 5, 18, 19)
    overall = out.split("## CIFAR-10 and CIFAR-100")[1].split("\n## ")[0]
    mean = np.mean(list(ALL["ours-pdarts"].values()))
    assert cells(overall, "ours-pdarts")[3].strip("*").startswith(f"{mean:.2f} ±")
    assert not (tmp_path / "leaderboards").exists()  # stdout only: no files unless --out
    # --out DIR writes the same boards as files, and nothing else on stdout
    assert main([*argv, "--out", str(tmp_path / "lb")]) == 0
    assert "## Worst-case" not in capsys.readouterr().out
    generated = tmp_path / "lb" / "generated"
    assert (generated / "worst_case_cifar100.md").read_text() == board.rstrip("\n") + "\n"


def test_json_p_value_is_scipys_exactly(runs: Path, capsys) -> None:
    argv = ["leaderboard", "-b", "worst_case_cifar100", "-f", "json", "--runs-dir", str(runs)]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    (board,) = data["boards"]
    rows = {r["searcher"]: r for r in board["rows"]}
    assert rows["ours-pdarts"]["n"] == rows["pdarts"]["n"] == 3
    comp = next(c for c in board["comparisons"] if c["column"] == "worst_case")
    assert comp["pvalue"] == welch(WC) and comp["n_a"] == comp["n_b"] == 3
    assert comp["test"] == "welch" and 0 <= comp["p_holm"] <= 1


def test_csv_and_table_formats(runs: Path, capsys) -> None:
    argv = ["leaderboard", "-b", "worst_case_cifar100", "-f", "csv", "--runs-dir", str(runs)]
    assert main(argv) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    test = next(r for r in rows if r["kind"] == "test" and r["column"] == "worst_case")
    assert float(test["pvalue"]) == welch(WC)
    assert main(["leaderboard", "-b", "worst_case_cifar100", "--runs-dir", str(runs)]) == 0
    text = capsys.readouterr().out
    assert "ours-pdarts" in text and "Reported in the paper (Table 1)" not in text and "--paper" in text
    assert main(["leaderboard", "-b", "worst_case_cifar100", "--runs-dir", str(runs), "--paper"]) == 0
    text = capsys.readouterr().out
    assert text.index("ours-pdarts") < text.index("Reported in the paper (Table 1)")  # your runs first


def test_test_and_alpha_options(runs: Path, capsys) -> None:
    argv = ["leaderboard", "-b", "worst_case_cifar100", "-f", "json", "--runs-dir", str(runs)]
    assert main([*argv, "--test", "paired", "--alpha", "0.1"]) == 0
    board = json.loads(capsys.readouterr().out)["boards"][0]
    comp = next(c for c in board["comparisons"] if c["column"] == "worst_case")
    a, b = list(WC["ours-pdarts"].values()), list(WC["pdarts"].values())
    assert comp["pvalue"] == stats.ttest_rel(a, b).pvalue and board["alpha"] == 0.1


def test_html_format_writes_index(runs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "lb"
    argv = [
        "leaderboard",
        "-b",
        "worst_case_cifar100",
        "-f",
        "html",
        "--runs-dir",
        str(runs),
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert f"wrote {out / 'index.html'}" in capsys.readouterr().out
    page = (out / "index.html").read_text()
    assert "<svg" in page and "ours-pdarts" in page


def test_empty_runs_dir_prints_the_paper_and_says_so(tmp_path: Path, capsys) -> None:
    argv = ["leaderboard", "-b", "worst_case_cifar100", "-f", "md", "--runs-dir", str(tmp_path / "none")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"> No runs found under {tmp_path / 'none'}")
    assert "30.07 ± 0.36" in out and "Reported in the paper (Table 1)" in out  # Darts2nd, as printed
    assert not (tmp_path / "leaderboards").exists()
    assert main(["leaderboard", "--runs-dir", str(tmp_path / "none"), "-b", "stl10"]) == 0  # table format
    assert "No runs found" in capsys.readouterr().out


def test_a_shared_note_is_printed_once_and_no_caption_counts_zero_tests(tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    for seed in (1, 2):  # ours-pdarts alone: its baseline has no runs, so nothing is tested
        write_score(runs, "cifar100", "ours-pdarts", seed, "worst-case", {"worst_case_error": 28.0 + seed})
    argv = ["leaderboard", "-b", "worst_case_cifar100", "-f", "md", "--runs-dir", str(runs)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "0 comparisons" not in out and "No t-tests" in out
    # Table 1's note on the swapped Pdarts/Pcdarts rows: once below the table, a marker in its 8 rows
    assert out.count("look swapped") == 1 and out.count("| [1] |") == 8


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-b", "worst"], "known: worst_case_cifar100, cifar10c, imagenet_c, search_spaces_s1_s4"),
        (["-f", "pdf"], "unknown format 'pdf'"),
        (["--test", "student"], "unknown test 'student'"),
        (["--alpha", "2"], "--alpha must be in (0, 1)"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    assert main(["leaderboard", "--runs-dir", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------------------------------
# wcbench compare


def test_compare_prints_n_means_p_and_d(runs: Path, capsys) -> None:
    argv = ["compare", "ours-pdarts", "pdarts", "--metric", "worst_case_error", "--runs-dir", str(runs)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    p = welch(WC)
    assert f"p = {p:.3g} ({p!r})" in out and "Cohen's d" in out and "searched on cifar100" in out
    assert "│ ours-pdarts │ 3 │" in out and "│ pdarts      │ 3 │" in out
    assert "ours-pdarts has a significantly lower worst_case_error than pdarts (better)" in out
    assert "WARNING: only n = 3 seeds on one side" in " ".join(out.split())  # few seeds: said loudly


def test_compare_json_is_scipys_and_holm_over_metrics(runs: Path, capsys) -> None:
    argv = ["compare", "ours-pdarts", "pdarts", "-m", "worst_case_error", "-m", "all_error"]
    assert main([*argv, "--runs-dir", str(runs), "--json", "--alpha", "0.2"]) == 0
    data = json.loads(capsys.readouterr().out)
    wc, al = data["comparisons"]
    assert wc["pvalue"] == welch(WC) and al["pvalue"] == welch(ALL)
    assert wc["n_a"] == wc["n_b"] == 3 and wc["seeds_a"] == [1, 2, 3]
    lo, hi = sorted([welch(WC), welch(ALL)])
    assert sorted([wc["p_holm"], al["p_holm"]]) == [2 * lo, max(2 * lo, hi)]
    assert data["alpha"] == 0.2 and wc["direction"] == "lower"


def test_compare_degenerate_input_gives_a_message(runs: Path, capsys) -> None:
    write_score(runs, "cifar100", "spcl-pdarts", 1, "worst-case", {"worst_case_error": 28.0})
    argv = ["compare", "spcl-pdarts", "pdarts", "-m", "worst_case_error", "--runs-dir", str(runs)]
    assert main(argv) == 0
    assert "no test: n = 1 seed(s) on one side: a t-test needs at least 3" in capsys.readouterr().out
    assert main([*argv, "--json"]) == 0
    (res,) = json.loads(capsys.readouterr().out)["comparisons"]
    assert res["pvalue"] is None and res["message"].startswith("n = 1 seed(s) on one side")
    # constant, identical samples: no NaN printed as a result
    for seed in (1, 2, 3):
        for s in ("a-x", "x"):
            write_score(runs, "cifar100", s, seed, "clean", {"top1_error": 5.0})
    assert main(["compare", "a-x", "x", "-m", "top1_error", "--runs-dir", str(runs)]) == 0
    assert "no test: both samples constant" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ours-pdarts", "nas", "-m", "top1_error"], "no runs of searcher 'nas'"),
        (["ours-pdarts", "pdarts", "-m", "mce"], "no 'mce' scores for ours-pdarts on cifar100; its metrics:"),
        (["ours-pdarts", "pdarts", "-m", "top1_error", "--test", "t"], "unknown test 't'"),
        (["ours-pdarts", "pdarts", "-m", "top1_error", "--dataset", "cifar10"], "no runs of ours-pdarts"),
    ],
)
def test_compare_errors(runs: Path, capsys, argv: list[str], message: str) -> None:
    assert main(["compare", *argv, "--runs-dir", str(runs)]) == 2
    assert message in capsys.readouterr().err


def test_compare_paired_needs_the_same_seeds(runs: Path, capsys) -> None:
    argv = [
        "compare",
        "ours-pdarts",
        "pdarts",
        "-m",
        "top1_error",
        "--test",
        "paired",
        "--runs-dir",
        str(runs),
    ]
    assert main([*argv, "--json"]) == 0
    (res,) = json.loads(capsys.readouterr().out)["comparisons"]
    a, b = list(ALL["ours-pdarts"].values()), list(ALL["pdarts"].values())
    assert res["pvalue"] == stats.ttest_rel(a, b).pvalue
    write_score(runs, "cifar100", "pdarts", 4, "clean", {"top1_error": 19.0})
    assert main(argv) == 2
    assert (
        "paired test needs the same seeds: ours-pdarts has 1,2,3, pdarts has 1,2,3,4"
        in capsys.readouterr().err
    )


def test_compare_asks_for_a_dataset_when_ambiguous(runs: Path, capsys) -> None:
    for s in ("ours-pdarts", "pdarts"):
        for seed in (1, 2):
            write_score(runs, "cifar10", s, seed, "clean", {"top1_error": 2.5 + seed / 10 + (s == "pdarts")})
    argv = ["compare", "ours-pdarts", "pdarts", "-m", "top1_error", "--runs-dir", str(runs)]
    assert main(argv) == 2
    assert "both have runs on cifar10, cifar100; pick one with --dataset" in capsys.readouterr().err
    assert main([*argv, "--dataset", "cifar10", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dataset"] == "cifar10"


# --------------------------------------------------------------------------------------------------
# what `wcbench run` prints at its end


def test_run_summary_of_a_digits_run_names_digits_not_cifar(tmp_path: Path, capsys, monkeypatch) -> None:
    """The README's main job searches on digits: its leaderboard rows must not read as CIFAR numbers."""
    from types import SimpleNamespace

    from wcbench.cli import summary

    root = tmp_path / "runs"
    for searcher in ("ours-pdarts", "pdarts"):
        for seed in (1, 2):
            wc = {"worst_case_error": 30.0 + seed, "average_case_error": 9.0, "all_error": 10.0 + seed}
            write_score(root, "digits", searcher, seed, "worst-case", wc)
            write_score(
                root, "digits", searcher, seed, "attacks", {"clean_acc": 95.0, "pgd10_acc": 40.0 + seed}
            )
    monkeypatch.setattr(summary.console, "_width", 250)  # one line per row: no folded cells
    summary.print_run_summary(root, SimpleNamespace(searcher="ours-pdarts", dataset="digits"))
    out = capsys.readouterr().out
    assert "CIFAR" not in out
    assert "Worst-case subset of digits" in out and "PGD-10 acc. digits (%)" in out
