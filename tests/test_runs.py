"""Run directories (the README, "Runs on disk"): atomic writes, safe checkpoints, manifests, tidy table."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import pytest

from tests.timeouts import hang_guard
from wcbench.checkpoints import checkpoint_keys, checksum_path, load_checkpoint, save_checkpoint
from wcbench.errors import CheckpointError, ConfigError
from wcbench.files import (
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_json,
    read_jsonl,
)
from wcbench.results import COLLECT_COLUMNS, collect_runs
from wcbench.runs import RunDir

# ---------------------------------------------------------------- atomic writes


def test_atomic_writes_create_parents_and_leave_no_temp_files(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "a" / "b" / "x.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "a" / "t.txt", "héllo")
    atomic_write_json(tmp_path / "a" / "j.json", {"x": [1, 2.5, None], "s": "é"})
    assert (tmp_path / "a" / "b" / "x.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "a" / "t.txt").read_text(encoding="utf-8") == "héllo"
    assert read_json(tmp_path / "a" / "j.json") == {"x": [1, 2.5, None], "s": "é"}
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_atomic_write_gives_the_usual_file_mode(tmp_path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    atomic_write_text(tmp_path / "m.txt", "x")
    assert (tmp_path / "m.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    atomic_write_json(target, {"long": "x" * 1000})
    atomic_write_json(target, {"short": 1})
    assert read_json(target) == {"short": 1}


def test_failed_write_keeps_old_file_and_cleans_temp(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    atomic_write_json(target, {"ok": True})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert read_json(target) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_json_accepts_numpy_and_torch_values(tmp_path: Path) -> None:
    import numpy as np
    import torch

    atomic_write_json(tmp_path / "n.json", {"a": np.float32(0.5), "b": np.arange(3), "c": torch.tensor(2.0)})
    assert read_json(tmp_path / "n.json") == {"a": 0.5, "b": [0, 1, 2], "c": 2.0}


def test_corrupt_json_names_file_and_says_delete(tmp_path: Path) -> None:
    bad = tmp_path / "scores" / "clean.json"
    bad.parent.mkdir()
    bad.write_text('{"metrics": {')
    with pytest.raises(CheckpointError, match=r"clean\.json.*delete it"):
        read_json(bad)


# ---------------------------------------------------------------- JSON lines


def test_jsonl_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "search" / "history.jsonl"
    for epoch in range(3):
        append_jsonl(path, {"epoch": epoch, "loss": 1.0 / (epoch + 1)})
    assert [r["epoch"] for r in read_jsonl(path)] == [0, 1, 2]
    assert path.read_text().count("\n") == 3


def test_jsonl_missing_file_is_empty_history(tmp_path: Path) -> None:
    assert read_jsonl(tmp_path / "nope.jsonl") == []


def test_jsonl_truncated_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    append_jsonl(path, {"epoch": 0})
    append_jsonl(path, {"epoch": 1})
    with open(path, "ab") as fh:  # a writer killed mid-line
        fh.write(b'{"epoch": 2, "lo')
    assert read_jsonl(path) == [{"epoch": 0}, {"epoch": 1}]


def test_jsonl_append_after_kill_drops_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    append_jsonl(path, {"epoch": 0})
    with open(path, "ab") as fh:
        fh.write(b'{"epoch": 1, "lo')
    append_jsonl(path, {"epoch": 1, "loss": 0.5})
    assert read_jsonl(path) == [{"epoch": 0}, {"epoch": 1, "loss": 0.5}]


def test_jsonl_corrupt_middle_line_raises(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('{"epoch": 0}\n{"epoch": 1,,}\n{"epoch": 2}\n')
    with pytest.raises(CheckpointError, match=r"line 2 in .*h\.jsonl"):
        read_jsonl(path)


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    import torch

    state = {"epoch": 7, "model": {"w": torch.arange(4.0)}, "rng": torch.get_rng_state(), "note": "x"}
    save_checkpoint(tmp_path / "search" / "checkpoint.pt", state)
    loaded = load_checkpoint(tmp_path / "search" / "checkpoint.pt")
    assert loaded["epoch"] == 7 and loaded["note"] == "x"
    assert torch.equal(loaded["model"]["w"], torch.arange(4.0))
    assert torch.equal(loaded["rng"], state["rng"])


class Payload:
    """An arbitrary class: unpickling it would run code of the file's choosing."""

    def __reduce__(self) -> tuple:
        return (os.system, ("echo unpickled",))


