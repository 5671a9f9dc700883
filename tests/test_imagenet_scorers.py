"""`imagenet-c` (mCE, paper Table 3) and `imagenet-a` / `imagenet-r` / `imagenet-sketch` (Tables 10-12).

Fixtures are JPEGs in the official layouts (``ImageNet-C/<corruption>/<severity>/<wnid>/*.JPEG``,
``imagenet-a/<wnid>/*.jpg``, ...). Their colour encodes what an oracle network predicts, so every
expected error is known exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from evaluators.common import ScoreContext, build_from_record, score
from evaluators.imagenet_c import ALEXNET_ERR, mce
from evaluators.imagenet_classes import (
    IMAGENET_A_INDICES,
    IMAGENET_A_WNIDS,
    IMAGENET_R_INDICES,
    IMAGENET_R_WNIDS,
)
from evaluators.imagenet_variants import subset_mask
from wcbench.corruptions import CORRUPTIONS
from wcbench.errors import ConfigError, DatasetError
from wcbench.genotype import PUBLISHED

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet_a_r_classes.json"
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)

# Hendrycks & Dietterich 2019 (hendrycks/robustness): AlexNet errors, in the order of the 15 corruptions
ALEXNET_BY_HAND = [
    0.886428,
    0.894468,
    0.922640,
    0.819880,
    0.826268,
    0.785948,
    0.798360,
    0.866816,
    0.826572,
    0.819324,
    0.564592,
    0.853204,
    0.646056,
    0.717840,
    0.606500,
]


def write_model_dir(path: Path, num_classes: int, classes: list[str] | None) -> Path:
    record = {
        "genotype": PUBLISHED["DARTS_V2"].to_dict(),
        "config": {"network": "cifar", "init_channels": 4, "layers": 2, "auxiliary_weight": 0.0},
        "dataset": "imagefolder:/nowhere/imagenet",
        "num_classes": num_classes,
        "classes": classes,
        "mean": list(MEAN),
        "std": list(STD),
        "image_size": 32,
        "seed": 0,
    }
    torch.manual_seed(0)
    net = build_from_record(record)
    path.mkdir(parents=True, exist_ok=True)
    (path / "retrain.json").write_text(json.dumps(record))
    torch.save(net.state_dict(), path / "model.pt")
    return path


def standard_classes() -> list[str]:
    """1000 class names in which the A and R wnids sit at their official indices (placeholders elsewhere)."""
    classes = [f"x{i:04d}" for i in range(1000)]
    for wnids, idx in ((IMAGENET_A_WNIDS, IMAGENET_A_INDICES), (IMAGENET_R_WNIDS, IMAGENET_R_INDICES)):
        for w, i in zip(wnids, idx, strict=True):
            classes[i] = w
    return classes


def write_jpeg(path: Path, code: int, mode: int = 0) -> None:
    """A 40x40 JPEG: red level 20 + 40 * ``code``, green level 50 + 100 * ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.zeros((40, 40, 3), dtype=np.uint8)
    img[..., 0] = 20 + 40 * code
    img[..., 1] = 50 + 100 * mode
    img[..., 2] = 128
    Image.fromarray(img).save(path, quality=95)


def decode(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    u = (x * STD[0] + MEAN[0]) * 255.0
    code = ((u[:, 0].mean(dim=(1, 2)) - 20) / 40).round().long()
    mode = ((u[:, 1].mean(dim=(1, 2)) - 50) / 100).round().long()
    return code, mode


class ClassOracle(nn.Module):
    """Top-1 = ``targets[code]``; mode 1 puts it 4th instead; mode 2 puts it out of the top 5.

    With ``decoy`` set, a higher logit sits at that index (outside the 200-class subsets), which only
    the A/R logit restriction ignores.
    """

    def __init__(self, targets: list[int], num_classes: int, decoy: int | None = None) -> None:
        super().__init__()
        self.targets, self.num_classes, self.decoy = targets, num_classes, decoy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code, mode = decode(x)
        out = torch.zeros(x.shape[0], self.num_classes)
        for i, (c, m) in enumerate(zip(code.tolist(), mode.tolist(), strict=True)):
            t = self.targets[c]
            others = [j for j in range(self.num_classes) if j != t and j != self.decoy][:4]
            if m == 0:
                out[i, t] = 10.0
            elif m == 1:
                out[i, others[:3]] = torch.tensor([13.0, 12.0, 11.0])
                out[i, t] = 10.0
            else:
                out[i, t] = -10.0
            if self.decoy is not None:
                out[i, self.decoy] = 50.0
        return out


def context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oracle: nn.Module, num_classes: int, classes
) -> ScoreContext:
    model_dir = write_model_dir(tmp_path / "model", num_classes, classes)
    monkeypatch.setattr(ScoreContext, "network", lambda self: oracle)
    return ScoreContext.from_model_dir(model_dir, data_root=str(tmp_path / "data"), device="cpu")


