"""`wcbench compare` and the boards test only runs made the same way (seed aside), with enough seeds.

Two fake run trees in the on-disk layout: each run has the stage files that record its resolved
settings (``search/config.json``, ``retrain/<dataset>/retrain.json``) and a score file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wcbench.cli import main
from wcbench.report import build_board
from wcbench.report.fairness import differing_settings, run_settings
from wcbench.results import collect_runs

ERRORS = {"ours-pdarts": (27.9, 28.4, 28.0, 28.2, 28.3), "pdarts": (29.0, 29.8, 29.3, 29.1, 29.5)}


def write_run(
    root: Path, searcher: str, seed: int, err: float, retrain_epochs: int = 8, search_epochs: int = 4
) -> Path:
    run = root / "cifar100" / searcher / f"seed-{seed}"
    strategy, _, algorithm = searcher.rpartition("-")
    search = {
        "searcher": searcher,
        "strategy": strategy or "plain",
        "algorithm": algorithm,
        "dataset": "cifar100",
        "preset": "smoke",
        "seed": seed,
        "space": "darts",
        "algorithm_config": {"epochs": search_epochs, "lr": 0.025},
        "strategy_config": {"gamma": 0.5} if strategy else {},
        "device": "cpu" if seed % 2 else "cuda:0",  # the device is not a setting
    }
    retrain = {"seed": seed, "config": {"epochs": retrain_epochs, "batch_size": 64, "seed": seed}}
    score = {"scorer": "worst-case", "dataset": "cifar100", "metrics": {"worst_case_error": {"value": err}}}
    for rel, obj in (
        ("search/config.json", search),
        ("retrain/cifar100/retrain.json", retrain),
        ("scores/worst-case.json", score),
    ):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(json.dumps(obj))
    return run


def make_tree(root: Path, seeds: int = 5, **pdarts_settings: int) -> Path:
    for searcher, errs in ERRORS.items():
        for seed, err in enumerate(errs[:seeds], start=1):
            kw = pdarts_settings if searcher == "pdarts" else {}
            write_run(root, searcher, seed, err, **kw)
    return root


def compare(root: Path, *extra: str) -> int:
    argv = ["compare", "ours-pdarts", "pdarts", "-m", "worst_case_error", "--runs-dir", str(root)]
    return main([*argv, *extra])


def test_the_same_settings_seed_aside_are_compared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_tree(tmp_path / "runs")
    assert compare(root, "--json") == 0
    out, err = capsys.readouterr()
    (res,) = json.loads(out)["comparisons"]
    assert res["pvalue"] is not None and res["differing_settings"] == [] and res["warnings"] == []
    assert err == ""
    settings = run_settings(root / "cifar100" / "pdarts" / "seed-1", "worst-case")
    assert settings["retrain.cifar100.epochs"] == 8 and "search.seed" not in settings
    assert "search.device" not in settings and "retrain.cifar100.seed" not in settings


def test_runs_with_other_settings_are_refused_naming_the_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_tree(tmp_path / "runs", retrain_epochs=1)  # the baseline retrained for 1 epoch, not 8
    assert compare(root) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "retrain.cifar100.epochs" in err and "--allow-different" in err
    assert "search.strategy" not in err  # what names the searcher may differ


def test_allow_different_tests_anyway_and_says_so_loudly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_tree(tmp_path / "runs", retrain_epochs=1, search_epochs=2)
    assert compare(root, "--allow-different") == 0
    out, err = capsys.readouterr()
    flat = " ".join(out.split())
    assert "WARNING: the runs of ours-pdarts and pdarts differ in settings other than the seed" in flat
    assert "retrain.cifar100.epochs" in flat and "search.algorithm_config.epochs" in flat
    assert err.startswith("warning: worst_case_error: the runs") and err.count("\n") == 1
    assert compare(root, "--allow-different", "--json") == 0
    (res,) = json.loads(capsys.readouterr().out)["comparisons"]
    assert res["differing_settings"] == ["retrain.cifar100.epochs", "search.algorithm_config.epochs"]
    assert res["pvalue"] is not None


def test_one_side_made_two_ways_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_tree(tmp_path / "runs")
    write_run(root, "ours-pdarts", 6, 28.1, retrain_epochs=600)
    assert compare(root) == 2
    assert "retrain.cifar100.epochs" in capsys.readouterr().err
    runs = sorted((root / "cifar100" / "ours-pdarts").iterdir())
    assert differing_settings(runs) == ["retrain.cifar100.epochs"]


def test_two_seeds_is_no_test_and_three_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    two = make_tree(tmp_path / "two", seeds=2)
    assert compare(two, "--json") == 0
    (res,) = json.loads(capsys.readouterr().out)["comparisons"]
    assert res["pvalue"] is None and "n = 2 seed(s) on one side" in res["message"]
    assert "at least 3" in res["message"]
    three = make_tree(tmp_path / "three", seeds=3)
    assert compare(three, "--json") == 0
    (res,) = json.loads(capsys.readouterr().out)["comparisons"]
    assert res["pvalue"] is not None and any("only n = 3 seeds" in w for w in res["warnings"])


def test_the_boards_refuse_the_same_comparisons(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "runs", retrain_epochs=1)
    board = build_board(collect_runs(root), "worst_case_cifar100")
    comp = board.row_comparison(next(r for r in board.rows if r.searcher == "ours-pdarts"))
    assert comp is not None and comp.result.degenerate
    assert "settings differ" in comp.result.message and "retrain.cifar100.epochs" in comp.result.message
    fair = build_board(collect_runs(make_tree(tmp_path / "fair", seeds=3)), "worst_case_cifar100")
    comp = fair.row_comparison(next(r for r in fair.rows if r.searcher == "ours-pdarts"))
    assert comp is not None and not comp.result.degenerate and "only n = 3" in comp.warning