def test_checkpoint_with_arbitrary_pickled_class_is_refused(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, path)  # torch.save itself pickles anything
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(path)


def test_truncated_and_garbage_checkpoints_raise_checkpoint_error(tmp_path: Path) -> None:
    import torch

    good = tmp_path / "good.pt"
    save_checkpoint(good, {"w": torch.ones(100)})
    data = good.read_bytes()
    for name, blob in {
        "half.pt": data[: len(data) // 2],
        "empty.pt": b"",
        "junk.pt": b"not a checkpoint",
    }.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
            load_checkpoint(tmp_path / name)


def test_a_single_flipped_byte_in_a_checkpoint_is_refused_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "search" / "checkpoint.pt"
    save_checkpoint(path, {"w": torch.arange(1000.0), "epoch": 3})
    assert json.loads(checksum_path(path).read_text())["sha256"]
    data = bytearray(path.read_bytes())
    for offset in (len(data) // 3, len(data) // 2, len(data) - 30):  # tensor bytes, zip records
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        path.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError, match=r"checkpoint\.pt does not match its checksum.*delete"):
            load_checkpoint(path)
    path.write_bytes(bytes(data))
    assert load_checkpoint(path)["epoch"] == 3


def test_a_kill_between_checksum_and_checkpoint_still_verifies(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1})
    old = path.read_bytes()
    save_checkpoint(path, {"epoch": 2})
    path.write_bytes(old)  # as if killed after the sidecar's rename and before the checkpoint's
    assert load_checkpoint(path)["epoch"] == 1
    save_checkpoint(path, {"epoch": 3, "w": torch.ones(3)})
    assert load_checkpoint(path)["epoch"] == 3


def test_random_bytes_are_always_a_checkpoint_error(tmp_path: Path) -> None:
    import random

    import torch

    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(50), "epoch": 1}, good)
    data = good.read_bytes()
    rng = random.Random(0)
    path = tmp_path / "bad.pt"
    for i in range(200):  # garbage, and real checkpoints with a random stretch overwritten
        if i % 2:
            blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        else:
            start = rng.randrange(len(data))
            blob = data[:start] + bytes(rng.randrange(256) for _ in range(8)) + data[start + 8 :]
        path.write_bytes(blob)
        try:
            load_checkpoint(path)
        except CheckpointError as exc:
            assert "bad.pt" in str(exc)


def test_a_checkpoint_missing_keys_names_the_file() -> None:
    with pytest.raises(CheckpointError, match=r"ckpt\.pt lacks 'algorithm'"):
        checkpoint_keys({"epoch": 1}, ("epoch", "algorithm"), "ckpt.pt")


def test_missing_checkpoint_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt")


# ---------------------------------------------------------------- RunDir


def test_rundir_layout(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "runs", "cifar100", "ours-pdarts", 3)
    root = tmp_path / "runs" / "cifar100" / "ours-pdarts" / "seed-3"
    assert run.path == root
    assert run.search_dir == root / "search"
    assert run.retrain_dir("imagenet") == root / "retrain" / "imagenet"
    assert run.scores_dir == root / "scores"
    assert run.score_path("worst-case") == root / "scores" / "worst-case.json"
    assert run.manifest_path == root / "manifest.json"
    assert RunDir.from_path(root).path == root


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".."])
def test_rundir_rejects_path_like_names(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError):
        RunDir(tmp_path, bad, "darts2nd", 1)


