"""`worst-case`: error on a worst-case test subset, on the average-case rest, and on all (paper Table 1).

The paper's 2,000 human-picked CIFAR-100 test images (20 per class) were never published. wcbench
scores on a *subset file* that every method shares, from one of two sources:

- a user-supplied list of test indices with its provenance (``wcbench data worst-case import``);
- one wcbench builds (``wcbench data worst-case build --dataset cifar100``): a committee of reference
  models is trained on the **train split only**; every test image gets the mean, over the committee,
  of the softmax probability of its true class; the ``per_class`` images of each class with the lowest
  mean (ties: lower index first) form the worst-case subset.

The subset file (JSON, default ``<data root>/worst-case/<dataset>.json``) holds the sorted indices,
the dataset, split and size it indexes, a provenance string and ``sha256`` = SHA-256 of the sorted
indices written as decimal numbers joined by commas (``",".join(map(str, sorted(indices)))``), which
anyone can recompute. The scorer verifies it and records it, so two scores on the same subset say so.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

import wcbench
from evaluators.common import ScoreContext, Scorer, ScoreResult, dataset_key, metric, resolve_device
from evaluators.robust_common import autocast, eval_model
from wcbench.config import resolve_config
from wcbench.data import resolve_data_root
from wcbench.errors import ConfigError, DatasetError, TrainingError
from wcbench.files import atomic_write_json, atomic_writer, read_json
from wcbench.metrics import MetricSpec
from wcbench.registry import SCORERS
from wcbench.smallcnn import SmallCNN

SUBSET_FORMAT = "wcbench-worst-case-subset/1"


# --------------------------------------------------------------------------------------------------
# subset files


def indices_sha256(indices: Sequence[int] | np.ndarray) -> str:
    """SHA-256 of the sorted indices as ``"i1,i2,..."`` (ASCII decimal): the subset's identity."""
    text = ",".join(str(int(i)) for i in sorted(int(i) for i in indices))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass
class WorstCaseSubset:
    """A worst-case subset of ``split`` of ``dataset`` (``num_examples_total`` images), with provenance."""

    dataset: str
    split: str
    num_examples_total: int
    indices: np.ndarray
    provenance: str
    per_class: int | None = None
    builder: dict[str, Any] | None = None
    path: Path | None = None
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return indices_sha256(self.indices)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SUBSET_FORMAT,
            "dataset": self.dataset,
            "split": self.split,
            "num_examples_total": int(self.num_examples_total),
            "num_worst": int(len(self.indices)),
            "per_class": self.per_class,
            "sha256": self.sha256,
            "checksum_rule": 'sha256(",".join(str(i) for i in sorted(indices)))',
            "provenance": self.provenance,
            "builder": self.builder,
            "created": self.created or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "wcbench_version": wcbench.__version__,
            **self.extra,
            "indices": [int(i) for i in self.indices],
        }


def default_subset_path(dataset: str, data_root: str | Path | None = None) -> Path:
    """``<data root>/worst-case/<dataset>.json``: where the shared subset of ``dataset`` is kept."""
    return resolve_data_root(data_root) / "worst-case" / f"{dataset_key(dataset)}.json"


def _check_indices(indices: np.ndarray, total: int | None, where: str) -> np.ndarray:
    if indices.ndim != 1 or indices.size == 0:
        raise DatasetError(f"{where}: no indices")
    if len(np.unique(indices)) != len(indices):
        raise DatasetError(f"{where}: repeated indices")
    if indices.min() < 0 or (total is not None and indices.max() >= total):
        raise DatasetError(f"{where}: indices outside 0..{(total or 0) - 1}")
    return np.sort(indices)


