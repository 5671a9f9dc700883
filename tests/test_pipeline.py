"""`wcbench run`: search -> retrain -> scores per seed, resumable, safe under concurrent runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluators.retrain import family_for
from searchers.darts import Darts1st
from tests.timeouts import hang_guard
from wcbench.cli import main
from wcbench.config import load_preset, split_settings
from wcbench.errors import ConfigError
from wcbench.files import read_json
from wcbench.pipeline import make_plan, parse_seeds, run, stage_settings
from wcbench.registry import ALGORITHMS
from wcbench.results import collect_runs
from wcbench.runs import RunDir, searcher_dir

TINY = [
    "--set", "search.epochs=1", "--set", "search.max_steps_per_epoch=2", "--set", "search.layers=3",
    "--set", "retrain.epochs=1", "--set", "retrain.max_train_examples=64", "--set", "retrain.layers=2",
    "--set", "retrain.init_channels=4", "--set", "retrain.max_valid_examples=64",
    "--set", "clean.max_examples=100",
]  # fmt: skip


def tiny_overrides() -> dict[str, object]:
    pairs = [TINY[i + 1].split("=", 1) for i in range(0, len(TINY), 2)]
    return {k: json.loads(v) for k, v in pairs}


def wcbench_run(runs: Path, *extra: str, searcher: str = "darts1st", scorers: str = "clean") -> list[str]:
    return ["run", "--searcher", searcher, "--preset", "smoke", "--scorers", scorers, "--runs-dir", str(runs),
            "--no-progress", "--device", "cpu", *TINY, *extra]  # fmt: skip


def test_seeds_parse() -> None:
    assert parse_seeds("1-3,7") == [1, 2, 3, 7]
    assert parse_seeds("0") == [0]


def test_quick_attacks_a_fixed_subset_unless_the_user_says_otherwise() -> None:
    quick = make_plan("darts1st", None, "smoke", "1", "clean,attacks", "runs")
    assert stage_settings(quick)["attacks"] == {"num_examples": 100}
    mine = make_plan("darts1st", None, "smoke", "1", "attacks", "runs", overrides={"attacks.num_examples": 7})
    assert stage_settings(mine)["attacks"] == {"num_examples": 7}
    assert stage_settings(make_plan("darts1st", None, "paper", "1", "attacks", "runs"))["attacks"] == {}


def test_defaults_follow_the_paper() -> None:
    plan = make_plan("pdarts", None, "paper", "1-10", None, "runs")
    assert plan.dataset == "cifar10" and plan.seeds == list(range(1, 11))
    assert {"cifar-c", "attacks", "stl10", "clean"} <= set(plan.scorers)
    assert "worst-case" in make_plan("pdarts", "cifar100", "paper", "1", None, "runs").scorers
    assert make_plan("ours-pdarts", None, "smoke", "1", None, "runs").dataset == "digits"
    assert family_for("DARTS_V2", "imagenet") == "imagenet"
    assert searcher_dir("darts2nd", "s3") == "darts2nd+s3"


def test_one_settings_splitter_for_every_command() -> None:
    """Every key names its stage; the prefix may be left out only where a command has one stage."""
    values = {"search.epochs": 1, "search.strategy.warm_epochs": 2, "retrain.lr": 0.1, "clean.batch_size": 8}
    out = split_settings(values, None, ["clean", "cost"])
    assert out == {
        "search": {"epochs": 1, "strategy.warm_epochs": 2},
        "retrain": {"lr": 0.1},
        "clean": {"batch_size": 8},
        "cost": {},
    }
    with pytest.raises(ConfigError, match="prefix the setting with its stage"):
        split_settings({"epochs": 1}, None, ["clean"])
    with pytest.raises(ConfigError, match="prefix the setting with its stage"):
        split_settings({"attacks.num_examples": 1}, None, ["clean"])
    search = split_settings(out["search"], "search")
    assert search == {"algorithm": {"epochs": 1}, "strategy": {"warm_epochs": 2}}
    assert split_settings({"search.epochs": 1, "strategy.k": 2}, "search") == {
        "algorithm": {"epochs": 1},
        "strategy": {"k": 2},
    }  # `wcbench search` has one stage: search.epochs and epochs mean the same
    score = split_settings(
        {"attacks.num_examples": 5, "clean.max_examples": 64}, "score", ["clean", "attacks"]
    )
    assert score["attacks"]["num_examples"] == 5 and score["clean"] == {"max_examples": 64}
    with pytest.raises(ConfigError, match="prefix the setting with its scorer"):
        split_settings({"max_examples": 64}, "score", ["clean", "attacks"])  # two stages: which one?
    assert split_settings({"max_examples": 64}, "score", ["clean"]) == {"clean": {"max_examples": 64}}
    evaluate = split_settings({"retrain.epochs": 1, "clean.max_examples": 9}, None, ["clean"], ("retrain",))
    assert evaluate == {"retrain": {"epochs": 1}, "clean": {"max_examples": 9}}
    with pytest.raises(ConfigError, match="retrain. or one of the scorers"):
        split_settings({"search.epochs": 1}, None, ["clean"], ("retrain",))
    with pytest.raises(ValueError, match="unknown stage"):
        split_settings({}, "retrian")


class PlugInAlgorithm(Darts1st):
    """A plug-in algorithm retrained with the PC-DARTS table (Table 34) it declares."""

    name = "plugin1st"
    retrain_family = "pcdarts"
    presets = {"smoke": load_preset("search", "darts1st", "smoke")}


@pytest.fixture
def plugin_algorithm() -> Iterator[str]:
    ALGORITHMS.register(PlugInAlgorithm.name)(PlugInAlgorithm)
    yield PlugInAlgorithm.name
    del ALGORITHMS._items[PlugInAlgorithm.name]


def test_a_plug_in_algorithm_is_retrained_with_the_family_it_declares(
    plugin_algorithm: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    assert main(wcbench_run(runs, "--seeds", "1", searcher=plugin_algorithm)) == 0
    rd = RunDir(runs, "digits", plugin_algorithm, 1)
    assert read_json(rd.search_dir / "genotype.json")["retrain_family"] == "pcdarts"
    assert rd.read_manifest()["stages"]["retrain"]["family"] == "pcdarts"
    assert read_json(rd.retrain_dir("digits") / "retrain.json")["preset"]["family"] == "pcdarts"
    # `wcbench retrain` of the same search directory follows the same table
    out = tmp_path / "retrain"
    retrain = split_settings(tiny_overrides(), None, ["clean"])["retrain"]
    tiny = [f"--set={k}={v}" for k, v in retrain.items()]
    argv = ["retrain", "--genotype", str(rd.search_dir), "--dataset", "digits", "--out", str(out),
            "--preset", "smoke", "--device", "cpu", "--no-progress", *tiny]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert read_json(out / "retrain.json")["preset"]["family"] == "pcdarts"


def test_run_writes_every_stage_and_resumes_by_skipping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    assert main(wcbench_run(runs, "--seeds", "1-2")) == 0
    out = capsys.readouterr().out
    assert "leaderboard rows" in out and "top-1 error" in out
    for seed in (1, 2):
        rd = RunDir(runs, "digits", "darts1st", seed)
        manifest = rd.read_manifest()
        assert manifest["status"] == "done"
        assert {"search", "retrain", "score:clean"} <= set(manifest["stages"])
        assert (rd.search_dir / "genotype.json").exists() and (rd.search_dir / "history.jsonl").exists()
        assert (rd.retrain_dir("digits") / "model.pt").exists()
        score = read_json(rd.score_path("clean"))
        assert score["seed"] == seed and 0.0 <= score["metrics"]["top1_error"]["value"] <= 100.0
    before = RunDir(runs, "digits", "darts1st", 1).score_path("clean").stat().st_mtime_ns
    assert main(wcbench_run(runs, "--seeds", "1")) == 0
    out = capsys.readouterr().out
    assert "search done, skipped" in out and "score clean done, skipped" in out
    assert RunDir(runs, "digits", "darts1st", 1).score_path("clean").stat().st_mtime_ns == before
    table = collect_runs(runs)
    assert sorted(table[table.metric == "top1_error"].seed) == [1, 2]
    # --json: one JSON object on stdout, the logs on stderr
    assert main(wcbench_run(runs, "--seeds", "1-2", "--json")) == 0
    done = json.loads(capsys.readouterr().out)
    assert [r["seed"] for r in done["runs"]] == [1, 2] and done["searcher"] == "darts1st"
    first = done["runs"][0]
    assert first["dir"] == str(RunDir(runs, "digits", "darts1st", 1).path) and first["status"] == "done"
    assert first["stages"]["search"] == first["stages"]["score:clean"] == "done"
    score = read_json(RunDir(runs, "digits", "darts1st", 1).score_path("clean"))
    assert first["scores"]["clean"]["top1_error"] == score["metrics"]["top1_error"]["value"]


def test_two_concurrent_runs_on_one_tree_lose_nothing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", "import sys; from wcbench.cli import main; sys.exit(main(sys.argv[1:]))"]
    procs = [
        subprocess.Popen([*cmd, *wcbench_run(runs, "--seeds", "1-2", scorers="clean,worst-case")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outs = [p.communicate(timeout=hang_guard(600))[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    hashes: set[str] = set()
    for seed in (1, 2):
        rd = RunDir(runs, "digits", "darts1st", seed)
        assert rd.read_manifest()["status"] == "done"
        assert read_json(rd.score_path("clean"))["metrics"]["top1_error"]["value"] is not None
        hashes.add(read_json(rd.score_path("worst-case"))["subset_sha256"])
        lines = (rd.search_dir / "history.jsonl").read_text().splitlines()
        assert len(lines) == 1 and json.loads(lines[0])["epoch"] == 0  # searched once, not twice
    # the second process found the work of the first and skipped it; the worst-case subset was
    # built once (under its lock) and both seeds were scored on the same images
    assert sum("search done, skipped" in o for o in outs) >= 1
    assert sum("building the worst-case subset" in o for o in outs) == 1 and len(hashes) == 1


def test_submitit_local_executor_runs_the_same_job(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    plan = make_plan(
        "darts1st",
        "digits",
        "smoke",
        "3",
        "clean",
        runs,
        overrides=tiny_overrides(),
        device="cpu",
        progress=False,
    )
    dirs = run(plan, executor="submitit-local", log=lambda _m: None)
    rd = RunDir(tmp_path / "runs", "digits", "darts1st", 3)
    assert dirs == [str(rd.path)]
    assert rd.read_manifest()["status"] == "done" and rd.score_path("clean").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--searcher", "ours-pdrats", "--preset", "smoke"],
        ["run", "--searcher", "darts1st", "--seeds", "3-1"],
        ["run", "--searcher", "darts1st", "--set", "epochs=1"],
        ["run", "--searcher", "darts1st", "--scorers", "cleen"],
        ["run", "--searcher", "darts1st", "--space", "s7"],
        ["run", "--searcher", "darts1st", "--executor", "kubernetes", "--preset", "smoke"],
    ],
    ids=lambda a: " ".join(a[2:]),
)
def test_bad_run_options_are_one_line_and_exit_2(argv: list[str], tmp_path: Path, capsys) -> None:
    rc = main([*argv, "--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err


def test_two_searchers_two_seeds_then_the_leaderboard_shows_n2_and_no_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two real runs per searcher reach the board with n = 2, and the board says why it runs no
    t-test on them (fewer than 3 seeds per side: wcbench.report.fairness); their settings, resolved
    from the stage files, differ only where the searcher's name does, so that is not the reason."""
    runs = tmp_path / "runs"
    for searcher in ("darts1st", "spcl-darts1st"):
        assert main(wcbench_run(runs, "--seeds", "1-2", searcher=searcher)) == 0
    capsys.readouterr()
    assert (
        main(["leaderboard", "--benchmark", "cifar_overall", "--format", "md", "--runs-dir", str(runs)]) == 0
    )
    board = capsys.readouterr().out
    table = collect_runs(runs)
    err = table[table.metric == "top1_error"].sort_values("seed")
    a = err[err.searcher == "spcl-darts1st"].value.tolist()
    b = err[err.searcher == "darts1st"].value.tolist()
    assert len(a) == len(b) == 2
    rows = [line for line in board.splitlines() if line.startswith("| ") and "darts1st" in line]
    assert any("spcl-darts1st" in r and "| 2 |" in r for r in rows) and any(
        r.startswith("| darts1st") and "| 2 |" in r for r in rows
    )
    assert "n = 2 seed(s) on one side" in board and "settings differ" not in board


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_dry_run_resolves_every_stage_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--searcher", "ours-pdarts", "--preset", "smoke", "--seeds", "1-2", "--dry-run"]
    assert main([*argv, "--set", "retrain.epochs=3", "--set", "clean.batch_size=64"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["search"]["algorithm"] == "pdarts" and plan["search"]["strategy"] == "ours"
    assert plan["retrain"]["family"] == "pdarts" and plan["retrain"]["config"]["epochs"] == 3
    assert plan["scorers"]["clean"]["batch_size"] == 64
    assert plan["data"]["train"]["classes"] == 10
    assert len(plan["run_dirs"]) == 2
    assert _tree(tmp_path) == []  # no runs tree, no data cache


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--set", "retrain.epochs=-1"], "epochs"),  # a later stage's setting, refused before the first
        (["--set", "clean.nope=1"], "nope"),
        (["--set", "search.nope=1"], "nope"),
        (["--preset", "paper"], "not found"),  # CIFAR-10 is not on disk: the data is checked too
    ],
)
def test_dry_run_refuses_what_the_run_would_fail_on(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    says: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WCBENCH_DATA", str(tmp_path / "data"))
    argv = ["run", "--searcher", "pdarts", "--dry-run"]
    argv += [] if "--preset" in extra else ["--preset", "smoke"]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err
    assert _tree(tmp_path) == []


def test_a_rerun_with_other_settings_stops_naming_the_key_until_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    rd = RunDir(runs, "digits", "darts1st", 1)
    assert main(wcbench_run(runs)) == 0
    capsys.readouterr()
    search_mtime = (rd.search_dir / "checkpoint.pt").stat().st_mtime_ns
    score_mtime = rd.score_path("clean").stat().st_mtime_ns
    before = rd.read_manifest()

    assert main(wcbench_run(runs, "--set", "retrain.epochs=2")) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "retrain.epochs: 1 -> 2" in err and "--force retrain" in err
    manifest = rd.read_manifest()  # nothing ran, and nothing claims it did
    assert {k: v for k, v in manifest.items() if k != "attempts"} == {
        k: v for k, v in before.items() if k != "attempts"
    }
    assert manifest["status"] == "done" and manifest["config"]["overrides"]["retrain.epochs"] == 1
    assert read_json(rd.retrain_dir("digits") / "retrain.json")["config"]["epochs"] == 1
    assert (
        manifest["attempts"][-1]["outcome"].startswith("refused")
        and "retrain.epochs" in (manifest["attempts"][-1]["outcome"])
    )

    assert main(wcbench_run(runs, "--set", "retrain.epochs=2", "--force", "retrain")) == 0
    assert "search done, skipped" in capsys.readouterr().out
    manifest = rd.read_manifest()
    assert manifest["config"]["overrides"]["retrain.epochs"] == 2
    assert manifest["stages"]["retrain"]["settings"]["epochs"] == 2
    assert len((rd.retrain_dir("digits") / "history.jsonl").read_text().splitlines()) == 2
    assert (rd.search_dir / "checkpoint.pt").stat().st_mtime_ns == search_mtime  # not redone
    assert rd.score_path("clean").stat().st_mtime_ns != score_mtime  # depends on the retrain: redone
    assert [a["outcome"].split(":")[0] for a in manifest["attempts"]] == ["done", "refused", "done"]
    assert manifest["attempts"][-1]["settings"]["force"] == ["retrain"]


def test_adding_a_scorer_to_a_finished_seed_runs_just_that_scorer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    rd = RunDir(runs, "digits", "darts1st", 1)
    assert main(wcbench_run(runs)) == 0
    assert main(wcbench_run(runs, scorers="clean,cost")) == 0
    out = capsys.readouterr().out
    assert "retrain done, skipped" in out and "score clean done, skipped" in out
    assert rd.score_path("cost").exists()
    assert main(wcbench_run(runs, scorers="clean")) == 0  # fewer scorers: the record keeps both
    assert rd.read_manifest()["config"]["scorers"] == ["clean", "cost"]


def test_an_unknown_force_name_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(wcbench_run(tmp_path / "runs", "--force", "retrian")) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--force 'retrian'" in err
    assert not (tmp_path / "runs").exists()


def test_sigterm_mid_search_marks_the_run_interrupted_and_the_same_command_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import signal
    import time

    runs = tmp_path / "runs"
    rd = RunDir(runs, "digits", "darts1st", 1)
    argv = wcbench_run(runs, "--set", "search.epochs=2")
    cmd = [sys.executable, "-c", "import sys; from wcbench.cli import main; sys.exit(main(sys.argv[1:]))"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*cmd, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    history = rd.search_dir / "history.jsonl"
    deadline = time.monotonic() + hang_guard(300)
    while not (history.exists() and history.read_text().strip()):  # epoch 0 done: now in epoch 1
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # what SLURM sends before it kills a job
    _, err = proc.communicate(timeout=hang_guard(120))
    assert proc.returncode == 143
    assert err.strip().splitlines() == ["interrupted; rerun the same command to resume"]
    manifest = rd.read_manifest()
    assert manifest["status"] == "interrupted" and manifest["stages"]["search"]["status"] == "interrupted"
    assert manifest["attempts"][-1]["outcome"] == "interrupted"

    assert main(argv) == 0  # the same command resumes from the epoch-0 checkpoint and finishes
    epochs = [json.loads(line)["epoch"] for line in history.read_text().splitlines()]
    assert epochs == [0, 1]
    manifest = rd.read_manifest()
    assert manifest["status"] == "done" and manifest["stages"]["search"]["status"] == "done"
    assert [a["outcome"] for a in manifest["attempts"]] == ["interrupted", "done"]


def test_a_failed_stage_is_recorded_failed_not_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from wcbench.errors import TrainingError

    def diverge(*args: object, **kwargs: object) -> None:
        raise TrainingError("search loss is non-finite at epoch 0; lower the learning rate")

    monkeypatch.setattr("wcbench.stages.search_stage", diverge)
    runs = tmp_path / "runs"
    assert main(wcbench_run(runs)) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    manifest = RunDir(runs, "digits", "darts1st", 1).read_manifest()
    assert manifest["status"] == "failed" and manifest["stages"]["search"]["status"] == "failed"
    assert manifest["attempts"][-1]["outcome"] == "failed" and "non-finite" in manifest["error"]
