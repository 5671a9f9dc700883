"""Scorers: clean, cost, stl10, autoattack; `wcbench score` and `wcbench evaluate`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from evaluators.common import ScoreContext, dataset_key, score
from evaluators.retrain import load_retrain_config, retrain
from wcbench.cli import main
from wcbench.cli.genotype import network_summary
from wcbench.config import split_settings
from wcbench.errors import ConfigError
from wcbench.genotype import PUBLISHED
from wcbench.registry import SCORERS

TINY = {  # about 96% test accuracy on digits in ~20 s of one core (shared with test_attacks.py)
    "epochs": 4,
    "init_channels": 8,
    "layers": 4,
    "batch_size": 32,
    "lr": 0.05,
    "max_train_examples": 600,
    "valid_split": "none",
    "augment": False,
    "cutout": 0,
    "drop_path_prob": 0.0,
}
FIELDS = {
    "scorer", "scorer_version", "params", "metrics", "dataset", "split", "num_examples", "seed",
    "genotype_hash", "duration_s", "wcbench_version",
}  # fmt: skip


def tiny_trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny undefended network trained on the embedded digits, trained once per test session."""
    out = tmp_path_factory.getbasetemp() / "tiny-digits-model"
    if not (out / "model.pt").exists():
        cfg = load_retrain_config("darts", "smoke", "digits", TINY)
        retrain(PUBLISHED["DARTS_V2"], "digits", out, cfg, seed=1, progress=False)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_trained_model(tmp_path_factory)


