"""``spcl``: self-paced curriculum learning (Jiang et al., AAAI 2015) adapted to pick HARD validation
examples for the architecture step, as the paper did (Sec. 5, "These methods were originally designed
for selecting training examples that have large training losses. We adapt them to select validation
examples that have large validation losses").

The rule wcbench implements (exactly):

* Scores: at the start of every epoch in which the architecture is updated (arch epoch
  ``t = 0, 1, ..., T-1``; ``T = ctx.arch_epochs_total``), ``l_i`` is the cross-entropy of validation
  example i under the current model (eval mode, no augmentation; ``ctx.val_example_losses()``).
* Pace: the selected share grows linearly,
  ``f_t = start_fraction + (end_fraction - start_fraction) * t / max(1, T - 1)``, and
  ``k_t = max(ceil(f_t * n), min(batch_size, n))``.
* Self-paced weights, binary regulariser mirrored for hardness: SPL solves
  ``min_v sum_i v_i l_i - lambda sum_i v_i`` (v in [0, 1]^n), giving ``v_i = 1[l_i < lambda]``
  (easy first); wcbench solves ``min_v sum_i v_i (lambda_t - l_i)``, giving
  ``v_i = 1[l_i >= lambda_t]`` (hard first), with the pace parameter ``lambda_t`` = the ``k_t``-th
  largest ``l_i``. So the ``k_t`` hardest examples are selected (examples tied with the ``k_t``-th
  are all included). As ``t`` grows ``lambda_t`` falls and the set grows from the hardest
  ``start_fraction`` to ``end_fraction`` of the split: the curriculum runs from hard to all.
* Curriculum region Psi (the "C" of SPCL, prior knowledge constraining v): ``none`` (default;
  v in [0, 1]^n: no prior ranking of validation examples exists) or ``per_class`` (the pace applies
  within each class c: the ``max(ceil(f_t * n_c), ceil(min(batch_size, n) * n_c / n))`` hardest
  examples of class c, so every class keeps its share).
* The architecture step minimises the mean CE of batches drawn uniformly from the selected set
  (``SubsetStrategy``). Epochs with a frozen architecture select nothing and do not advance ``t``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from searchers.base import SearchContext, StrategyConfig
from searchers.strategies import SubsetStrategy, at_least
from wcbench.registry import STRATEGIES


class SPCLConfig(StrategyConfig):
    start_fraction: float = Field(
        0.2, gt=0, le=1, description="share of hardest examples at the first arch epoch"
    )
    end_fraction: float = Field(1.0, gt=0, le=1, description="share selected at the last arch epoch")
    curriculum: Literal["none", "per_class"] = Field("none", description="curriculum region Psi")


def spcl_pace(t: int, total: int, start: float, end: float) -> float:
    """f_t = start + (end - start) * t / max(1, total - 1), clipped to [min, max] of (start, end)."""
    f = start + (end - start) * t / max(1, total - 1)
    return min(max(f, min(start, end)), max(start, end))


def spcl_select(
    losses: Tensor, fraction: float, min_count: int, labels: Tensor | None = None
) -> tuple[Tensor, float]:
    """Positions with ``v_i = 1[l_i >= lambda]``, lambda the k-th largest loss, ``k = max(ceil(f n),
    min_count)``; with ``labels`` (per_class region) the rule applies within each class. Returns
    (sorted positions, lambda; per class: the smallest class threshold)."""
    losses = losses.detach().double().cpu()
    n = losses.numel()
    if labels is None:
        k = at_least(n, fraction * n, min(min_count, n))
        lam = float(torch.topk(losses, k).values[-1])
        return torch.nonzero(losses >= lam).flatten(), lam
    labels = labels.cpu()
    chosen, lams = [], []
    for c in labels.unique().tolist():
        members = torch.nonzero(labels == c).flatten()
        nc = members.numel()
        k = at_least(nc, fraction * nc, min(min_count, n) * nc / n, 1)
        lam = float(torch.topk(losses[members], k).values[-1])
        chosen.append(members[losses[members] >= lam])
        lams.append(lam)
    return torch.cat(chosen).sort().values, min(lams)


@STRATEGIES.register("spcl")
class SPCL(SubsetStrategy):
    """Self-paced curriculum over validation examples, hardest first (module docstring)."""

    Config = SPCLConfig
    name = "spcl"
    config: SPCLConfig

    def select(self, t: int, ctx: SearchContext) -> tuple[Tensor, Tensor | None, dict[str, Any]]:
        c = self.config
        losses = ctx.val_example_losses()
        f = spcl_pace(t, ctx.arch_epochs_total, c.start_fraction, c.end_fraction)
        labels = ctx.val.labels if c.curriculum == "per_class" else None
        selected, lam = spcl_select(losses, f, ctx.config.batch_size, labels)
        self.note_selected_losses(losses, selected)
        return selected, None, {"pace_fraction": f, "lambda": lam, "arch_epoch": t}