def test_manifest_records_config_versions_and_stages(tmp_path: Path) -> None:
    import torch

    import wcbench

    run = RunDir(tmp_path, "cifar10", "darts2nd", 1)
    run.write_manifest({"epochs": 50, "lr": 0.025}, status="running")
    m = json.loads(run.manifest_path.read_text())
    assert m["config"] == {"epochs": 50, "lr": 0.025}
    assert m["status"] == "running" and m["start"] and m["end"] is None
    assert m["wcbench_version"] == wcbench.__version__
    assert m["torch_version"] == torch.__version__
    assert "cuda_version" in m and "git_commit" in m and m["hostname"] and m["python_version"]

    assert not run.stage_done("search")
    run.stage_start("search")
    assert not run.stage_done("search")
    run.stage_end("search")
    assert run.stage_done("search")
    run.update_manifest(status="done")
    m = run.read_manifest()
    assert m["stages"]["search"]["start"] and m["stages"]["search"]["end"]
    assert m["status"] == "done" and m["end"] is not None
    assert m["config"] == {"epochs": 50, "lr": 0.025}  # merge, not overwrite


def test_rewriting_manifest_on_resume_keeps_start_and_stages(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "cifar10", "darts2nd", 1)
    first = run.write_manifest({"a": 1}, "running")
    run.stage_end("search")
    again = run.write_manifest({"a": 1}, "running")
    assert again["start"] == first["start"] and len(again["attempts"]) == 2
    assert run.stage_done("search")


def test_every_attempt_is_kept_with_its_command_settings_times_and_outcome(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "cifar10", "darts2nd", 1)
    run.write_manifest({"a": 1}, "running", {"overrides": {"retrain.epochs": 1}})
    run.end_attempt("failed", error="boom")
    run.write_manifest({"a": 2}, "running")
    m = run.end_attempt("done", error=None)
    first, second = m["attempts"]
    assert first["settings"] == {"overrides": {"retrain.epochs": 1}} and first["outcome"] == "failed"
    assert second["settings"] == {"a": 2} and second["outcome"] == "done"
    assert all(a["command"] and a["start"] and a["end"] and a["pid"] for a in (first, second))
    assert m["config"] == {"a": 1}  # the config is what made the files, not what the last command asked
    assert m["status"] == "done" and m["error"] is None
    run.write_manifest({"a": 2}, "running")  # then killed with -9: no end_attempt
    m = run.write_manifest({"a": 2}, "running")
    assert m["attempts"][2]["outcome"].startswith("killed") and m["attempts"][3]["outcome"] == "running"


def test_stages_left_running_are_marked_with_the_runs_outcome(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "cifar10", "darts2nd", 1)
    run.write_manifest({}, "running")
    run.stage_end("search")
    run.stage_start("retrain", settings={"epochs": 1})
    stages = run.mark_running_stages("interrupted")["stages"]
    assert stages["retrain"]["status"] == "interrupted" and stages["retrain"]["end"]
    assert stages["retrain"]["settings"] == {"epochs": 1} and stages["search"]["status"] == "done"


def test_lock_is_reentrant_across_rundir_objects(tmp_path: Path) -> None:
    a = RunDir(tmp_path, "cifar10", "pdarts", 2)
    b = RunDir(tmp_path, "cifar10", "pdarts", 2)
    with a.lock():
        b.update_manifest(status="running")  # takes the same lock inside: must not deadlock
    assert (a.path / ".lock").exists()


def _hold_lock(run_path: str, ready, release) -> None:
    run = RunDir.from_path(run_path)
    with run.lock():
        ready.set()
        release.wait(hang_guard(60))


def test_a_held_lock_is_waited_for_past_any_timeout_and_the_holder_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import threading

    monkeypatch.setenv("WCBENCH_LOCK_POLL_S", "0.05")
    monkeypatch.setattr("wcbench.files._LOCK_TIMEOUT_S", 0.1)  # the old give-up time: no longer applies
    run = RunDir(tmp_path, "cifar10", "pdarts", 1)
    run.path.mkdir(parents=True)
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(run.path), ready, release))
    holder.start()
    try:
        assert ready.wait(hang_guard(60))
        got = threading.Event()

        def waiter() -> None:
            with run.lock():
                got.set()

        t = threading.Thread(target=waiter)
        t.start()
        assert not got.wait(1.0)  # 20 polls, 10 old timeouts: still waiting
        err = capfd.readouterr().err
        assert err.count("is locked by") == 1 and f"pid {holder.pid}" in err and "waiting" in err
        release.set()
        t.join(hang_guard(60))
        assert got.is_set()
    finally:
        release.set()
        holder.join(hang_guard(60))
    assert not (run.path / ".lock.holder").exists()  # the last holder cleaned up after itself


