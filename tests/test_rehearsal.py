"""`wcbench run --preset paper --rehearse N`: every stage of the real configuration for N steps, timed,
with a projection of the full run that is steps x seconds per step (issue #15)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.conftest import TinyData
from wcbench.cli import main
from wcbench.files import read_json
from wcbench.phases import is_listening, listening, phase
from wcbench.results import collect_runs

# The paper preset with its networks shrunk (the stage structure, epochs and iteration counts of the
# preset are kept: they are what the projection multiplies by).
SMALL = {
    "search.batch_size": "4",
    "search.init_channels": "2",
    "search.layers": "3",
    "retrain.init_channels": "4",
    "retrain.layers": "3",
    "retrain.batch_size": "4",
    "cost.measure_memory": "false",
    "cost.latency_batch_sizes": "[1]",
    "cost.latency_repeats": "1",
}
SMALL_GAN = {
    "search.strategy.gan_width": "4",
    "search.strategy.dim_z": "32",
    "search.strategy.aux_arch": "small",
    "search.strategy.aux_width": "8",
    "search.strategy.aux_hidden": "32",
    "search.strategy.pretrain_batch": "4",
    "search.strategy.reference_arch": "small",
    "search.strategy.reference_width": "8",
    "search.strategy.diag_samples": "8",
}
SMALL_PDARTS = {"search.add_layers": "[0,1,2]"}


def _rehearse(data: TinyData, runs: Path, searcher: str, settings: dict[str, str]) -> dict:
    argv = ["run", "--searcher", searcher, "--dataset", data.name, "--preset", "paper", "--rehearse", "1",
            "--rehearse-examples", "4", "--scorers", "clean,cost", "--runs-dir", str(runs), "--device", "cpu",
            "--no-progress"]  # fmt: skip
    for key, value in settings.items():
        argv += ["--set", f"{key}={value}"]
    assert main(argv) == 0
    (path,) = runs.glob("rehearsal/*/*/seed-1/rehearsal.json")
    return read_json(path)


@pytest.fixture
def folder(data_writers, tmp_path: Path) -> TinyData:
    """An image folder with 8 training images per class (3 classes): 12 + 12 in the search split."""
    return data_writers.imagefolder(tmp_path / "images", per_class={"train": 8, "test": 4})


def _check_arithmetic(report: dict) -> None:
    for row in report["rows"]:
        assert row["count"] >= 1 and row["seconds"] >= 0, row
        assert row["seconds_per_unit"] == pytest.approx(row["seconds"] / row["count"], rel=1e-3, abs=1e-6)
        assert row["projected_seconds"] == pytest.approx(
            row["seconds_per_unit"] * row["full_count"], rel=1e-3, abs=1e-3
        ), row
        assert row["peak_memory_mb"] > 0 and row["memory_source"]
    hours = sum(r["projected_seconds"] for r in report["rows"] if r["kind"] in ("tester", "search")) / 3600
    assert report["totals"]["search_hours"] == pytest.approx(hours, rel=1e-3, abs=1e-4)


def test_ours_darts2nd_rehearsal_times_the_tester_search_retrain_and_scorers(
    folder: TinyData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    report = _rehearse(folder, runs, "ours-darts2nd", {**SMALL, **SMALL_GAN})
    phases = {r["phase"] for r in report["rows"]}
    assert phases == {
        "tester: G/D pretraining",
        "tester: V pretraining",
        "tester: reference classifier",
        "search",
        "retrain",
        "score: clean",
        "score: cost",
    }
    rows = {(r["phase"], r["part"]): r for r in report["rows"]}
    # one step of each, projected to the preset's counts (ours, Table 25 / FQ-GAN / He et al.)
    assert rows["tester: G/D pretraining", "step"]["full_count"] == 48828
    assert rows["tester: V pretraining", "step"]["full_count"] == 64000
    # DARTS: 50 epochs of floor(12 / 4) = 3 steps; CR: the hypergradient every 8th step
    assert rows["search", "weight step"]["count"] == 1
    assert rows["search", "weight step"]["full_count"] == 50 * 3
    assert rows["search", "arch step"]["full_count"] == 50 * math.ceil(3 / 8)
    assert rows["search", "validation example"]["full_count"] == 50 * 12
    # retrain: two epochs of one step rehearsed; 600 epochs x ceil(24 / 4) in full (Table 33)
    assert rows["retrain", "train step"]["count"] == 2
    assert rows["retrain", "train step"]["full_count"] == 600 * 6
    # the clean scorer scored a 4-image slice of the 12 test images
    assert rows["score: clean", "run"]["full_count"] == pytest.approx(12 / 4)
    _check_arithmetic(report)
    assert report["cost_reduction"] is True
    assert report["paper_table9"]["memory"] == {"value": 10982.0, "unit": "MiB", "row": "CR-darts2nd (ours)"}
    assert "Rehearsal of ours-darts2nd (CR)" in capsys.readouterr().out
    # nothing of a rehearsal is a result: no run outside rehearsal/, nothing on a leaderboard
    assert collect_runs(runs).empty
    assert [p.name for p in runs.iterdir()] == ["rehearsal"]


def test_pdarts_rehearsal_runs_each_stage_weights_only_and_with_the_architecture(
    folder: TinyData, tmp_path: Path
) -> None:
    report = _rehearse(folder, tmp_path / "runs", "pdarts", {**SMALL, **SMALL_PDARTS})
    rows = {(r["phase"], r["part"]): r for r in report["rows"]}
    for stage in (1, 2, 3):
        name = f"search stage {stage}/3"
        # a weights-only epoch and an architecture epoch of one step each; 25 epochs per stage, of
        # which 15 with architecture steps (P-DARTS: 10 warm-up epochs per stage)
        assert rows[name, "weight step"]["count"] == 2
        assert rows[name, "weight step"]["full_count"] == 25 * 3
        assert rows[name, "arch step"]["count"] == 1
        assert rows[name, "arch step"]["full_count"] == 15 * 3
    assert report["settings"]["search.epochs"] == 2 and report["settings"]["search.warmup_epochs"] == 1
    _check_arithmetic(report)
    assert report["paper_table9"]["search_cost"]["value"] == 0.3


SMALL_AUGMENT = {
    "search.strategy.aux_arch": "small",
    "search.strategy.aux_width": "8",
    "search.strategy.reference_arch": "small",
    "search.strategy.reference_width": "8",
    "search.strategy.diag_samples": "8",
}


def test_ours_pdarts_rehearsal_times_an_architecture_step_in_every_stage(
    folder: TinyData, tmp_path: Path
) -> None:
    """Under CR the hypergradient comes every 8th global step; the rehearsal's one-step warm-up epoch
    must not push the architecture epoch off it (no arch step rehearsed means none projected)."""
    report = _rehearse(folder, tmp_path / "runs", "ours-pdarts", {**SMALL, **SMALL_PDARTS, **SMALL_AUGMENT})
    rows = {(r["phase"], r["part"]): r for r in report["rows"]}
    assert report["cost_reduction"] is True and report["settings"]["search.strategy.hyper_every"] == 1
    for stage in (1, 2, 3):
        name = f"search stage {stage}/3"
        assert rows[name, "arch step"]["count"] == 1
        # 25 epochs per stage, 15 after the warm-up (Appendix E), of ceil(3 steps / 8) hypergradient steps
        assert rows[name, "arch step"]["full_count"] == 15 * math.ceil(3 / 8)
    _check_arithmetic(report)


def test_phases_record_nothing_unless_someone_listens() -> None:
    assert not is_listening()
    with phase("p", "search", "cpu") as clock, clock.part("step"):
        pass
    with listening() as log:
        with phase("p", "search", "cpu") as clock:
            with clock.part("step", 2):
                torch.ones(4).sum()
        with phase("p", "search", "cpu") as clock, clock.part("step"):
            pass
    assert not is_listening()
    record = log.records["p"]
    assert record.parts["step"][1] == 3 and record.parts["step"][0] > 0
    assert record.peak_memory_mb > 0


def test_rehearse_rejects_zero_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--searcher", "pdarts", "--rehearse", "0", "--runs-dir", str(tmp_path)]) == 2
    assert "--rehearse" in capsys.readouterr().err


def test_a_failing_stage_keeps_the_phases_timed_before_it(
    folder: TinyData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    argv = ["run", "--searcher", "darts1st", "--dataset", folder.name, "--preset", "paper", "--rehearse", "1",
            "--scorers", "clean", "--runs-dir", str(runs), "--device", "cpu", "--no-progress",
            "--set", "retrain.lr=-1"]  # fmt: skip
    for key, value in SMALL.items():
        if not key.startswith("cost."):
            argv += ["--set", f"{key}={value}"]
    assert main(argv) == 2  # the retrain's settings are wrong: a one-line error, as in a real run
    assert "lr" in capsys.readouterr().err
    (path,) = runs.glob("rehearsal/*/*/seed-1/rehearsal.json")
    report = read_json(path)
    assert report["error"].startswith("ConfigError")
    # every stage's settings are checked before the first stage runs, so nothing was timed yet
    assert {r["phase"] for r in report["rows"]} == set()


def test_a_phase_starts_with_the_freed_heap_handed_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU stage's freed tensors stay in glibc's heap (a paper-size rehearsal's search peak stayed
    resident through its retrain, and the cost scorer after it was killed for memory): each timed
    phase starts by handing it back (``malloc_trim``; CUDA: the allocator's cache)."""
    import wcbench.devices as devices

    calls: list[str] = []
    monkeypatch.setattr(devices, "release_memory", lambda device=None: calls.append(str(device)))
    with phase("quiet", "search", "cpu"):
        pass
    assert calls == []  # nobody listening: nothing timed, nothing done
    with listening(), phase("next", "retrain", "cpu"):
        assert calls == ["cpu"]
    monkeypatch.undo()
    devices.release_memory(torch.device("cpu"))  # glibc's malloc_trim, or nothing where there is none