@pytest.fixture
def run_layout(trained: Path, tmp_path: Path) -> Path:
    """The tiny model inside a search run directory, with a search history (2 epochs, 1.5 h)."""
    run = tmp_path / "runs" / "digits" / "darts1st" / "seed-0"
    shutil.copytree(trained, run / "retrain" / "digits", ignore=shutil.ignore_patterns("scores", "transfer"))
    (run / "search").mkdir(parents=True)
    lines = [{"epoch": 0, "wall_time_s": 3600.0}, {"epoch": 1, "wall_time_s": 1800.0}]
    (run / "search" / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (run / "manifest.json").write_text(json.dumps({"cuda_version": None}))
    return run


def test_scorers_are_registered() -> None:
    assert {"clean", "cost", "attacks", "autoattack", "stl10"} <= set(SCORERS.names())


def test_clean_score_file(trained: Path, tmp_path: Path) -> None:
    ctx = ScoreContext.from_model_dir(trained, scores_dir=tmp_path, progress=False)
    rec = score(ctx, "clean", {"max_examples": 200})
    saved = json.loads((tmp_path / "clean.json").read_text())
    assert FIELDS <= set(saved) and saved["scorer"] == "clean"
    assert saved["dataset"] == "digits" and saved["split"] == "test" and saved["num_examples"] == 200
    assert saved["genotype_hash"] == PUBLISHED["DARTS_V2"].hash() and saved["seed"] == 1
    m = rec["metrics"]
    assert {k: v["unit"] for k, v in m.items()} == {
        "top1_error": "%",
        "top5_error": "%",
        "top1_acc": "%",
        "top5_acc": "%",
    }
    assert m["top1_error"]["value"] + m["top1_acc"]["value"] == pytest.approx(100.0)
    assert 0 <= m["top5_error"]["value"] <= m["top1_error"]["value"] < 30  # a trained network
    assert saved["params"] == {"split": "test", "batch_size": 256, "max_examples": 200}


def test_cost_of_darts_v2_equals_genotype_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["score", "--genotype", "DARTS_V2", "--dataset", "cifar10", "--scorers", "cost", "--json",
            "--scores-dir", str(tmp_path), "--set", "latency_batch_sizes=[1]", "--set", "latency_repeats=1",
            "--set", "latency_warmup=0", "--set", "measure_memory=false"]  # fmt: skip
    assert main(argv) == 0
    rec = json.loads(capsys.readouterr().out)
    show = network_summary(PUBLISHED["DARTS_V2"], "cifar10")
    m = rec["metrics"]
    assert m["params"]["value"] == show["params"] == 3_349_342
    assert m["params_with_aux"]["value"] == show["params_with_aux"]
    assert m["macs"]["value"] == show["macs"] and m["macs"]["unit"] == "MACs"
    assert m["latency_bs1_ms"]["unit"] == "ms" and m["latency_bs1_ms"]["value"] > 0
    assert "search_gpu_hours" not in m and rec["macs_counter"] == show["macs_counter"]
    assert (tmp_path / "cost.json").is_file()


def test_cost_of_a_run_reports_memory_and_search_hours(run_layout: Path) -> None:
    ctx = ScoreContext.from_model_dir(run_layout / "retrain" / "digits", progress=False)
    assert ctx.run_dir == run_layout.resolve() and ctx.scores_dir == run_layout / "scores"
    rec = score(ctx, "cost", {"latency_batch_sizes": [1, 4], "latency_repeats": 2, "memory_batch_size": 8})
    m = rec["metrics"]
    assert m["search_cpu_hours"] == {"value": 1.5, "unit": "CPU-h"}  # no CUDA in the manifest
    assert "search_gpu_hours" not in m
    assert m["peak_train_memory_mb"]["unit"] == "MB" and m["peak_train_memory_mb"]["value"] > 0
    assert "RSS" in rec["memory_measure"]
    assert {"latency_bs1_ms", "latency_bs4_ms", "params", "params_with_aux", "macs"} <= set(m)
    assert m["params_with_aux"]["value"] > m["params"]["value"]  # the tiny net has its auxiliary head
    assert (run_layout / "scores" / "cost.json").is_file()


def test_stl10_transfer_retrains_at_96px_and_scores_the_test_split(trained: Path, tiny_stl10) -> None:
    ctx = ScoreContext.from_model_dir(trained, data_root=str(tiny_stl10.root), progress=False)
    overrides = {"epochs": 1, "init_channels": 4, "layers": 3, "batch_size": 6, "valid_split": "none"}
    rec = score(ctx, "stl10", {"preset": "smoke", "overrides": overrides})
    assert rec["dataset"] == "stl10" and rec["split"] == "test" and rec["num_examples"] == 8
    assert rec["image_size"] == 96 and rec["retrain_epochs"] == 1
    m = rec["metrics"]
    assert 0 <= m["stl10_acc"]["value"] <= 100 and m["stl10_acc"]["unit"] == "%"
    assert m["stl10_acc"]["value"] + m["stl10_top1_error"]["value"] == pytest.approx(100.0)
    assert (Path(rec["retrain_dir"]) / "model.pt").is_file()
    assert Path(rec["retrain_dir"]) == trained / "transfer" / "stl10"


def test_autoattack_is_labelled_as_what_it_runs() -> None:
    from evaluators.autoattack import AutoAttackParams, label

    p = AutoAttackParams()
    assert (p.version, p.norm, p.eps) == ("standard", "Linf", 8 / 255)
    text = label(p.version, p.norm, p.eps)
    assert text.startswith("AutoAttack standard (APGD-CE, APGD-T, FAB-T, SQUARE), Linf eps 8/255")
    assert "pyautoattack" in text and "torchattacks" not in text


def test_autoattack_standard_runs_at_tiny_scale(trained: Path, tmp_path: Path) -> None:
    if not os.environ.get("WCBENCH_REQUIRE_EXTRAS"):  # CI installs the extras and sets this: missing fails
        pytest.importorskip("pyautoattack", reason="optional extra: pip install wcbench[autoattack]")
    ctx = ScoreContext.from_model_dir(trained, scores_dir=tmp_path, progress=False)
    rec = score(ctx, "autoattack", {"num_examples": 6})
    m = rec["metrics"]
    assert m["autoattack_acc"]["value"] <= m["clean_acc"]["value"]
    assert (
        rec["params"]["label"].startswith("AutoAttack standard")
        and rec["checks"]["linf_max"] <= 8 / 255 + 1e-6
    )
    assert rec["params"]["library"].startswith("pyautoattack")


def test_score_overrides_are_routed_per_scorer() -> None:
    out = split_settings(
        {"attacks.num_examples": 5, "attacks.batch_size": 64, "clean.batch_size": 64},
        "score",
        ["clean", "attacks"],
    )
    assert out == {"clean": {"batch_size": 64}, "attacks": {"num_examples": 5, "batch_size": 64}}
    assert split_settings({"batch_size": 8}, "score", ["clean"]) == {"clean": {"batch_size": 8}}
    with pytest.raises(ConfigError):
        split_settings({"nonsense": 1}, "score", ["clean"])
    with pytest.raises(ConfigError):
        split_settings({"cost.x": 1}, "score", ["clean"])
    assert dataset_key("imagefolder:/tmp/c10/cifar10-jpeg/") == "imagefolder-cifar10-jpeg"
    assert dataset_key("digits") == "digits"


def test_score_cli_errors_are_one_line(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        ["score", "--model", str(trained), "--scorers", "clena"],
        ["score", "--genotype", "DARTS_V2", "--dataset", "cifar10", "--scorers", "clean"],
        ["score", "--model", str(trained.parent / "nothing-here"), "--scorers", "clean"],
    ]
    for argv in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err
    assert main(cases[0]) == 2 and "did you mean 'clean'" in capsys.readouterr().err


def test_evaluate_retrains_then_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = {**TINY, "epochs": 1, "max_train_examples": 100, "layers": 3, "init_channels": 4}
    argv = ["evaluate", "--genotype", "DARTS_V2", "--dataset", "digits", "--preset", "smoke", "--scorers",
            "clean,cost", "--out", str(tmp_path), "--no-progress", "--json",
            "--set", "cost.latency_batch_sizes=[1]", "--set", "cost.measure_memory=false",
            "--set", "clean.max_examples=50",
            *[f"--set=retrain.{k}={v}" for k, v in tiny.items()]]  # fmt: skip
    assert main(argv) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["scorer"] for r in records] == ["clean", "cost"]
    assert records[0]["num_examples"] == 50
    assert (tmp_path / "retrain" / "digits" / "model.pt").is_file()
    assert {p.name for p in (tmp_path / "scores").iterdir()} == {"clean.json", "cost.json"}
    # `wcbench score --model` on the same directory writes to the same scores/
    assert main(["score", "--model", str(tmp_path / "retrain" / "digits"), "--scorers", "clean"]) == 0
    assert "top1_error" in capsys.readouterr().out
