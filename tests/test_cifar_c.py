"""`cifar-c` (paper Table 2) on fixtures in the official CIFAR-10-C layout, and the digits end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evaluators.common import ScoreContext, build_from_record, score
from wcbench.cli import main
from wcbench.corruptions import CORRUPTIONS, EXTRA_CORRUPTIONS
from wcbench.errors import ConfigError, DatasetError
from wcbench.genotype import PUBLISHED


def write_model_dir(
    path: Path,
    dataset: str,
    num_classes: int,
    classes: list[str] | None = None,
    mean: tuple[float, ...] = (0.5, 0.5, 0.5),
    std: tuple[float, ...] = (0.25, 0.25, 0.25),
    image_size: int = 32,
) -> Path:
    """A retrain directory (retrain.json + model.pt) of a tiny DARTS_V2 network with seeded random weights."""
    record = {
        "genotype": PUBLISHED["DARTS_V2"].to_dict(),
        "config": {"network": "cifar", "init_channels": 4, "layers": 2, "auxiliary_weight": 0.0},
        "dataset": dataset,
        "num_classes": num_classes,
        "classes": classes,
        "mean": list(mean),
        "std": list(std),
        "image_size": image_size,
        "seed": 0,
    }
    torch.manual_seed(0)
    net = build_from_record(record)
    path.mkdir(parents=True, exist_ok=True)
    (path / "retrain.json").write_text(json.dumps(record))
    torch.save(net.state_dict(), path / "model.pt")
    return path


class PixelOracle(nn.Module):
    """Predicts the class written in pixel (0, 0) red as 10 * k + 5 (undoing the model's normalisation)."""

    def __init__(self, mean: float, std: float, num_classes: int) -> None:
        super().__init__()
        self.mean, self.std, self.num_classes = mean, std, num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = (x[:, 0, 0, 0] * self.std + self.mean) * 255.0
        k = torch.div(u.round().long(), 10, rounding_mode="floor").clamp(0, self.num_classes - 1)
        return nn.functional.one_hot(k, self.num_classes).float() * 10


def wrong_count(c: int, s: int) -> int:
    return (c + s) % 5  # 0..4 of the 4 images of each severity


def write_c_fixture(
    root: Path, names: list[str], n: int = 4, num_classes: int = 10
) -> dict[str, dict[int, float]]:
    """Official layout: <name>.npy uint8 (5n, 32, 32, 3), labels.npy = labels x 5; returns the errors."""
    root.mkdir(parents=True, exist_ok=True)
    labels = np.arange(n) % num_classes
    expected: dict[str, dict[int, float]] = {}
    rng = np.random.default_rng(0)
    for ci, name in enumerate(names):
        arr = rng.integers(0, 256, size=(5 * n, 32, 32, 3), dtype=np.uint8)
        expected[name] = {}
        for s in range(1, 6):
            w = wrong_count(ci, s)
            for i in range(n):
                pred = labels[i] if i >= w else (labels[i] + 1) % num_classes
                arr[(s - 1) * n + i, 0, 0, 0] = 10 * pred + 5
            expected[name][s] = 100.0 * w / n
        np.save(root / f"{name}.npy", arr)
    np.save(root / "labels.npy", np.tile(labels, 5).astype(np.uint8))
    return expected


@pytest.fixture
def oracle_ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ScoreContext:
    model_dir = write_model_dir(tmp_path / "model", "cifar10", 10)
    oracle = PixelOracle(0.5, 0.25, 10)
    monkeypatch.setattr(ScoreContext, "network", lambda self: oracle)
    return ScoreContext.from_model_dir(model_dir, data_root=str(tmp_path / "data"), device="cpu")


def test_table_and_mean_equal_the_known_errors(tmp_path: Path, oracle_ctx: ScoreContext) -> None:
    names = list(CORRUPTIONS) + list(EXTRA_CORRUPTIONS)
    expected = write_c_fixture(tmp_path / "data" / "CIFAR-10-C", names)  # the default root of cifar10
    rec = score(oracle_ctx, "cifar-c", {"extra": True, "batch_size": 3})
    saved = json.loads((oracle_ctx.scores_dir / "cifar-c.json").read_text())
    assert saved["metrics"] == rec["metrics"] and saved["scorer"] == "cifar-c"
    for c in names:
        assert rec["table"][c] == {str(s): v for s, v in expected[c].items()}
        assert rec["metrics"][f"error_{c}"]["value"] == pytest.approx(np.mean(list(expected[c].values())))
    mean15 = np.mean([v for c in CORRUPTIONS for v in expected[c].values()])
    assert rec["metrics"]["mean_corruption_error"] == {"value": pytest.approx(mean15), "unit": "%"}
    mean4 = np.mean([v for c in EXTRA_CORRUPTIONS for v in expected[c].values()])
    assert rec["metrics"]["mean_extra_corruption_error"]["value"] == pytest.approx(mean4)
    assert rec["num_examples"] == 19 * 5 * 4
    assert rec["params"]["root"].endswith("CIFAR-10-C") and rec["genotype_hash"]


def test_without_extra_only_the_15_and_subsets(tmp_path: Path, oracle_ctx: ScoreContext) -> None:
    root = tmp_path / "elsewhere"
    expected = write_c_fixture(root, ["fog", "snow"], n=4)
    rec = score(
        oracle_ctx, "cifar-c", {"root": str(root), "corruptions": ["fog", "snow"], "severities": [2, 5]}
    )
    assert set(rec["table"]) == {"fog", "snow"} and "mean_extra_corruption_error" not in rec["metrics"]
    want = np.mean([expected[c][s] for c in ("fog", "snow") for s in (2, 5)])
    assert rec["metrics"]["mean_corruption_error"]["value"] == pytest.approx(want)
    rec = score(oracle_ctx, "cifar-c", {"root": str(root), "corruptions": ["fog"], "max_examples": 2})
    assert rec["params"]["examples_per_severity"] == 2 and rec["num_examples"] == 10


def test_missing_and_wrong_data_are_one_line_errors(tmp_path: Path, oracle_ctx: ScoreContext) -> None:
    with pytest.raises(
        DatasetError, match=r"CIFAR-10-C.*expected the CIFAR-10-C layout.*wcbench data corrupt"
    ):
        score(oracle_ctx, "cifar-c", {})
    root = tmp_path / "c"
    write_c_fixture(root, ["fog"], num_classes=10)
    np.save(root / "labels.npy", np.full(20, 50, np.uint8))
    with pytest.raises(DatasetError, match="labels outside"):
        score(oracle_ctx, "cifar-c", {"root": str(root), "corruptions": ["fog"]})
    with pytest.raises(ConfigError, match="non-empty"):
        score(oracle_ctx, "cifar-c", {"root": str(root), "corruptions": ["rain"]})


def test_digits_corrupt_then_score_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`wcbench data corrupt --dataset digits`, then `wcbench score --scorers cifar-c` on default paths."""
    monkeypatch.setenv("WCBENCH_DATA", str(tmp_path / "data"))
    from wcbench.data import get_dataset

    train = get_dataset("digits", "train")
    model_dir = write_model_dir(
        tmp_path / "model", "digits", 10, classes=list(train.classes), mean=train.mean, std=train.std
    )
    names = "gaussian_noise,motion_blur,frost,speckle_noise,gaussian_blur,spatter,saturate"
    assert main(["data", "corrupt", "--dataset", "digits", "--corruptions", names, "--seed", "3"]) == 0
    root = tmp_path / "data" / "digits-C"
    assert sorted(p.name for p in root.glob("*.npy")) == sorted(
        [f"{n}.npy" for n in names.split(",")] + ["labels.npy"]
    )
    assert np.load(root / "frost.npy").shape == (5 * 360, 32, 32, 3)
    capsys.readouterr()
    argv = ["score", "--model", str(model_dir), "--scorers", "cifar-c", "--json", "--no-progress"]
    argv += ["--set", 'corruptions=["gaussian_noise","motion_blur","frost"]', "--set", "extra=true"]
    argv += ["--set", "max_examples=60"]
    assert main(argv) == 0
    rec = json.loads(capsys.readouterr().out)
    assert (
        rec["dataset"] == "digits-C"
        and rec["c_source"]["seed"] == 3
        and rec["c_source"]["dataset"] == "digits"
    )
    assert set(rec["table"]) == set(names.split(","))
    assert 0 <= rec["metrics"]["mean_corruption_error"]["value"] <= 100
    assert (model_dir / "scores" / "cifar-c.json").is_file()