# --------------------------------------------------------------------------------------------------
# the official index lists


def test_packaged_lists_equal_the_shared_file() -> None:
    if not SHARED.is_file():
        pytest.skip(f"{SHARED} not present (it is not shipped with wcbench)")
    data = json.loads(SHARED.read_text())
    assert list(IMAGENET_A_INDICES) == data["imagenet_a_indices_in_1k"]
    assert list(IMAGENET_A_WNIDS) == data["imagenet_a_wnids"]
    assert list(IMAGENET_R_INDICES) == data["imagenet_r_indices_in_1k"]
    assert list(IMAGENET_R_WNIDS) == data["imagenet_r_wnids"]


def test_masks_equal_the_official_index_lists() -> None:
    for idx, wnids in ((IMAGENET_A_INDICES, IMAGENET_A_WNIDS), (IMAGENET_R_INDICES, IMAGENET_R_WNIDS)):
        assert len(idx) == len(set(idx)) == 200 and list(idx) == sorted(idx) and max(idx) < 1000
        assert list(wnids) == sorted(wnids) and len(set(wnids)) == 200
        mask = subset_mask(idx)
        assert mask.sum() == 200 and np.flatnonzero(mask).tolist() == list(idx)
        logits = torch.randn(3, 1000)
        assert torch.equal(logits[:, torch.from_numpy(mask)], logits[:, list(idx)])
    # both lists index the same 1000-class order: a wnid in both has one index, and order is preserved
    a = dict(zip(IMAGENET_A_WNIDS, IMAGENET_A_INDICES, strict=True))
    r = dict(zip(IMAGENET_R_WNIDS, IMAGENET_R_INDICES, strict=True))
    assert all(a[w] == r[w] for w in set(a) & set(r)) and len(set(a) & set(r)) > 50
    merged = sorted({**a, **r}.items())
    assert [i for _, i in merged] == sorted(i for _, i in merged)


# --------------------------------------------------------------------------------------------------
# mCE


def test_mce_equals_a_hand_computation_from_the_alexnet_constants() -> None:
    assert list(ALEXNET_ERR) == list(CORRUPTIONS) and list(ALEXNET_ERR.values()) == ALEXNET_BY_HAND
    rng = np.random.default_rng(0)
    table = {c: {s: float(rng.uniform(10, 90)) for s in range(1, 6)} for c in CORRUPTIONS}
    ces = []
    total = 0.0
    for k, c in enumerate(CORRUPTIONS):
        err_sum = sum(table[c][s] / 100 for s in range(1, 6))
        ces.append(100 * err_sum / (5 * ALEXNET_BY_HAND[k]))  # CE_c = sum_s E / sum_s E_AlexNet
        total += err_sum
    got_mce, got_mean, got_ce = mce(table)
    assert got_mce == pytest.approx(sum(ces) / 15, rel=1e-12)
    assert got_mean == pytest.approx(100 * total / 75, rel=1e-12)
    assert [got_ce[c] for c in CORRUPTIONS] == pytest.approx(ces, rel=1e-12)
    # a model as bad as AlexNet everywhere has mCE 100
    alex = {c: {s: 100 * ALEXNET_ERR[c] for s in range(1, 6)} for c in CORRUPTIONS}
    assert mce(alex)[0] == pytest.approx(100.0)


def test_imagenet_c_scorer_on_the_official_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wnids = ["n01440764", "n01443537", "n01484850"]
    root = tmp_path / "data" / "ImageNet-C"
    names = ["gaussian_noise", "fog"]
    expected: dict[str, dict[int, float]] = {}
    for ci, c in enumerate(names):
        for s in (1, 2):
            wrong = (ci + s) % 3  # of the 6 images of this folder
            k = 0
            for wi, w in enumerate(wnids):
                for j in range(2):
                    pred = wi if k >= wrong else (wi + 1) % 3
                    write_jpeg(root / c / str(s) / w / f"ILSVRC2012_val_{wi}{j}.JPEG", pred)
                    k += 1
            expected.setdefault(c, {})[s] = 100.0 * wrong / 6
    ctx = context(tmp_path, monkeypatch, ClassOracle([0, 1, 2], 3), 3, wnids)
    rec = score(
        ctx, "imagenet-c", {"corruptions": names, "severities": [1, 2], "workers": 2, "batch_size": 5}
    )
    want_mce, want_mean, want_ce = mce(expected)
    assert rec["metrics"]["mce"]["value"] == pytest.approx(want_mce)
    assert rec["metrics"]["mean_error"]["value"] == pytest.approx(want_mean)
    for c in names:
        assert rec["metrics"][f"ce_{c}"]["value"] == pytest.approx(want_ce[c])
        assert rec["table"][c] == {str(s): pytest.approx(v) for s, v in expected[c].items()}
    assert rec["num_examples"] == 24 and rec["complete"] is False


