"""`worst-case` (paper Table 1): subset files (imported and built by a committee) and the scorer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluators.common import LogitsOnly, ScoreContext, build_from_record, score
from evaluators.worst_case import (
    WorstCaseSubset,
    committee_config,
    error_split,
    import_subset,
    indices_sha256,
    read_subset,
    select_worst,
    write_subset,
)
from wcbench.cli import main
from wcbench.data import DeviceLoader, get_dataset
from wcbench.errors import ConfigError, DatasetError
from wcbench.genotype import PUBLISHED


def write_model_dir(path: Path, dataset: str = "digits") -> Path:
    train = get_dataset(dataset, "train")
    record = {
        "genotype": PUBLISHED["DARTS_V2"].to_dict(),
        "config": {"network": "cifar", "init_channels": 4, "layers": 2, "auxiliary_weight": 0.0},
        "dataset": dataset,
        "num_classes": train.num_classes,
        "classes": list(train.classes),
        "mean": list(train.mean),
        "std": list(train.std),
        "image_size": 32,
        "seed": 0,
    }
    torch.manual_seed(1)
    net = build_from_record(record)
    path.mkdir(parents=True, exist_ok=True)
    (path / "retrain.json").write_text(json.dumps(record))
    torch.save(net.state_dict(), path / "model.pt")
    return path


def test_checksum_rule_is_recomputable() -> None:
    assert indices_sha256([5, 1, 3]) == hashlib.sha256(b"1,3,5").hexdigest()
    assert indices_sha256(np.array([3, 1, 5])) == indices_sha256([1, 3, 5])


def test_select_worst_takes_the_lowest_probabilities_per_class() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    p = np.array([0.9, 0.1, 0.5, 0.3, 0.3, 0.8, 0.1, 0.05])
    # class 0: p 0.1 at 1 and 6 (tie: lower index first), then 0.5; class 1: 0.05 at 7, then 0.3 at 3 and 4
    assert select_worst(p, labels, 1).tolist() == [1, 7]
    assert select_worst(p, labels, 2).tolist() == [1, 3, 6, 7]
    with pytest.raises(ConfigError, match="per_class"):
        select_worst(p, labels, 5)


def test_error_split_arithmetic() -> None:
    wrong = np.array([1, 0, 1, 1, 0, 0, 0, 0, 1, 0], dtype=float)
    worst, rest, all_ = error_split(wrong, np.array([0, 2, 3, 4]))
    assert (worst, rest, all_) == (75.0, pytest.approx(100 / 6), 40.0)


def test_subset_file_round_trip_and_tampering(tmp_path: Path) -> None:
    s = WorstCaseSubset("digits", "test", 360, np.array([7, 3, 100]), provenance="hand-picked by a test")
    path = write_subset(tmp_path / "w.json", s)
    back = read_subset(path)
    assert back.indices.tolist() == [3, 7, 100] and back.sha256 == indices_sha256([3, 7, 100])
    assert back.provenance == "hand-picked by a test" and back.num_examples_total == 360
    data = json.loads(path.read_text())
    data["indices"][0] = 4
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        read_subset(path)
    with pytest.raises(DatasetError, match="worst-case build"):
        read_subset(tmp_path / "missing.json")


def test_import_user_lists(tmp_path: Path) -> None:
    txt = tmp_path / "ids.txt"
    txt.write_text("12\n5, 7\n300\n")
    s = import_subset(txt, "digits", "picked by annotators, list from the authors", out=tmp_path / "a.json")
    assert s.indices.tolist() == [5, 7, 12, 300] and s.num_examples_total == 360
    good = tmp_path / "ids.json"
    good.write_text(json.dumps({"indices": [1, 2], "sha256": indices_sha256([1, 2])}))
    assert import_subset(good, "digits", "p", out=tmp_path / "b.json").sha256 == indices_sha256([1, 2])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"indices": [1, 2], "sha256": "0" * 64}))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        import_subset(bad, "digits", "p", out=tmp_path / "c.json")
    with pytest.raises(DatasetError, match="outside"):
        import_subset(txt, "digits", "p", out=tmp_path / "d.json", num_examples_total=100)
    with pytest.raises(ConfigError, match="provenance"):
        import_subset(txt, "digits", "  ", out=tmp_path / "e.json")


def test_scorer_errors_match_the_models_predictions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("WCBENCH_DATA", str(tmp_path / "data"))
    ids = tmp_path / "ids.txt"
    ids.write_text(" ".join(str(i) for i in range(0, 360, 9)))  # 40 images
    argv = ["data", "worst-case", "import", "--dataset", "digits", "--indices", str(ids)]
    assert main([*argv, "--provenance", "every ninth test image (a test)"]) == 0
    assert (tmp_path / "data" / "worst-case" / "digits.json").is_file()
    assert main([*argv, "--provenance", "again"]) == 2  # never silently replaced
    model_dir = write_model_dir(tmp_path / "model")
    capsys.readouterr()
    assert (
        main(["score", "--model", str(model_dir), "--scorers", "worst-case", "--json", "--no-progress"]) == 0
    )
    rec = json.loads(capsys.readouterr().out)
    # the same predictions, computed here
    ctx = ScoreContext.from_model_dir(model_dir, device="cpu")
    model = LogitsOnly(ctx.network())
    test = get_dataset("digits", "test")
    with torch.inference_mode():
        pred = torch.cat(
            [model(x).argmax(1) for x, _ in DeviceLoader(test, 64, shuffle=False, augment=False)]
        )
    wrong = (pred != test.labels).double().numpy()
    idx = np.arange(0, 360, 9)
    rest = np.setdiff1d(np.arange(360), idx)
    assert rec["metrics"]["worst_case_error"]["value"] == pytest.approx(100 * wrong[idx].mean())
    assert rec["metrics"]["average_case_error"]["value"] == pytest.approx(100 * wrong[rest].mean())
    assert rec["metrics"]["all_error"]["value"] == pytest.approx(100 * wrong.mean())
    assert (
        rec["subset_sha256"] == indices_sha256(idx) and rec["num_worst"] == 40 and rec["num_average"] == 320
    )
    assert rec["subset_provenance"].startswith("every ninth") and rec["subset_kind"] == "imported"


def test_scorer_refuses_another_datasets_subset(tmp_path: Path) -> None:
    write_subset(tmp_path / "s.json", WorstCaseSubset("cifar100", "test", 10000, np.arange(20), "x"))
    ctx = ScoreContext.from_model_dir(write_model_dir(tmp_path / "model"), device="cpu")
    with pytest.raises(ConfigError, match="cifar100"):
        score(ctx, "worst-case", {"subset": str(tmp_path / "s.json")})


def test_build_with_a_committee_on_the_train_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("WCBENCH_DATA", str(tmp_path / "data"))
    seen_splits: list[str] = []
    import wcbench.data

    real = wcbench.data.get_dataset

    def spy(name, split="train", *a, **k):
        seen_splits.append(split)
        return real(name, split, *a, **k)

    monkeypatch.setattr(wcbench.data, "get_dataset", spy)
    argv = ["data", "worst-case", "build", "--dataset", "digits", "--per-class", "5", "--committee", "quick"]
    argv += [
        "--set",
        "epochs=1",
        "--set",
        "members=2",
        "--set",
        "max_train_examples=500",
        "--device",
        "cpu",
        "--json",
    ]
    assert main(argv) == 0
    rec = json.loads(capsys.readouterr().out)
    assert seen_splits == ["train", "test"]  # trained on train, ranked on test, nothing else
    s = read_subset(tmp_path / "data" / "worst-case" / "digits.json")
    labels = real("digits", "test").labels.numpy()
    assert len(s.indices) == 50 and np.bincount(labels[s.indices]).tolist() == [5] * 10
    assert rec["sha256"] == s.sha256 == indices_sha256(s.indices)
    assert "train split only" in s.provenance and s.builder["kind"] == "committee"
    assert len(s.builder["members"]) == 2 and s.builder["committee"]["arch"] == "small"
    probs = s.builder["mean_true_class_probability"]
    assert probs["worst"] < probs["rest"]
    assert not list((tmp_path / "data" / "worst-case").glob("*.work"))  # member caches cleaned up
    assert main(argv) == 2  # an existing subset is never replaced without --overwrite
    assert committee_config("paper").arch == "resnet18" and committee_config("darts").arch == "darts_v2"