def test_the_lock_of_a_dead_holder_is_taken_over_with_a_warning(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import socket
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that ran and is gone
    run = RunDir(tmp_path, "cifar10", "pdarts", 1)
    run.path.mkdir(parents=True)
    holder = {"pid": dead.pid, "host": socket.gethostname(), "since": "2026-01-01T00:00:00+00:00"}
    (run.path / ".lock.holder").write_text(json.dumps(holder))  # left by a kill -9
    with run.lock():
        assert json.loads((run.path / ".lock.holder").read_text())["pid"] == os.getpid()
    err = capfd.readouterr().err
    assert "took over the lock" in err and f"pid {dead.pid}" in err


# ---------------------------------------------------------------- two processes, one run dir


def _hammer(runs_root: str, worker: int, n: int, go) -> None:
    run = RunDir(runs_root, "cifar10", "ours-darts2nd", 1)
    go.wait(60)  # both processes start writing at the same moment
    for i in range(n):
        atomic_write_json(
            run.score_path(f"w{worker}-s{i}"),
            {"scorer": f"w{worker}-s{i}", "metrics": {"error": float(i)}, "dataset": "cifar10", "seed": 1},
        )
        run.update_manifest(counters={f"w{worker}_{i}": i}, last_writer=worker)
        append_jsonl(run.search_dir / "history.jsonl", {"worker": worker, "i": i, "wall_time_s": 1.0})


def test_two_processes_lose_nothing(tmp_path: Path) -> None:
    n = 50
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), w, n, go)) for w in range(2)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(timeout=hang_guard(120))
        assert p.exitcode == 0
    run = RunDir(tmp_path, "cifar10", "ours-darts2nd", 1)
    files = sorted(run.scores_dir.iterdir())
    assert len(files) == 2 * n
    for f in files:
        json.loads(f.read_text())  # every file is valid JSON
    counters = run.read_manifest()["counters"]
    assert set(counters) == {f"w{w}_{i}" for w in range(2) for i in range(n)}
    history = read_jsonl(run.search_dir / "history.jsonl")
    assert sorted((r["worker"], r["i"]) for r in history) == [(w, i) for w in range(2) for i in range(n)]


# ---------------------------------------------------------------- collect_runs


def _score(run: RunDir, scorer: str, metrics: dict, dataset: str, ghash: str = "abc123") -> None:
    atomic_write_json(
        run.score_path(scorer),
        {"scorer": scorer, "metrics": metrics, "dataset": dataset, "seed": run.seed, "genotype_hash": ghash},
    )


def test_collect_runs_tidy_table(tmp_path: Path) -> None:
    a = RunDir(tmp_path, "cifar100", "ours-pdarts", 1)
    b = RunDir(tmp_path, "cifar100", "pdarts", 2)
    _score(a, "worst-case", {"worst_case_error": {"value": 25.5, "unit": "%"}, "all_error": 17.1}, "cifar100")
    _score(b, "clean", {"test_error": {"value": 2.5, "unit": "%"}}, "cifar10", ghash="def")
    df = collect_runs(tmp_path)
    assert list(df.columns) == COLLECT_COLUMNS
    assert len(df) == 3
    row = df[(df.searcher == "ours-pdarts") & (df.metric == "worst_case_error")].iloc[0]
    assert (row.dataset, row.seed, row.scorer, row.value, row.unit) == (
        "cifar100",
        1,
        "worst-case",
        25.5,
        "%",
    )
    assert row.genotype_hash == "abc123" and row.path.endswith("worst-case.json")
    bare = df[df.metric == "all_error"].iloc[0]
    assert bare.value == 17.1 and bare.unit == ""
    assert df[df.searcher == "pdarts"].iloc[0].eval_dataset == "cifar10"
    assert df["seed"].dtype == "int64" and df["value"].dtype == "float64"


