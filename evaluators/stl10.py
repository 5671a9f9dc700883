"""`stl10`: transfer of an architecture to STL-10 (paper Appendix B.4, Table 17: test accuracy, %).

The genotype is retrained from scratch on STL-10 ``train`` (5,000 images, 96x96, 10 classes) and
scored on the 8,000 ``test`` images. The paper gives no STL-10 training settings; wcbench uses the
same retrain preset (family, preset and ``--set`` overrides) as the model being scored, at 96x96 (the
auxiliary head pools adaptively, so it works at this size), unless ``preset``/``family``/``overrides``
say otherwise. The STL-10 retrain lives beside the scored one (``<run>/retrain/stl10``, or
``DIR/transfer/stl10`` for a stand-alone retrain directory) and resumes like any retrain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from evaluators.common import (
    MODEL_FILE,
    LogitsOnly,
    ScoreContext,
    Scorer,
    ScoreResult,
    eval_loader,
    load_trained_network,
    metric,
    read_retrain_record,
    topk_correct,
)
from wcbench.config import parse_overrides
from wcbench.errors import ConfigError
from wcbench.metrics import MetricSpec
from wcbench.registry import SCORERS


class Stl10Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field("stl10", description="the transfer dataset (its train split is trained on)")
    preset: str | None = Field(None, description="retrain preset; None = the scored model's (else paper)")
    family: str | None = Field(
        None, description="retrain preset family; None = the scored model's (else darts)"
    )
    overrides: dict[str, Any] | None = Field(None, description="retrain settings; None = the scored model's")
    retrain_dir: str | None = Field(None, description="where to retrain; None = beside the scored model")
    split: str = "test"
    batch_size: int = Field(256, ge=1)


def transfer_dir(ctx: ScoreContext, name: str) -> Path:
    if ctx.model_dir is not None:
        md = Path(ctx.model_dir)
        base = md.parent if md.parent.name == "retrain" else md / "transfer"
    else:
        base = Path(ctx.scores_dir).parent / "retrain"
    return base / name


@SCORERS.register("stl10")
class Stl10Scorer(Scorer):
    """Retrain on STL-10 train (96x96) and report test accuracy (%) (paper Table 17)."""

    name = "stl10"
    version = "1"
    needs_weights = False
    Params = Stl10Params
    metrics = (
        MetricSpec("stl10_acc", "%", "higher", "STL-10 accuracy"),
        MetricSpec("stl10_top1_error", "%", "lower", "STL-10 top-1 error"),
        MetricSpec("stl10_top5_acc", "%", "higher", "STL-10 top-5 accuracy"),
    )

    def run(self, ctx: ScoreContext, params: Stl10Params) -> ScoreResult:
        from evaluators.common import dataset_key
        from evaluators.retrain import load_retrain_config, retrain

        if ctx.genotype is None:
            raise ConfigError(
                "stl10 retrains the scored genotype on STL-10 (Table 17); an external model has none: "
                "train it on STL-10 yourself and score it with --scorer clean --dataset stl10"
            )
        source: dict[str, Any] = {}
        if ctx.model_dir is not None:
            source = dict(read_retrain_record(ctx.model_dir).get("preset") or {})
        family = params.family or source.get("family") or "darts"
        preset = params.preset or source.get("preset") or "paper"
        if params.overrides is not None:
            overrides = dict(params.overrides)
        else:  # retrain.json keeps them as `--set` strings (CLI) or as a dict (pipeline)
            given = source.get("overrides") or []
            overrides = dict(given) if isinstance(given, dict) else parse_overrides(list(given))
        key = params.dataset.partition(":")[0]
        config = load_retrain_config(family, preset, key, overrides)
        out = (
            Path(params.retrain_dir) if params.retrain_dir else transfer_dir(ctx, dataset_key(params.dataset))
        )
        result = retrain(
            ctx.genotype,
            params.dataset,
            out,
            config,
            seed=ctx.seed,
            data_root=ctx.data_root,
            download=ctx.download,
            device=ctx.device,
            progress=None if ctx.progress else False,
            preset={
                "family": family,
                "preset": preset,
                "overrides": [f"{k}={v}" for k, v in overrides.items()],
            },
            genotype_source=f"transfer of {ctx.model_dir or ctx.genotype.hash()}",
        )
        net = load_trained_network(out, ctx.device)
        record = read_retrain_record(out)
        sub = ScoreContext.from_model_dir(
            out,
            scores_dir=ctx.scores_dir,
            data_root=ctx.data_root,
            download=ctx.download,
            device=ctx.device,
            seed=ctx.seed,
            progress=ctx.progress,
        )
        sub._net = net
        loader, n = eval_loader(sub, params.split, params.batch_size)
        model = LogitsOnly(net).eval()
        c1 = c5 = seen = 0
        with torch.inference_mode():
            for x, y in loader:
                x, y = x.to(ctx.device), y.to(ctx.device)
                a, b = topk_correct(model(x).float(), y, (1, 5))
                c1, c5, seen = c1 + a, c5 + b, seen + y.shape[0]
        seen = max(seen, 1)
        acc = 100.0 * c1 / seen
        return ScoreResult(
            metrics={
                "stl10_acc": metric(acc, "%"),
                "stl10_top1_error": metric(100.0 - acc, "%"),
                "stl10_top5_acc": metric(100.0 * c5 / seen, "%"),
            },
            dataset=params.dataset,
            split=params.split,
            num_examples=n,
            details={"retrain_family": family, "retrain_preset": preset, "retrain_overrides": overrides},
            extra={
                "retrain_dir": str(out),
                "retrain_epochs": result.epochs_done,
                "retrain_config": record.get("config"),
                "image_size": record.get("image_size"),
                "model_file": str(out / MODEL_FILE),
                "source": "paper Table 17 (accuracy on the STL-10 test set)",
            },
        )
