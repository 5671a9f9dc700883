"""`cifar-c`: error on CIFAR-10-C / CIFAR-100-C (paper Table 2), or the -C set of any CIFAR-sized dataset.

Reads the official layout (``<root>/<corruption>.npy`` uint8 (5n, 32, 32, 3), severities 1..5 in
blocks of n, ``<root>/labels.npy``; see :mod:`wcbench.corruptions.layout`) by memory map, a batch at a
time, and reports the plain mean error over the 15 corruptions x 5 severities (no AlexNet
normalisation for CIFAR: Hendrycks, robustness#28), per-corruption means, and the whole corruption x
severity table. ``extra=true`` adds the 4 extra corruptions of the CIFAR-10-C release (speckle_noise,
gaussian_blur, spatter, saturate), reported separately so that ``mean_corruption_error`` stays the
15-corruption benchmark number.

Where the data is looked for (``root`` unset): ``<data root>/CIFAR-10-C`` for cifar10,
``<data root>/CIFAR-100-C`` for cifar100, ``<data root>/<dataset>-C`` otherwise (where
``wcbench data corrupt --dataset D`` writes by default). Images are scaled to [0, 1] and normalised
with the model's own mean/std, as its training data was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from evaluators.common import ScoreContext, Scorer, ScoreResult, dataset_key, metric
from evaluators.robust_common import eval_model, predict_nhwc
from wcbench.corruptions import CORRUPTIONS, EXTRA_CORRUPTIONS, MANIFEST_FILE, SEVERITIES, open_c_layout
from wcbench.data import resolve_data_root
from wcbench.errors import ConfigError, DatasetError
from wcbench.files import read_json
from wcbench.metrics import MetricSpec
from wcbench.registry import SCORERS

OFFICIAL_FOLDERS = {"cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C"}


def default_c_root(dataset: str, data_root: str | Path | None = None) -> Path:
    """Where the -C data of ``dataset`` lives by default (and where ``wcbench data corrupt`` writes it)."""
    root = resolve_data_root(data_root)
    key = dataset.partition(":")[0]
    if key in OFFICIAL_FOLDERS and ":" not in dataset:
        return root / OFFICIAL_FOLDERS[key]
    return root / f"{dataset_key(dataset)}-C"


def corruption_errors(predictions: dict[str, dict[int, float]]) -> dict[str, float]:
    """Mean error (%) per corruption over its severities, from a table of errors (%)."""
    return {c: float(np.mean(list(t.values()))) for c, t in predictions.items()}


class CifarCParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root: str | None = Field(
        None, description="folder with <corruption>.npy and labels.npy (default: see doc)"
    )
    corruptions: list[str] | None = Field(None, description="subset of the 15 (default: all 15)")
    extra: bool = Field(False, description="also score the 4 extra corruptions (reported separately)")
    severities: list[int] = Field(default_factory=lambda: list(SEVERITIES))
    batch_size: int = Field(1000, ge=1)
    max_examples: int | None = Field(
        None, ge=1, description="per severity: a fixed random subset of the n images (same for all)"
    )


@SCORERS.register("cifar-c")
class CifarCScorer(Scorer):
    """Mean error (%) over CIFAR-C's 15 corruptions x 5 severities, with the full table (paper Table 2)."""

    name = "cifar-c"
    version = "1"
    Params = CifarCParams
    metrics = (
        MetricSpec("mean_corruption_error", "%", "lower", "mean corruption error"),
        MetricSpec("mean_extra_corruption_error", "%", "lower", "mean extra-corruption error"),
        *(MetricSpec(f"error_{c}", "%", "lower", f"{c} error") for c in CORRUPTIONS + EXTRA_CORRUPTIONS),
    )

    def run(self, ctx: ScoreContext, params: CifarCParams) -> ScoreResult:
        root = Path(params.root).expanduser() if params.root else default_c_root(ctx.dataset, ctx.data_root)
        main = list(params.corruptions) if params.corruptions is not None else list(CORRUPTIONS)
        unknown = [c for c in main if c not in CORRUPTIONS + EXTRA_CORRUPTIONS]
        if unknown or not main:
            known = ", ".join(CORRUPTIONS + EXTRA_CORRUPTIONS)
            raise ConfigError(
                f"corruptions must be a non-empty list of known names (got {main}); known: {known}"
            )
        extra = [c for c in EXTRA_CORRUPTIONS if c not in main] if params.extra else []
        bad = [s for s in params.severities if s not in SEVERITIES]
        if bad or not params.severities:
            raise ConfigError(f"severities must be a non-empty subset of 1..5, got {params.severities}")
        model = eval_model(ctx)
        table: dict[str, dict[int, float]] = {}
        n_total = 0
        n_per = None
        sub = np.arange(0)
        for name in main + extra:
            images, labels, n = open_c_layout(root, name)
            if n_per is not None and n != n_per:
                raise DatasetError(f"{root}: {name}.npy has {n} images per severity, others {n_per}")
            n_per = n
            if labels.size and (labels.min() < 0 or labels.max() >= ctx.num_classes):
                raise DatasetError(
                    f"{root}/labels.npy has labels outside 0..{ctx.num_classes - 1}: this -C set is not "
                    f"of the model's dataset {ctx.dataset!r}"
                )
            sub = np.arange(n)
            if params.max_examples is not None and params.max_examples < n:
                g = torch.Generator().manual_seed(ctx.seed)
                sub = np.sort(torch.randperm(n, generator=g)[: params.max_examples].numpy())
            table[name] = {}
            for s in params.severities:
                rows = (s - 1) * n + sub
                pred = predict_nhwc(model, images, rows, ctx.mean, ctx.std, ctx.device, params.batch_size)[
                    :, 0
                ]
                wrong = (pred.numpy() != labels[rows]).sum()
                table[name][s] = 100.0 * float(wrong) / max(len(rows), 1)
                n_total += len(rows)
        per = corruption_errors(table)
        metrics: dict[str, Any] = {
            "mean_corruption_error": metric(float(np.mean([per[c] for c in main])), "%"),
        }
        for c in main:
            metrics[f"error_{c}"] = metric(per[c], "%")
        if extra:
            metrics["mean_extra_corruption_error"] = metric(float(np.mean([per[c] for c in extra])), "%")
            for c in extra:
                metrics[f"error_{c}"] = metric(per[c], "%")
        manifest = read_json(root / MANIFEST_FILE) if (root / MANIFEST_FILE).is_file() else None
        source = (
            {k: manifest.get(k) for k in ("dataset", "seed", "engine_version", "images_sha256", "frost")}
            if isinstance(manifest, dict)
            else "no wcbench-c.json: official or third-party files"
        )
        return ScoreResult(
            metrics=metrics,
            dataset=f"{ctx.dataset}-C",
            split="test",
            num_examples=n_total,
            details={
                "root": str(root),
                "corruptions_scored": main,
                "extra_scored": extra,
                "examples_per_severity": int(len(sub)),
            },
            extra={
                "table": {c: {str(s): v for s, v in t.items()} for c, t in table.items()},
                "table_unit": "% error",
                "c_source": source,
                "benchmark_note": "mean_corruption_error = plain mean over corruptions x severities "
                "(no AlexNet normalisation for CIFAR)",
            },
        )
