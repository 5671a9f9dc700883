"""`imagenet-c`: mCE on ImageNet-C (Hendrycks & Dietterich 2019; paper Table 3).

Reads ``<root>/<corruption>/<severity>/<wnid>/*.JPEG`` (images already 224x224: Resize(256),
CenterCrop(224), corrupted, JPEG quality 85). For each corruption c,
``CE_c = 100 * mean_s err(c, s) / ALEXNET_ERR[c]`` (the AlexNet error averaged over the five severities,
hendrycks/robustness), and ``mCE`` is the mean of the 15 CEs. Also reported: the unnormalised mean error over
the 15 x 5 folders, and the corruption x severity error table.

Labels: a wnid folder is the class of that name among the model's classes (``retrain.json``
``classes``, which for an ImageNet retrain are the sorted wnid folders of its training set); a model
without recorded class names needs exactly ``num_classes`` wnid folders, taken in sorted order (the
official evaluation's ``ImageFolder`` convention). Evaluation transform as the official ``test.py``:
CenterCrop to the model's input size (a Resize to that size first, which is the identity at 224),
then the model's normalisation. JPEGs are decoded in ``workers`` DataLoader processes; on CUDA
batches run under bf16 autocast.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evaluators.common import ScoreContext, Scorer, ScoreResult, metric
from evaluators.robust_common import (
    JpegSamples,
    default_workers,
    eval_model,
    eval_transform,
    iterate_predictions,
    list_class_folders,
    list_images,
    model_classes,
)
from wcbench.corruptions import CORRUPTIONS, SEVERITIES
from wcbench.data import resolve_data_root
from wcbench.errors import ConfigError, DatasetError
from wcbench.metrics import MetricSpec
from wcbench.registry import SCORERS

#: AlexNet top-1 error on ImageNet-C, averaged over severities, in the order of ``CORRUPTIONS``
#: (Hendrycks & Dietterich 2019; hendrycks/robustness).
ALEXNET_ERR: dict[str, float] = dict(
    zip(
        CORRUPTIONS,
        (
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
        ),
        strict=True,
    )
)

LAYOUT = "ImageNet-C layout: <root>/<corruption>/<severity 1..5>/<wnid>/*.JPEG"


def mce(table: Mapping[str, Mapping[int, float]]) -> tuple[float, float, dict[str, float]]:
    """(mCE %, mean error %, CE % per corruption) from errors in % per corruption and severity.

    ``CE_c = 100 * mean_s(err[c, s]) / (100 * ALEXNET_ERR[c])``; mCE averages the CEs of the corruptions
    in ``table`` (the benchmark number needs all 15).
    """
    ce = {}
    for c, by_sev in table.items():
        if c not in ALEXNET_ERR:
            raise ConfigError(
                f"no AlexNet constant for corruption {c!r}; mCE is defined on {', '.join(CORRUPTIONS)}"
            )
        ce[c] = 100.0 * float(np.mean(list(by_sev.values()))) / (100.0 * ALEXNET_ERR[c])
    mean_err = float(np.mean([v for by_sev in table.values() for v in by_sev.values()]))
    return float(np.mean(list(ce.values()))), mean_err, ce


class ImagenetCParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root: str | None = Field(None, description="the ImageNet-C folder (default: <data root>/ImageNet-C)")
    corruptions: list[str] | None = Field(None, description="subset of the 15 (default: all 15)")
    severities: list[int] = Field(default_factory=lambda: list(SEVERITIES))
    batch_size: int = Field(256, ge=1)
    workers: int | None = Field(None, ge=0, description="JPEG decoding processes (default: cores - 1, max 8)")
    max_per_folder: int | None = Field(None, ge=1, description="at most this many images per wnid folder")


def class_index(ctx: ScoreContext, folders: list[str], where: Path) -> dict[str, int]:
    """wnid -> output index of the model, from its recorded classes or the sorted folders."""
    classes = model_classes(ctx)
    if classes is not None:
        index = {c: i for i, c in enumerate(classes)}
        unknown = [f for f in folders if f not in index]
        if unknown:
            raise DatasetError(
                f"{where}: class folders {unknown[:3]} are not among the model's {len(classes)} classes "
                f"(retrain.json); is this the model's dataset?"
            )
        return {f: index[f] for f in folders}
    if len(folders) != ctx.num_classes:
        raise DatasetError(
            f"{where} has {len(folders)} class folders but the model has {ctx.num_classes} outputs and no "
            f"recorded class names: cannot tell which output each folder is"
        )
    return {f: i for i, f in enumerate(folders)}


@SCORERS.register("imagenet-c")
class ImagenetCScorer(Scorer):
    """mCE (AlexNet-normalised), unnormalised mean error and per-corruption CE on ImageNet-C (Table 3)."""

    name = "imagenet-c"
    version = "1"
    Params = ImagenetCParams
    metrics = (
        MetricSpec("mce", "%", "lower", "mCE"),
        MetricSpec("mean_error", "%", "lower", "mean error"),
        *(MetricSpec(f"ce_{c}", "%", "lower", f"{c} CE") for c in CORRUPTIONS),
    )

    def run(self, ctx: ScoreContext, params: ImagenetCParams) -> ScoreResult:
        root = (
            Path(params.root).expanduser() if params.root else resolve_data_root(ctx.data_root) / "ImageNet-C"
        )
        names = list(params.corruptions) if params.corruptions is not None else list(CORRUPTIONS)
        unknown = [c for c in names if c not in CORRUPTIONS]
        if unknown or not names:
            raise ConfigError(
                f"corruptions must be a non-empty subset of {', '.join(CORRUPTIONS)}; got {names}"
            )
        bad = [s for s in params.severities if s not in SEVERITIES]
        if bad or not params.severities:
            raise ConfigError(f"severities must be a non-empty subset of 1..5, got {params.severities}")
        if not root.is_dir():
            raise DatasetError(
                f"ImageNet-C not found at {root} (expected {LAYOUT}); it cannot be downloaded by wcbench: "
                f"put it there or pass --set root=PATH"
            )
        groups: list[tuple[str, int]] = []
        samples: list[tuple[str, int, int]] = []
        for c in names:
            for s in params.severities:
                folder = root / c / str(s)
                wnids = list_class_folders(folder, LAYOUT, f"ImageNet-C {c} severity {s}")
                index = class_index(ctx, wnids, folder)
                g = len(groups)
                groups.append((c, s))
                for w in wnids:
                    files = list_images(folder / w)
                    if params.max_per_folder is not None:
                        files = files[: params.max_per_folder]
                    samples += [(str(p), index[w], g) for p in files]
        if not samples:
            raise DatasetError(f"no images under {root} (expected {LAYOUT})")
        model = eval_model(ctx)
        size = ctx.image_size
        dataset = JpegSamples(samples, eval_transform(size, resize=size))
        workers = default_workers() if params.workers is None else params.workers
        wrong = np.zeros(len(groups), dtype=np.int64)
        count = np.zeros(len(groups), dtype=np.int64)
        for pred, y, g in iterate_predictions(model, dataset, ctx, params.batch_size, workers, topk=1):
            miss = (pred[:, 0] != y).numpy().astype(np.int64)
            np.add.at(wrong, g.numpy(), miss)
            np.add.at(count, g.numpy(), 1)
        table: dict[str, dict[int, float]] = {}
        for (c, s), w, n in zip(groups, wrong, count, strict=True):
            table.setdefault(c, {})[s] = 100.0 * float(w) / max(int(n), 1)
        m, mean_err, ce = mce(table)
        metrics = {"mce": metric(m, "%"), "mean_error": metric(mean_err, "%")}
        for c in names:
            metrics[f"ce_{c}"] = metric(ce[c], "%")
        return ScoreResult(
            metrics=metrics,
            dataset="imagenet-c",
            split="val",
            num_examples=int(count.sum()),
            details={"root": str(root), "corruptions_scored": names, "workers": workers},
            extra={
                "table": {c: {str(s): v for s, v in t.items()} for c, t in table.items()},
                "table_unit": "% top-1 error",
                "alexnet_err": {c: ALEXNET_ERR[c] for c in names},
                "complete": names == list(CORRUPTIONS) and list(params.severities) == list(SEVERITIES),
            },
        )
