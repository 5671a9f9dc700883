"""`wcbench retrain`: presets mirror Tables 33-36, resume is bit-identical on CPU, NaN stops cleanly."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch

from evaluators.retrain import (
    FAMILIES,
    RetrainConfig,
    StopTraining,
    family_for,
    load_retrain_config,
    lr_at,
    retrain,
)
from wcbench.checkpoints import load_checkpoint
from wcbench.cli import main
from wcbench.config import preset_file
from wcbench.errors import ConfigError, TrainingError
from wcbench.files import read_jsonl
from wcbench.genotype import PUBLISHED, load_genotype

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# a network and a data set small enough for a second per epoch on one core
TINY = {
    "init_channels": 4,
    "layers": 3,
    "batch_size": 50,
    "max_train_examples": 200,
    "max_valid_examples": 100,
    "cutout": 8,
    "drop_path_prob": 0.2,
    "auxiliary_weight": 0.4,
}


def tiny_config(**extra: object) -> RetrainConfig:
    return load_retrain_config("darts", "smoke", "digits", {**TINY, **extra})


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)


# --------------------------------------------------------------------------------------------------
# presets


PAPER = {  # (family) -> what Tables 33-36 say
    "darts": {"batch_size": 96, "epochs": 600, "init_channels": 36, "layers": 20, "drop_path_prob": 0.2},
    "pdarts": {"batch_size": 128, "epochs": 600, "init_channels": 36, "layers": 20, "drop_path_prob": 0.2},
    "pcdarts": {"batch_size": 128, "epochs": 600, "init_channels": 36, "layers": 20, "drop_path_prob": 0.2},
    "prdarts": {"batch_size": 96, "epochs": 600, "init_channels": 36, "layers": 20, "drop_path_prob": 0.2},
}


@pytest.mark.parametrize("family", ["darts", "pdarts", "pcdarts", "prdarts"])
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_paper_presets_mirror_tables_33_to_35(family: str, dataset: str) -> None:
    cfg = load_retrain_config(family, "paper", dataset)
    for key, value in PAPER[family].items():
        assert getattr(cfg, key) == value, key
    assert cfg.network == "cifar" and cfg.optimizer == "sgd" and cfg.lr_schedule == "cosine"
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.lr_min) == (0.025, 0.9, 3e-4, 0.0)
    assert (cfg.auxiliary_weight, cfg.cutout, cfg.grad_clip, cfg.label_smoothing) == (0.4, 16, 5.0, 0.0)


def test_imagenet_paper_preset_mirrors_table_36() -> None:
    cfg = load_retrain_config("imagenet", "paper", "imagefolder")
    assert cfg.network == "imagenet" and cfg.image_size == 224
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.momentum) == (250, 1024, 0.5, 3e-5, 0.9)
    assert (cfg.init_channels, cfg.layers, cfg.auxiliary_weight) == (48, 14, 0.4)
    assert (cfg.label_smoothing, cfg.drop_path_prob, cfg.grad_clip, cfg.warmup_epochs) == (0.1, 0.0, 5.0, 5)
    assert cfg.lr_schedule == "cosine"  # Table 36 (the D.2.2 text's linear decay is --set lr_schedule=linear)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_paper_value_cites_its_source(family: str) -> None:
    path = preset_file("retrain", family)
    tables = tomllib.loads(path.read_text())
    assert {"paper", "quick", "smoke"} <= set(tables)
    load_retrain_config(family, "quick", "digits")  # every CPU preset validates
    load_retrain_config(family, "smoke", "digits")
    in_paper = False
    for line in path.read_text().splitlines():
        if line.startswith("["):
            in_paper = line.strip() == "[paper]"
            continue
        if in_paper and re.match(r"^\w+\s*=", line):
            assert re.search(r"#.*(Table 3[3-6]|D\.2|DARTS|none|monitor)", line), line


def test_family_defaults() -> None:
    assert family_for("DARTS_V2", "cifar10") == "darts"
    assert family_for("PC_DARTS_cifar", "cifar10") == "pcdarts"
    assert family_for("PDARTS", "cifar100") == "pdarts"
    assert family_for("DARTS_V2", "imagenet") == "imagenet"
    assert family_for(PUBLISHED["PRDARTS"].to_darts(), "cifar10") == "darts"


def test_family_is_what_the_search_recorded_in_its_genotype(tmp_path: Path) -> None:
    search = tmp_path / "runs" / "digits" / "darts1st" / "seed-1" / "search"  # the path does not decide
    search.mkdir(parents=True)
    genotype = PUBLISHED["DARTS_V2"].to_dict()
    (search / "genotype.json").write_text(json.dumps({**genotype, "retrain_family": "prdarts"}))
    assert family_for(str(search), "digits") == family_for(search / "genotype.json", "digits") == "prdarts"
    assert family_for(search, "imagenet") == "imagenet"
    assert load_genotype(search) == PUBLISHED["DARTS_V2"]  # the recorded family is not part of the genotype
    # a genotype.json written before the family was recorded: the algorithm its search's config names
    (search / "genotype.json").write_text(json.dumps(genotype))
    (search / "config.json").write_text(json.dumps({"searcher": "spcl-pcdarts", "algorithm": "pcdarts"}))
    assert family_for(search, "cifar10") == "pcdarts" and load_genotype(search) == PUBLISHED["DARTS_V2"]
    (search / "config.json").unlink()
    assert family_for(search, "cifar10") == "darts"


def test_lr_schedules() -> None:
    cos = load_retrain_config("darts", "paper", "cifar10")
    assert lr_at(cos, 0) == pytest.approx(0.025)
    assert lr_at(cos, 300) == pytest.approx(0.0125)
    assert lr_at(cos, 599) == pytest.approx(0.025 * 0.5 * (1 + math.cos(math.pi * 599 / 600)))
    inet = load_retrain_config("imagenet", "paper", "imagefolder")
    # warm-up as train_imagenet.py: the scheduled rate times (epoch + 1) / 5 in the first 5 epochs
    for e in range(6):
        cosine = 0.5 * 0.5 * (1 + math.cos(math.pi * e / 250))
        assert lr_at(inet, e) == pytest.approx(cosine * min(e + 1, 5) / 5)
    lin = inet.model_copy(update={"lr_schedule": "linear"})
    assert lr_at(lin, 5) == pytest.approx(0.5 * (250 - 5 - 5) / 245)  # P-DARTS train_imagenet.py adjust_lr
    assert lr_at(lin, 249) > 0


def test_unknown_override_and_family_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        load_retrain_config("darts", "smoke", "digits", {"epochz": 3})
    with pytest.raises(ConfigError, match="unknown retrain family"):
        load_retrain_config("enas", "paper", "cifar10")


# --------------------------------------------------------------------------------------------------
# training, resume, NaN


def test_quick_retrain_cli_writes_the_run_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rt"
    argv = [
        "retrain",
        "--genotype",
        "DARTS_V2",
        "--dataset",
        "digits",
        "--preset",
        "smoke",
        "--out",
        str(out),
        "--no-progress",
        "--set",
        "epochs=1",
    ] + [f"--set={k}={v}" for k, v in TINY.items()]
    assert main(argv) == 0
    assert "retrained 1 epochs" in capsys.readouterr().out
    assert {"checkpoint.pt", "model.pt", "history.jsonl", "retrain.json"} <= {p.name for p in out.iterdir()}
    record = json.loads((out / "retrain.json").read_text())
    assert record["genotype_hash"] == PUBLISHED["DARTS_V2"].hash() and record["dataset"] == "digits"
    assert record["preset"]["family"] == "darts" and record["config"]["init_channels"] == 4
    (line,) = read_jsonl(out / "history.jsonl")
    for key in (
        "epoch",
        "lr",
        "train_loss",
        "train_acc",
        "valid_loss",
        "valid_acc",
        "wall_time_s",
        "peak_memory_mb",
    ):
        assert key in line
    model = load_checkpoint(out / "model.pt")
    assert all(isinstance(v, torch.Tensor) for v in model.values()) and "classifier.weight" in model
    # rerunning a finished retrain does nothing
    assert main(argv) == 0
    assert len(read_jsonl(out / "history.jsonl")) == 1


def test_killed_run_resumes_to_identical_weights(tmp_path: Path) -> None:
    g = PUBLISHED["DARTS_V2"]
    cfg = tiny_config(epochs=3)
    full = retrain(g, "digits", tmp_path / "full", cfg, seed=3, progress=False)
    assert full.finished and full.epochs_done == 3

    def kill_after_first(epoch: int, record: dict) -> None:
        if epoch == 0:
            raise StopTraining

    part = retrain(g, "digits", tmp_path / "part", cfg, seed=3, progress=False, on_epoch_end=kill_after_first)
    assert not part.finished and not (tmp_path / "part" / "model.pt").exists()
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["epoch"] == 1
    resumed = retrain(g, "digits", tmp_path / "part", cfg, seed=3, progress=False)
    assert resumed.finished and resumed.resumed_from == 1
    a, b = weights(tmp_path / "full" / "model.pt"), weights(tmp_path / "part" / "model.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    hist_full = read_jsonl(tmp_path / "full" / "history.jsonl")
    hist_part = read_jsonl(tmp_path / "part" / "history.jsonl")
    assert [r["epoch"] for r in hist_part] == [0, 1, 2]
    assert [r["train_loss"] for r in hist_part] == [r["train_loss"] for r in hist_full]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    g = PUBLISHED["DARTS_V2"]
    out = tmp_path / "rt"
    retrain(g, "digits", out, tiny_config(epochs=1), seed=0, progress=False)
    before = (out / "checkpoint.pt").read_bytes()
    with pytest.raises(TrainingError) as info:
        retrain(g, "digits", out, tiny_config(epochs=3, lr=1e30, grad_clip=0.0), seed=0, progress=False)
    msg = str(info.value)
    assert "epoch 2" in msg and "checkpoint" in msg and "--set lr=" in msg and "\n" not in msg
    assert (out / "checkpoint.pt").read_bytes() == before
    assert len(read_jsonl(out / "history.jsonl")) == 1
    record = json.loads((out / "retrain.json").read_text())  # the settings of epoch 1 are kept
    assert record["earlier_configs"] == [
        {"config": {**record["config"], "lr": 0.05, "epochs": 1, "grad_clip": 5.0}, "until_epoch": 1}
    ]


def test_resume_into_a_directory_of_another_genotype_is_refused(tmp_path: Path) -> None:
    cfg = tiny_config(epochs=1)
    retrain(PUBLISHED["DARTS_V2"], "digits", tmp_path, cfg, progress=False)
    with pytest.raises(ConfigError, match="differs"):
        retrain(PUBLISHED["PDARTS"], "digits", tmp_path, cfg, progress=False)


def test_missing_dataset_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["retrain", "--genotype", "DARTS_V2", "--dataset", "cifar10", "--out", str(tmp_path / "x")]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "cifar" in err


def test_imagenet_code_path_streams_an_image_folder(tiny_imagefolder, tmp_path: Path) -> None:
    """Table 36's code path at toy scale: NetworkImageNet, label smoothing, warm-up, a streamed folder."""
    from evaluators.common import ScoreContext, score

    dataset = f"imagefolder:{tiny_imagefolder.root}"
    cfg = load_retrain_config(
        "imagenet", "smoke", "imagefolder",
        {"epochs": 2, "init_channels": 4, "layers": 3, "batch_size": 4, "stream": True, "workers": 0},
    )  # fmt: skip
    assert cfg.network == "imagenet" and cfg.label_smoothing == 0.1 and cfg.warmup_epochs == 1
    out = tmp_path / "inet"
    result = retrain(PUBLISHED["PC_DARTS_image"], dataset, out, cfg, progress=False)
    assert result.finished and [r["valid_split"] for r in result.history] == ["test", "test"]
    record = json.loads((out / "retrain.json").read_text())
    assert record["config"]["stream"] is True and record["num_classes"] == 3 and record["image_size"] == 32
    assert [r["lr"] for r in result.history][0] == pytest.approx(0.1 * 1.0)  # warm-up epoch 1 of 1
    ctx = ScoreContext.from_model_dir(out, progress=False)
    clean = score(ctx, "clean", {})
    assert clean["num_examples"] == 6 and clean["metrics"]["top5_error"]["value"] == 0.0  # 3 classes
    pytest.importorskip("torchattacks")
    rec = score(ctx, "attacks", {"attacks": ["fgsm"], "num_examples": 4})  # un-normalised streamed images
    assert (
        rec["params"]["attack_set_used"] == "imagenet" and rec["checks"]["fgsm"]["linf_max"] <= 8 / 255 + 1e-6
    )
