"""`autoattack`: robust accuracy under AutoAttack (Croce & Hein, ICML 2020) through ``pyautoattack``.

An optional extra: ``pip install wcbench[autoattack]`` (``pyautoattack``, the PyPI packaging of
fra31/auto-attack; top-level module ``pyautoattack``, so it shadows nothing). ``version="standard"``
is the official standard evaluation: APGD-CE (100 iterations), APGD-T (9 target classes), FAB-T and
Square (5,000 queries), L-inf eps 8/255 by default. The score is labelled with exactly what ran. It is
NOT torchattacks' ``AutoAttack`` (10 APGD steps), which wcbench never labels "standard".

Not one of the paper's tables (Tables 15-16 use PGD, FGSM and C&W): a stronger check of the same
claim. Robust accuracy counts an example as robust when every attack of the ensemble fails on it.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from evaluators.common import LogitsOnly, ScoreContext, Scorer, ScoreResult, eval_loader, metric
from wcbench.errors import ConfigError
from wcbench.metrics import MetricSpec
from wcbench.registry import SCORERS

VERSIONS = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "plus": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
    "rand": ("apgd-ce", "apgd-dlr"),
}

INSTALL_HINT = (
    "the autoattack scorer needs the optional extra: `pip install wcbench[autoattack]` (pyautoattack)"
)


def import_pyautoattack() -> Any:
    try:
        import pyautoattack
    except ImportError as exc:
        raise ConfigError(f"{INSTALL_HINT} ({exc})") from None
    return pyautoattack


def label(version: str, norm: str, eps: float) -> str:
    """What the score says ran: ``AutoAttack standard (APGD-CE, APGD-T, FAB-T, SQUARE)...``"""
    attacks = ", ".join(a.upper() for a in VERSIONS[version])
    eps_text = f"{round(eps * 255)}/255" if abs(eps * 255 - round(eps * 255)) < 1e-9 else f"{eps:g}"
    return f"AutoAttack {version} ({attacks}), {norm} eps {eps_text}, Croce & Hein 2020 via pyautoattack"


class AutoAttackParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal["standard", "plus", "rand"] = "standard"
    norm: Literal["Linf", "L2", "L1"] = "Linf"
    eps: float = Field(8 / 255, gt=0)
    split: str = "test"
    num_examples: int | None = Field(None, ge=1, description="a fixed random subset; None = the whole split")
    batch_size: int = Field(250, ge=1)


@SCORERS.register("autoattack")
class AutoAttackScorer(Scorer):
    """Robust accuracy (%) under the standard AutoAttack via pyautoattack (optional extra)."""

    name = "autoattack"
    version = "1"
    Params = AutoAttackParams
    metrics = (
        MetricSpec("clean_acc", "%", "higher", "clean acc."),
        MetricSpec("autoattack_acc", "%", "higher", "AutoAttack acc."),
    )

    def run(self, ctx: ScoreContext, params: AutoAttackParams) -> ScoreResult:
        paa = import_pyautoattack()
        model = LogitsOnly(ctx.network(), ctx.mean, ctx.std).to(ctx.device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        loader, n = eval_loader(
            ctx, params.split, params.batch_size, normalize=False, max_examples=params.num_examples
        )
        xs, ys = zip(*[(x.float().cpu(), y.cpu()) for x, y in loader], strict=True) if n else ((), ())
        x = torch.cat(xs) if xs else torch.empty(0, *ctx.input_size())
        y = torch.cat(ys) if ys else torch.empty(0, dtype=torch.int64)
        adversary = paa.AutoAttack(
            model, norm=params.norm, eps=params.eps, version=params.version, seed=ctx.seed, device=ctx.device
        )
        x_adv, _ = adversary.run_standard_evaluation(
            x.to(ctx.device), y.to(ctx.device), batch_size=params.batch_size
        )
        with torch.no_grad():
            clean_right = (
                torch.cat(
                    [
                        model(x[i : i + params.batch_size].to(ctx.device)).argmax(1).cpu()
                        for i in range(0, len(x), params.batch_size)
                    ]
                )
                == y
            )
            adv_right = (
                torch.cat(
                    [
                        model(x_adv[i : i + params.batch_size]).argmax(1).cpu()
                        for i in range(0, len(x), params.batch_size)
                    ]
                )
                == y
            )
        robust = adv_right & clean_right
        total = max(len(y), 1)
        linf = float((x_adv.cpu() - x).abs().flatten(1).max()) if len(x) else 0.0
        return ScoreResult(
            metrics={
                "clean_acc": metric(100.0 * float(clean_right.sum()) / total, "%"),
                "autoattack_acc": metric(100.0 * float(robust.sum()) / total, "%"),
            },
            dataset=ctx.dataset,
            split=params.split,
            num_examples=n,
            details={
                "label": label(params.version, params.norm, params.eps),
                "attacks": list(VERSIONS[params.version]),
                "library": f"pyautoattack {getattr(paa, '__version__', '?')}",
            },
            extra={"checks": {"linf_max": linf}},
        )
