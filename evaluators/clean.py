"""`clean`: top-1 and top-5 error of a retrained model on the test split (the paper's headline metric,
Tables 2-5 and 18: classification error in %)."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field

from evaluators.common import LogitsOnly, ScoreContext, Scorer, ScoreResult, eval_loader, metric, topk_correct
from wcbench.metrics import MetricSpec
from wcbench.registry import SCORERS


class CleanParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    split: str = Field("test", description="the split to score (the test split; never used in training)")
    batch_size: int = Field(256, ge=1)
    max_examples: int | None = Field(None, ge=1, description="a fixed random subset; None = the whole split")


@SCORERS.register("clean")
class CleanScorer(Scorer):
    """Top-1 and top-5 error (%) on the test split (paper Tables 2-5)."""

    name = "clean"
    version = "1"
    Params = CleanParams
    metrics = (
        MetricSpec("top1_error", "%", "lower", "top-1 error"),
        MetricSpec("top5_error", "%", "lower", "top-5 error"),
        MetricSpec("top1_acc", "%", "higher", "top-1 accuracy"),
        MetricSpec("top5_acc", "%", "higher", "top-5 accuracy"),
    )

    def run(self, ctx: ScoreContext, params: CleanParams) -> ScoreResult:
        model = LogitsOnly(ctx.network()).eval()
        loader, n = eval_loader(ctx, params.split, params.batch_size, max_examples=params.max_examples)
        c1 = c5 = seen = 0
        loss_sum = 0.0
        with torch.inference_mode():
            for x, y in loader:
                x, y = x.to(ctx.device), y.to(ctx.device)
                logits = model(x).float()
                a, b = topk_correct(logits, y, (1, 5))
                c1, c5, seen = c1 + a, c5 + b, seen + y.shape[0]
                loss_sum += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
        seen = max(seen, 1)
        top1, top5 = 100.0 * c1 / seen, 100.0 * c5 / seen
        return ScoreResult(
            metrics={
                "top1_error": metric(100.0 - top1, "%"),
                "top5_error": metric(100.0 - top5, "%"),
                "top1_acc": metric(top1, "%"),
                "top5_acc": metric(top5, "%"),
            },
            dataset=ctx.dataset,
            split=params.split,
            num_examples=n,
            extra={"loss": loss_sum / seen, "top5_note": "top-5 = top-k with k = min(5, classes)"},
        )