def test_collect_runs_search_cost_from_history(tmp_path: Path) -> None:
    run = RunDir(tmp_path, "cifar10", "darts2nd", 4)
    run.write_manifest({}, "running")
    for _ in range(3):
        append_jsonl(run.search_dir / "history.jsonl", {"epoch": 0, "wall_time_s": 1800.0})
    df = collect_runs(tmp_path)
    cuda = bool(run.read_manifest()["cuda_version"])  # records without a device: the manifest decides
    cost = df[df.metric == ("search_gpu_hours" if cuda else "search_cpu_hours")].iloc[0]
    assert cost.value == pytest.approx(1.5)
    assert cost.scorer == "search_cost" and cost.seed == 4
    assert cost.unit == ("GPU-h" if cuda else "CPU-h")


def test_search_cost_unit_is_the_device_that_ran(tmp_path: Path) -> None:
    """A search on CPU costs CPU-hours (``search_cpu_hours``), never GPU-hours, whatever the manifest
    says about CUDA; one resumed on another device gets both."""
    run = RunDir(tmp_path, "cifar10", "darts2nd", 1)
    run.write_manifest({}, "running")
    run.update_manifest(cuda_version="12.8")  # a GPU was there, but the search ran on the CPU
    for device in ("cpu", "cpu", "cuda:0"):
        append_jsonl(run.search_dir / "history.jsonl", {"epoch": 0, "wall_time_s": 1800.0, "device": device})
    df = collect_runs(tmp_path).set_index("metric")
    assert df.loc["search_cpu_hours", "value"] == pytest.approx(1.0)
    assert df.loc["search_cpu_hours", "unit"] == "CPU-h"
    assert df.loc["search_gpu_hours", "value"] == pytest.approx(0.5)
    assert df.loc["search_gpu_hours", "unit"] == "GPU-h"


def test_collect_runs_empty_tree(tmp_path: Path) -> None:
    for root in (tmp_path, tmp_path / "does-not-exist"):
        df = collect_runs(root)
        assert df.empty and list(df.columns) == COLLECT_COLUMNS


BAD_RUN_FILES = {
    "corrupt score file": ("seed-1/scores/clean.json", "{oops"),
    "score file a list": ("seed-1/scores/clean.json", "[1, 2]"),
    "score dataset a list": (
        "seed-1/scores/clean.json",
        json.dumps({"scorer": "clean", "dataset": ["a"], "metrics": {"top1_error": 3.0}}),
    ),
    "metric not a number": ("seed-1/scores/clean.json", json.dumps({"metrics": {"top1_error": "x"}})),
    "manifest stages a list": ("seed-1/manifest.json", json.dumps({"stages": [1, 2]})),
    "manifest a list": ("seed-1/manifest.json", "[]"),
    "seed folder out of range": (f"seed-{'9' * 30}/scores/clean.json", json.dumps({"metrics": {"e": 1}})),
}


@pytest.mark.parametrize("case", list(BAD_RUN_FILES))
def test_collect_runs_skips_a_bad_file_with_one_warning_naming_it(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One corrupt file must not block every board and comparison: it is skipped, with one line."""
    good = RunDir(tmp_path, "cifar10", "darts2nd", 2)
    good.scores_dir.mkdir(parents=True)
    good.score_path("clean").write_text(json.dumps({"scorer": "clean", "metrics": {"top1_error": 3.0}}))
    rel, text = BAD_RUN_FILES[case]
    bad = tmp_path / "cifar10" / "darts2nd" / rel
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text(text)
    df = collect_runs(tmp_path)
    err = capsys.readouterr().err
    assert df["seed"].tolist() == [2] and df["value"].tolist() == [3.0]
    assert err.count("\n") == 1 and err.startswith("warning: skipped ") and "seed-" in err, err
    assert str(bad.parent if "manifest" in case else bad.parent.parent if "seed" in case else bad) in err
    with pytest.raises(CheckpointError):
        collect_runs(tmp_path, warn=None)
