"""`wcbench search` end to end at a tiny size: files, history fields, resume, refusals, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import searchers.loop as loop
from searchers.spec import resolve_search
from wcbench.checkpoints import load_checkpoint
from wcbench.cli import main
from wcbench.config import default_dataset
from wcbench.errors import ConfigError, TrainingError
from wcbench.files import read_jsonl
from wcbench.genotype import Genotype
from wcbench.space import get_space

# smaller than the quick preset: 48 + 48 examples, 2 epochs of 2 steps of 8, C = 4, 3 cells
TINY = [
    "epochs=2",
    "batch_size=8",
    "init_channels=4",
    "layers=3",
    "max_steps_per_epoch=2",
    "max_examples=48",
    "eval_batch_size=48",
]
TINY_DICT = {k: json.loads(v) for k, v in (s.split("=") for s in TINY)}

HISTORY_FIELDS = {
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "arch_loss",
    "arch",
    "strategy",
    "lr",
    "wall_time_s",
    "peak_memory_mb",
    "genotype",
}


def _search(searcher: str, out: Path, *extra: str, space: str = "darts") -> int:
    args = ["search", "--searcher", searcher, "--preset", "smoke", "--out", str(out), "--space", space]
    for s in TINY:
        args += ["--set", s]
    return main(args + list(extra) + ["--no-progress"])


@pytest.mark.parametrize(
    "searcher", ["darts1st", "spcl-darts1st", "dihcl-darts1st", "darts2nd", "spcl-darts2nd", "dihcl-darts2nd"]
)
def test_search_cli_writes_genotype_history_checkpoint(tmp_path, searcher, small_digits):
    out = tmp_path / "run"
    extra = ["--set", "strategy.warm_epochs=1"] if searcher.startswith("dihcl") else []
    assert _search(searcher, out, *extra) == 0
    genotype = Genotype.from_json((out / "genotype.json").read_text())
    get_space("darts").check_genotype(genotype)
    history = read_jsonl(out / "history.jsonl")
    assert [r["epoch"] for r in history] == [0, 1]
    for record in history:
        assert HISTORY_FIELDS <= set(record), HISTORY_FIELDS - set(record)
        assert record["wall_time_s"] > 0 and record["peak_memory_mb"] > 0
        assert len(record["arch"]["alphas_normal"]) == 14
        assert abs(sum(record["arch"]["alphas_normal"][0]) - 1) < 1e-5
        stats = record["strategy"]
        assert {"selected_count", "selected_indices", "selected_mean_loss"} <= set(stats)
    if searcher.startswith("spcl"):
        first = history[0]["strategy"]
        assert first["selected_count"] < 48 and len(first["selected_indices"]) == first["selected_count"]
    if searcher.startswith("dihcl"):
        assert history[0]["strategy"]["phase"] == "warm" and history[1]["strategy"]["phase"] == "select"
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["epoch"] == 2
    config = json.loads((out / "config.json").read_text())
    assert config["searcher"] == searcher and config["algorithm_config"]["layers"] == 3


def test_darts1st_on_the_real_32px_digits(tmp_path):
    out = tmp_path / "real"
    assert _search("darts1st", out, "--set", "epochs=1", "--set", "max_steps_per_epoch=1") == 0
    get_space("darts").check_genotype(Genotype.from_json((out / "genotype.json").read_text()))


@pytest.mark.parametrize("space", ["s1", "s2", "s3", "s4"])
def test_darts2nd_robustdarts_spaces_via_cli(tmp_path, space, small_digits):
    out = tmp_path / space
    assert _search("darts2nd", out, "--set", "epochs=1", "--set", "max_steps_per_epoch=1", space=space) == 0
    genotype = Genotype.from_json((out / "genotype.json").read_text())
    assert genotype.space == space
    get_space(space).check_genotype(genotype)


class Interrupt(Exception):
    pass


def _run(out, searcher="dihcl-darts2nd", callbacks=(), **overrides):
    values = {**TINY_DICT, "epochs": 3, **overrides}
    if searcher.startswith("dihcl"):
        values["strategy.warm_epochs"] = 1
    return loop.run_search(
        searcher, preset="smoke", seed=1, out_dir=out, overrides=values, progress=False, callbacks=callbacks
    )


def _final_state(out):
    return load_checkpoint(out / "checkpoint.pt")["algorithm"]["module"]


def test_kill_and_resume_gives_the_same_genotype(tmp_path, monkeypatch, small_digits):
    reference = _run(tmp_path / "straight")
    out = tmp_path / "resumed"

    # 1. killed between epoch 1's history line and its checkpoint (a torn epoch)
    calls = {"n": 0}
    real_save = loop.save_checkpoint

    def dying_save(path, state):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Interrupt
        real_save(path, state)

    monkeypatch.setattr(loop, "save_checkpoint", dying_save)
    with pytest.raises(Interrupt):
        _run(out)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    assert [r["epoch"] for r in read_jsonl(out / "history.jsonl")] == [0, 1]
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1

    # 2. rerun: the orphan line is dropped, epoch 1 reruns; interrupted again after its checkpoint
    def stop_after_epoch_1(epoch, record):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        _run(out, callbacks=[stop_after_epoch_1])
    assert not (out / "genotype.json").exists()
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 2
    assert [r["epoch"] for r in read_jsonl(out / "history.jsonl")] == [0, 1]

    # 3. rerun to the end: the same genotype, bit-identical weights and alphas, the same history
    assert _run(out) == reference
    a, b = _final_state(tmp_path / "straight"), _final_state(out)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    h_ref, h_res = read_jsonl(tmp_path / "straight" / "history.jsonl"), read_jsonl(out / "history.jsonl")
    assert [r["epoch"] for r in h_res] == [0, 1, 2]
    for r1, r2 in zip(h_ref, h_res):
        assert r1["val_loss"] == r2["val_loss"] and r1["strategy"] == r2["strategy"]
        assert r1["arch"] == r2["arch"]


def test_finished_search_is_not_recomputed(tmp_path, small_digits):
    out = tmp_path / "done"
    first = _run(out, searcher="darts1st", epochs=1)
    mtime = (out / "checkpoint.pt").stat().st_mtime_ns
    assert _run(out, searcher="darts1st", epochs=1) == first
    assert (out / "checkpoint.pt").stat().st_mtime_ns == mtime


def test_resume_refuses_a_different_config(tmp_path, capsys, small_digits):
    out = tmp_path / "run"
    _run(out, searcher="darts1st", epochs=1)
    with pytest.raises(ConfigError, match="lr"):
        _run(out, searcher="darts1st", epochs=1, lr=0.5)
    capsys.readouterr()  # the first search's per-epoch lines
    assert _search("darts2nd", out) == 2
    err = capsys.readouterr().err
    assert (
        "searcher='darts1st'" in err.replace('"', "'") and "new --out" in err and len(err.splitlines()) == 1
    )


def test_nan_loss_is_a_one_line_training_error(tmp_path, monkeypatch, small_digits):
    from searchers.darts import Darts1st

    monkeypatch.setattr(Darts1st, "training_loss", lambda self, logits, y: logits.sum() * float("nan"))
    with pytest.raises(TrainingError, match="non-finite"):
        _run(tmp_path / "nan", searcher="darts1st", epochs=1)


def test_a_search_that_fails_before_its_first_checkpoint_leaves_nothing_that_looks_like_a_run(
    tmp_path, monkeypatch, small_digits
):
    from searchers.darts import Darts1st

    monkeypatch.setattr(Darts1st, "training_loss", lambda self, logits, y: logits.sum() * float("nan"))
    out = tmp_path / "nan"
    with pytest.raises(TrainingError):
        _run(out, searcher="darts1st", epochs=1)
    assert not (out / "config.json").exists() and not (out / "checkpoint.pt").exists()


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["search", "--searcher", "dihcl-dart2nd", "--preset", "smoke", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'dihcl-darts2nd'" in err and len(err.strip().splitlines()) == 1
    assert _search("darts1st", tmp_path / "x", "--set", "strategy.nope=1") == 2
    assert "unknown strategy setting(s) strategy.nope" in capsys.readouterr().err
    assert _search("darts1st", tmp_path / "y", "--set", "nope=1") == 2
    assert "nope" in capsys.readouterr().err
    assert main(["search", "--searcher", "darts1st", "--preset", "fast", "--out", str(tmp_path / "z")]) == 2
    assert "unknown preset 'fast'" in capsys.readouterr().err


def test_default_dataset_is_the_papers_unless_a_cpu_preset():
    assert default_dataset("paper") == "cifar10"
    assert default_dataset("smoke") == "digits" and default_dataset("quick") == "digits"
    spec = resolve_search("spcl-darts2nd", preset="paper")
    assert spec.dataset == "cifar10" and spec.algorithm_config.batch_size == 64
    assert spec.algorithm_config.arch_lr == 3e-4 and spec.algorithm_config.hypergrad == "fd"
    spec = resolve_search("dihcl-darts1st", dataset="cifar100", preset="paper")
    assert spec.strategy_config.k_min_fraction == 0.4