def test_imagenet_c_labels_follow_the_models_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Folders are matched by wnid, not by position: a subset of the classes scores correctly."""
    classes = ["n01440764", "n01443537", "n01484850", "n01491361"]
    root = tmp_path / "data" / "ImageNet-C"
    write_jpeg(root / "fog" / "3" / "n01484850" / "a.JPEG", 2)  # code 2 -> oracle predicts class 2
    ctx = context(tmp_path, monkeypatch, ClassOracle([0, 1, 2, 3], 4), 4, classes)
    rec = score(ctx, "imagenet-c", {"corruptions": ["fog"], "severities": [3], "workers": 0})
    assert rec["table"]["fog"]["3"] == 0.0
    ctx2 = context(tmp_path / "other", monkeypatch, ClassOracle([0, 1, 2, 3], 4), 4, None)
    with pytest.raises(DatasetError, match="no recorded class names"):
        score(
            ctx2, "imagenet-c", {"root": str(root), "corruptions": ["fog"], "severities": [3], "workers": 0}
        )
    with pytest.raises(DatasetError, match="ImageNet-C layout"):
        score(ctx, "imagenet-c", {"root": str(tmp_path / "none"), "workers": 0})


# --------------------------------------------------------------------------------------------------
# A / R / Sketch


@pytest.mark.parametrize(
    ("scorer", "folder", "wnids", "indices", "decoy"),
    [
        ("imagenet-a", "imagenet-a", IMAGENET_A_WNIDS, IMAGENET_A_INDICES, 0),
        ("imagenet-r", "imagenet-r", IMAGENET_R_WNIDS, IMAGENET_R_INDICES, 0),
    ],
)
def test_a_and_r_score_the_200_official_logits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scorer, folder, wnids, indices, decoy
) -> None:
    assert decoy not in indices
    picks = [3, 77, 150]  # positions in the 200
    root = tmp_path / "data" / folder
    for code, p in enumerate(picks):
        write_jpeg(root / wnids[p] / "0.jpg", code)
        write_jpeg(root / wnids[p] / "1.jpg", code)
    write_jpeg(root / wnids[picks[0]] / "2.jpg", 1)  # predicted as picks[1]: wrong
    # the oracle's targets are positions in the 1000 outputs; the decoy at output 0 would win unmasked
    oracle = ClassOracle([indices[p] for p in picks], 1000, decoy=decoy)
    ctx = context(tmp_path, monkeypatch, oracle, 1000, standard_classes())
    rec = score(ctx, scorer, {"workers": 0})
    assert rec["metrics"]["top1_accuracy"]["value"] == pytest.approx(100 * 6 / 7)
    assert rec["metrics"]["top1_error"]["value"] == pytest.approx(100 / 7)
    assert rec["headline"] == ("top1_accuracy" if scorer == "imagenet-a" else "top1_error")
    assert rec["classes_present"] == 3 and rec["complete"] is False and rec["num_examples"] == 7


def test_a_r_refuse_models_in_another_class_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    classes = standard_classes()
    classes[IMAGENET_A_INDICES[5]], classes[IMAGENET_A_INDICES[5] + 1] = (
        classes[IMAGENET_A_INDICES[5] + 1],
        "n0",
    )
    ctx = context(tmp_path, monkeypatch, ClassOracle([0], 1000), 1000, classes)
    with pytest.raises(ConfigError, match="standard ImageNet order"):
        score(ctx, "imagenet-a", {"workers": 0})
    ctx = context(tmp_path / "small", monkeypatch, ClassOracle([0], 10), 10, None)
    with pytest.raises(ConfigError, match="1000-way"):
        score(ctx, "imagenet-r", {"workers": 0})


def test_sketch_top1_and_top5_over_1000_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    classes = standard_classes()
    picks = [10, 500, 999]
    root = tmp_path / "data" / "imagenet-sketch" / "sketch"  # the archive's folder name
    expect = {0: (1, 1), 1: (0, 1), 2: (0, 0)}  # mode -> (top-1 hit, top-5 hit)
    for code, p in enumerate(picks):
        for mode in (0, 1, 2):
            write_jpeg(root / classes[p] / f"sketch_{mode}.JPEG", code, mode)
    write_jpeg(root / classes[picks[0]] / "extra.JPEG", 0, 0)
    ctx = context(tmp_path, monkeypatch, ClassOracle(picks, 1000), 1000, classes)
    rec = score(ctx, "imagenet-sketch", {"workers": 0, "batch_size": 4})
    n = 10
    top1 = 100 * (3 * expect[0][0] + 1) / n
    top5 = 100 * (3 * (expect[0][1] + expect[1][1]) + 1) / n
    assert rec["metrics"]["top1_accuracy"]["value"] == pytest.approx(top1)
    assert rec["metrics"]["top5_accuracy"]["value"] == pytest.approx(top5)
    assert rec["metrics"]["top1_error"]["value"] == pytest.approx(100 - top1)
    assert rec["num_examples"] == n and rec["complete"] is False
