"""`wcbench tester pretrain` caches a tester under the data root; an `ours` search then starts from it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from searchers.loop import run_search
from wcbench.cli import main

SMALL = ["--set", "pretrain_iters=4", "--set", "aux_pretrain_iters=4"]


def test_pretrain_then_search_starts_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WCBENCH_DATA", str(tmp_path / "data"))
    argv = [
        "tester",
        "pretrain",
        "--dataset",
        "digits",
        "--tester",
        "gan",
        "--preset",
        "smoke",
        "--device",
        "cpu",
    ]
    assert main([*argv, *SMALL]) == 0
    assert "pretrained now" in capsys.readouterr().out
    cached = list((tmp_path / "data" / "testers").glob("tester-gan-digits-*.pt"))
    assert len(cached) == 1
    over = {
        "epochs": 1,
        "max_steps_per_epoch": 2,
        "strategy.pretrain_iters": 4,
        "strategy.aux_pretrain_iters": 4,
        "strategy.reference_iters": 2,  # the diagnostics are not what these tests check
        "strategy.probe_iters": 0,
    }
    # seed 1: `tester pretrain` and `search` default to the same seed, so the search finds the cache
    run_search("ours-darts2nd", "digits", "smoke", 1, "darts", tmp_path / "s", over, "cpu", progress=False)
    record = json.loads((tmp_path / "s" / "history.jsonl").read_text().splitlines()[0])
    assert record["strategy"]["tester_init"] == f"cache {cached[0]}"


def test_pretrain_and_search_use_the_data_root_they_are_given(tmp_path: Path) -> None:
    env = os.environ["WCBENCH_DATA"]  # conftest: a fresh folder per test
    root = tmp_path / "root"
    argv = ["tester", "pretrain", "--dataset", "digits", "--preset", "smoke", "--device", "cpu"]
    assert main([*argv, "--data-root", str(root), *SMALL]) == 0
    assert os.environ["WCBENCH_DATA"] == env  # the command no longer rewrites the environment
    cached = list((root / "testers").glob("tester-gan-digits-*.pt"))
    assert len(cached) == 1 and not (Path(env) / "testers").exists()
    over = {
        "epochs": 1,
        "max_steps_per_epoch": 2,
        "strategy.pretrain_iters": 4,
        "strategy.aux_pretrain_iters": 4,
        "strategy.reference_iters": 2,  # the diagnostics are not what these tests check
        "strategy.probe_iters": 0,
    }
    out = tmp_path / "s"
    run_search(
        "ours-darts2nd", "digits", "smoke", 1, "darts", out, over, "cpu", progress=False, data_root=root
    )
    record = json.loads((out / "history.jsonl").read_text().splitlines()[0])
    assert record["strategy"]["tester_init"] == f"cache {cached[0]}"


def test_without_a_cache_the_search_stops_and_names_the_command(
    tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The paper's method starts from a pretrained tester (Sec. 3.3, App. A.1): a search that finds
    none says which command makes it, instead of silently training an untrained one."""
    monkeypatch.setenv("WCBENCH_DATA", str(tmp_path / "data"))
    argv = ["search", "--searcher", "ours-darts2nd", "--preset", "paper", "--dataset", "digits"]
    assert main([*argv, "--out", str(tmp_path / "x"), "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "wcbench tester pretrain --dataset digits --tester gan --algorithm darts2nd --preset paper" in err
    assert "strategy.tester_init=scratch" in err


def test_an_explicit_scratch_tester_is_said_in_the_history(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WCBENCH_DATA", str(tmp_path / "data"))
    over = {
        "epochs": 1,
        "max_steps_per_epoch": 2,
        "strategy.tester_init": "scratch",
        "strategy.probe_iters": 0,
    }
    run_search("ours-darts2nd", "digits", "smoke", 0, "darts", tmp_path / "s", over, "cpu", progress=False)
    record = json.loads((tmp_path / "s" / "history.jsonl").read_text().splitlines()[0])
    assert record["strategy"]["tester_init"] == "scratch (tester_init=scratch)"
    assert not list((tmp_path / "data" / "testers").glob("tester-*.pt"))


def test_unknown_tester_kind_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tester", "pretrain", "--dataset", "digits", "--tester", "vae"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