def write_subset(path: str | Path, subset: WorstCaseSubset) -> Path:
    """Write ``subset`` atomically as JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, subset.to_json())
    subset.path = path
    return path


def read_subset(path: str | Path) -> WorstCaseSubset:
    """Read and verify a subset file (format, indices, checksum); problems are one-line DatasetErrors."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            f"no worst-case subset at {path}; build one with `wcbench data worst-case build --dataset D` "
            f"or import a list with `wcbench data worst-case import --dataset D --indices F --provenance T`"
        )
    try:
        data = read_json(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file
        raise DatasetError(f"{path} is not a readable subset file ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != SUBSET_FORMAT or "indices" not in data:
        raise DatasetError(f"{path} is not a wcbench worst-case subset file (format {SUBSET_FORMAT!r})")
    total = int(data["num_examples_total"])
    indices = _check_indices(np.asarray(data["indices"], dtype=np.int64), total, str(path))
    digest = indices_sha256(indices)
    if data.get("sha256") != digest:
        raise DatasetError(
            f"{path}: checksum mismatch (file says {data.get('sha256')}, indices give {digest})"
        )
    known = {
        "format",
        "dataset",
        "split",
        "num_examples_total",
        "num_worst",
        "per_class",
        "sha256",
        "checksum_rule",
        "provenance",
        "builder",
        "created",
        "wcbench_version",
        "indices",
    }
    return WorstCaseSubset(
        dataset=str(data["dataset"]),
        split=str(data.get("split", "test")),
        num_examples_total=total,
        indices=indices,
        provenance=str(data.get("provenance", "")),
        per_class=data.get("per_class"),
        builder=data.get("builder"),
        path=path,
        created=str(data.get("created", "")),
        extra={k: v for k, v in data.items() if k not in known},
    )


def parse_index_file(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Indices from a JSON list, a JSON object with ``indices`` (other keys returned), or text (ints).

    Binary files (a pickle, an image), integers outside int64, nesting too deep for the JSON reader and
    other malformed content are one-line errors naming the file; nothing is unpickled.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"index file {path} not found")
    hint = "give a JSON list of integers, or integers separated by spaces, commas or newlines"
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is a binary file, not an index list; {hint}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read index file {path} ({exc.strerror or exc})") from None
    if "\x00" in text:
        raise DatasetError(f"{path} is a binary file, not an index list; {hint}")
    meta: dict[str, Any] = {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        tokens = [t for t in re.split(r"[\s,;]+", text.strip()) if t]
        try:
            values = [int(t) for t in tokens if len(t) <= 19]
            if len(values) != len(tokens):
                raise ValueError("a number too long to be an index")
        except ValueError as exc:
            raise DatasetError(
                f"{path}: expected integers separated by spaces, commas or newlines ({exc})"
            ) from exc
        data = values
    except (RecursionError, ValueError) as exc:  # nesting too deep, or an integer over Python's digit limit
        raise DatasetError(f"{path}: cannot read it as JSON ({str(exc).split(';')[0]}); {hint}") from None
    if isinstance(data, dict):
        meta = {k: v for k, v in data.items() if k != "indices"}
        data = data.get("indices")
    if not isinstance(data, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in data):
        raise DatasetError(f"{path}: expected a JSON list of integers (or an object with 'indices')")
    if any(not -(2**63) <= v < 2**63 for v in data):
        raise DatasetError(f"{path}: an index is too large to be an example's index")
    return np.asarray(data, dtype=np.int64), meta


def import_subset(
    indices_file: str | Path,
    dataset: str,
    provenance: str,
    *,
    split: str = "test",
    num_examples_total: int | None = None,
    sha256: str | None = None,
    out: str | Path | None = None,
    data_root: str | Path | None = None,
) -> WorstCaseSubset:
    """Store a user-supplied index list as the subset of ``dataset`` (checksum verified if given)."""
    if not provenance.strip():
        raise ConfigError(
            "a subset needs a provenance: who picked these images, how, and where the list came from"
        )
    indices, meta = parse_index_file(indices_file)
    expected = sha256 or meta.get("sha256")
    if num_examples_total is None:
        from wcbench.data import get_dataset

        num_examples_total = len(get_dataset(dataset, split, data_root))
    indices = _check_indices(indices, num_examples_total, str(indices_file))
    digest = indices_sha256(indices)
    if expected and expected != digest:
        raise DatasetError(f"{indices_file}: checksum mismatch (given {expected}, indices give {digest})")
    subset = WorstCaseSubset(
        dataset=dataset,
        split=split,
        num_examples_total=int(num_examples_total),
        indices=indices,
        provenance=provenance.strip(),
        builder={"kind": "imported", "source_file": str(indices_file)},
    )
    write_subset(out or default_subset_path(dataset, data_root), subset)
    return subset


def select_worst(p_true: np.ndarray, labels: np.ndarray, per_class: int) -> np.ndarray:
    """The ``per_class`` indices of each class with the lowest ``p_true`` (ties: lower index), sorted."""
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ConfigError(
                f"class {int(c)} has only {len(members)} test images, fewer than per_class={per_class}; use "
                f"a smaller --per-class"
            )
        order = np.lexsort((members, p_true[members]))  # by probability, then index
        chosen.append(members[order[:per_class]])
    return np.sort(np.concatenate(chosen))


# --------------------------------------------------------------------------------------------------
# the reference committee


class CommitteeConfig(BaseModel):
    """How the reference committee is trained (train split only); presets in :data:`COMMITTEE_PRESETS`."""

    model_config = ConfigDict(extra="forbid")

    members: int = Field(3, ge=1)
    arch: Literal["small", "resnet18", "darts_v2"] = "resnet18"
    epochs: int = Field(ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(5e-4, ge=0)
    cutout: int = Field(0, ge=0)
    augment: bool = True
    init_channels: int = Field(16, ge=1, description="darts_v2 only")
    layers: int = Field(8, ge=1, description="darts_v2 only")
    max_train_examples: int | None = Field(None, ge=1)


COMMITTEE_PRESETS: dict[str, dict[str, Any]] = {
    # Minutes on a CPU (digits, tests): not a paper setting.
    "quick": {"members": 3, "arch": "small", "epochs": 4, "batch_size": 64, "lr": 0.05, "weight_decay": 5e-4},
    # The default for real data: 3 CIFAR ResNet-18s (3x3 stem, no max-pool), SGD 0.1 cosine, 100 epochs.
    "paper": {
        "members": 3,
        "arch": "resnet18",
        "epochs": 100,
        "batch_size": 128,
        "lr": 0.1,
        "weight_decay": 5e-4,
    },
    # 3 DARTS_V2 networks (C=16, 8 cells, no auxiliary head), DARTS-style SGD 0.025 cosine with cutout.
    "darts": {
        "members": 3,
        "arch": "darts_v2",
        "epochs": 100,
        "batch_size": 96,
        "lr": 0.025,
        "weight_decay": 3e-4,
        "cutout": 16,
        "init_channels": 16,
        "layers": 8,
    },
}


def committee_config(preset: str, overrides: dict[str, Any] | None = None) -> CommitteeConfig:
    if preset not in COMMITTEE_PRESETS:
        raise ConfigError(
            f"unknown committee preset {preset!r}; choose one of {', '.join(COMMITTEE_PRESETS)}"
        )
    return resolve_config(CommitteeConfig, COMMITTEE_PRESETS[preset], overrides or {})


class _FirstOutput(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out[0] if isinstance(out, tuple | list) else out


def committee_network(cfg: CommitteeConfig, num_classes: int) -> nn.Module:
    """One member's untrained network."""
    if cfg.arch == "small":
        return SmallCNN(num_classes, width=32, mean=None, std=None, pool="max", pool_last=False)
    if cfg.arch == "resnet18":
        from torchvision.models import resnet18

        net = resnet18(num_classes=num_classes)
        net.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)  # the usual CIFAR stem
        net.maxpool = nn.Identity()
        return net
    from wcbench.genotype import PUBLISHED
    from wcbench.networks import build_network

    return _FirstOutput(
        build_network(
            PUBLISHED["DARTS_V2"], "cifar", cfg.init_channels, cfg.layers, num_classes, auxiliary=False
        )
    )


def train_member(
    cfg: CommitteeConfig, seed: int, train: Any, device: torch.device, log: Any = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Train one member on ``train`` (an ArrayDataset) with SGD + cosine; returns (model, stats)."""
    from wcbench.data import DeviceLoader

    torch.manual_seed(seed)
    net = committee_network(cfg, train.num_classes).to(device)
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    loader = DeviceLoader(
        train, cfg.batch_size, shuffle=True, augment=cfg.augment, cutout=cfg.cutout, device=device, seed=seed
    )
    start = time.perf_counter()
    loss_value = float("nan")
    for epoch in range(cfg.epochs):
        loader.set_epoch(epoch)
        net.train()
        total = correct = 0
        loss_sum = 0.0
        for x, y in loader:
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device):
                logits = net(x)
                loss = nn.functional.cross_entropy(logits.float(), y)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"committee member (seed {seed}) diverged at epoch {epoch}: loss {loss.item()}"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * y.shape[0]
            total += y.shape[0]
            correct += int((logits.argmax(1) == y).sum())
        sched.step()
        loss_value = loss_sum / max(total, 1)
        if log is not None:
            acc = 100 * correct / max(total, 1)
            log(f"member seed {seed}: epoch {epoch + 1}/{cfg.epochs} loss {loss_value:.3f} acc {acc:.1f}%")
    stats = {"train_loss": loss_value, "seconds": round(time.perf_counter() - start, 2)}
    return net.eval(), stats


def predict_probs(net: nn.Module, data: Any, device: torch.device, batch_size: int = 500) -> torch.Tensor:
    """Softmax probabilities (N, classes) of ``data`` (ArrayDataset), in order, no augmentation."""
    from wcbench.data import DeviceLoader

    loader = DeviceLoader(data, batch_size, shuffle=False, augment=False, device=device)
    out = []
    with torch.inference_mode():
        for x, _ in loader:
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device):
                logits = net(x)
            out.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(out)


def build_worst_case_subset(
    dataset: str,
    *,
    per_class: int = 20,
    committee: str = "paper",
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    split: str = "test",
    data_root: str | Path | None = None,
    download: bool = False,
    device: str | torch.device | None = None,
    out: str | Path | None = None,
    log: Any = None,
) -> WorstCaseSubset:
    """Train the committee on ``dataset``'s train split, rank ``split``, store and return the subset.

    Each finished member's true-class probabilities are kept in ``<out>.work/`` so an interrupted
    build resumes with the members it has; the files are removed once the subset is written.
    """
    from wcbench.data import get_dataset

    cfg = committee_config(committee, overrides)
    dev = resolve_device(device)
    path = Path(out) if out else default_subset_path(dataset, data_root)
    train = get_dataset(dataset, "train", data_root, download)
    test = get_dataset(dataset, split, data_root, download)
    if cfg.max_train_examples is not None and cfg.max_train_examples < len(train):
        g = torch.Generator().manual_seed(seed)
        train = train.subset(torch.randperm(len(train), generator=g)[: cfg.max_train_examples].sort().values)
    labels = test.labels.numpy()
    work = path.with_name(path.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    fingerprint = hashlib.sha256(
        json.dumps({"cfg": cfg.model_dump(), "dataset": dataset, "split": split, "seed": seed}).encode()
    ).hexdigest()[:16]
    members = []
    p_true = np.zeros(len(test), dtype=np.float64)
    for k in range(cfg.members):
        member_seed = seed * 1000 + k
        cache = work / f"member-{k}-{fingerprint}.npz"
        if cache.is_file():
            saved = np.load(cache, allow_pickle=False)
            p = saved["p_true"]
            stats = json.loads(str(saved["stats"]))
        else:
            net, stats = train_member(cfg, member_seed, train, dev, log)
            probs = predict_probs(net, test, dev)
            p = probs[torch.arange(len(test)), test.labels].double().numpy()
            stats["test_accuracy"] = round(100.0 * float((probs.argmax(1) == test.labels).double().mean()), 3)
            with atomic_writer(cache) as fh:
                np.savez(fh, p_true=p, stats=json.dumps(stats))
        members.append({"seed": member_seed, **stats})
        p_true += p / cfg.members
    indices = select_worst(p_true, labels, per_class)
    builder = {
        "kind": "committee",
        "committee_preset": committee,
        "committee": cfg.model_dump(mode="json"),
        "members": members,
        "seed": seed,
        "trained_on": f"{dataset} train split ({len(train)} images)",
        "ranked": f"{dataset} {split} split ({len(test)} images) by mean true-class softmax probability",
        "device": str(dev),
        "mean_true_class_probability": {
            "worst": float(p_true[indices].mean()),
            "rest": float(np.delete(p_true, indices).mean()) if len(indices) < len(p_true) else None,
        },
    }
    provenance = (
        f"built by wcbench {wcbench.__version__}: the {per_class} {split} images per class with the lowest "
        f"mean true-class probability under a committee of {cfg.members} x {cfg.arch} ({cfg.epochs} epochs "
        f"each) trained on the {dataset} train split only; `wcbench data worst-case build --dataset "
        f"{dataset} --per-class {per_class} --committee {committee} --seed {seed}`"
    )
    subset = WorstCaseSubset(
        dataset=dataset,
        split=split,
        num_examples_total=len(test),
        indices=indices,
        provenance=provenance,
        per_class=per_class,
        builder=builder,
    )
    write_subset(path, subset)
    for f in work.glob("member-*.npz"):
        f.unlink()
    try:
        work.rmdir()
    except OSError:
        pass
    return subset


# --------------------------------------------------------------------------------------------------
# the scorer


def error_split(wrong: np.ndarray, indices: np.ndarray) -> tuple[float, float, float]:
    """(worst-case, average-case, all) error in % from a per-example 0/1 ``wrong`` vector."""
    mask = np.zeros(len(wrong), dtype=bool)
    mask[indices] = True
    worst = 100.0 * float(wrong[mask].mean())
    rest = 100.0 * float(wrong[~mask].mean()) if (~mask).any() else float("nan")
    return worst, rest, 100.0 * float(wrong.mean())


class WorstCaseParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subset: str | None = Field(
        None, description="subset file (default: <data root>/worst-case/<dataset>.json)"
    )
    batch_size: int = Field(500, ge=1)


@SCORERS.register("worst-case")
class WorstCaseScorer(Scorer):
    """Error (%) on the worst-case subset, the average-case rest and all test images (paper Table 1)."""

    name = "worst-case"
    version = "1"
    Params = WorstCaseParams
    metrics = (
        MetricSpec("worst_case_error", "%", "lower", "worst-case error"),
        MetricSpec("average_case_error", "%", "lower", "average-case error"),
        MetricSpec("all_error", "%", "lower", "all-images error"),
    )

    def run(self, ctx: ScoreContext, params: WorstCaseParams) -> ScoreResult:
        from wcbench.data import DeviceLoader

        path = (
            Path(params.subset).expanduser()
            if params.subset
            else default_subset_path(ctx.dataset, ctx.data_root)
        )
        subset = read_subset(path)
        if subset.dataset != ctx.dataset:
            raise ConfigError(
                f"subset {path} indexes {subset.dataset!r}, the model was trained on {ctx.dataset!r}: pass "
                f"the subset of its dataset with --set subset=FILE"
            )
        data = ctx.load_split(subset.split)
        if len(data) != subset.num_examples_total:
            raise DatasetError(
                f"subset {path} indexes {subset.num_examples_total} {subset.split} images, the dataset has "
                f"{len(data)}"
            )
        model = eval_model(ctx)
        loader = DeviceLoader(data, params.batch_size, shuffle=False, augment=False, device=ctx.device)
        wrong = []
        with torch.inference_mode():
            for x, y in loader:
                if ctx.device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast(ctx.device):
                    pred = model(x).float().argmax(1)
                wrong.append((pred != y).cpu())
        w = torch.cat(wrong).numpy().astype(np.float64)
        worst, rest, all_ = error_split(w, subset.indices)
        return ScoreResult(
            metrics={
                "worst_case_error": metric(worst, "%"),
                "average_case_error": metric(rest, "%"),
                "all_error": metric(all_, "%"),
            },
            dataset=ctx.dataset,
            split=subset.split,
            num_examples=len(w),
            details={"subset_file": str(path)},
            extra={
                "subset_sha256": subset.sha256,
                "subset_provenance": subset.provenance,
                "subset_kind": (subset.builder or {}).get("kind", "unknown"),
                "num_worst": int(len(subset.indices)),
                "num_average": int(len(w) - len(subset.indices)),
            },
        )
