"""Validation strategies: what the architecture step minimises (``plain``, ``spcl``, ``dihcl``, ...).

Each module registers one :class:`searchers.base.ValidationStrategy` in ``STRATEGIES``.
:class:`SubsetStrategy` is the shared machinery of strategies that choose a subset of the
search-validation split each epoch and minimise the (optionally weighted) mean cross-entropy of
batches drawn uniformly from it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from searchers.base import ModelFn, Objective, SearchContext, ValidationStrategy
from searchers.splits import IndexStream


class SubsetStrategy(ValidationStrategy):
    """Selects validation positions per epoch (``select``), then per architecture step draws a batch
    of ``config.batch_size`` distinct selected examples (a fresh permutation of the selection from
    ``ctx.generator`` per pass; DARTS's augmentation) and returns the objective
    ``sum_i v_i CE_i / sum_i v_i`` (``v_i = 1`` unless ``select`` gives weights).

    The objective records the batch's positions, per-example losses and predictions in
    ``self.last_seen`` (the losses at the weights the algorithm evaluated, ``w`` or ``w'``).
    """

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.device = torch.device("cpu")
        self.n = 0
        self.arch_epoch = 0  # arch-active epochs begun so far (the strategy's schedule counter)
        self.selected: Tensor | None = None  # positions (CPU int64) of this epoch's selection
        self.weights: Tensor | None = None
        self.info: dict[str, Any] = {}
        self.last_seen: tuple[Tensor, Tensor, Tensor] | None = None
        self._stream: IndexStream | None = None
        self._seen_sum: Tensor | None = None
        self._seen_steps = 0
        self._dataset_indices: Tensor | None = None
        self._selected_mean_loss: Tensor | None = None

    # ---------------------------------------------------------------- to implement
    def select(self, t: int, ctx: SearchContext) -> tuple[Tensor, Tensor | None, dict[str, Any]]:
        """(positions, weights or None, info for the history) for arch epoch ``t`` (0-based)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- ValidationStrategy
    def setup(self, ctx: SearchContext) -> None:
        self.device = ctx.device
        self.n = len(ctx.val)
        self._dataset_indices = ctx.val.dataset_indices

    def on_epoch_start(self, epoch: int, ctx: SearchContext) -> None:
        self._seen_sum, self._seen_steps = None, 0
        self.selected, self.weights, self.info = None, None, {}
        self._selected_mean_loss = None
        self._stream = None
        if not ctx.arch_active:
            return
        selected, weights, info = self.select(self.arch_epoch, ctx)
        self.arch_epoch += 1
        self.selected = selected.to("cpu", torch.int64)
        self.weights = weights
        self.info = info
        self._stream = IndexStream(self.selected, ctx.config.batch_size, ctx.generator, weights)

    def objective(self, ctx: SearchContext) -> Objective:
        assert self._stream is not None, "objective() called in an epoch without architecture updates"
        pos, w = self._stream.next()
        x, y = ctx.val.batch(pos, generator=ctx.generator)
        w_dev = None if w is None else w.to(ctx.device, torch.float32)

        def objective(model_fn: ModelFn) -> Tensor:
            logits = model_fn(x)
            losses = F.cross_entropy(logits.float(), y, reduction="none")
            self.last_seen = (pos, losses.detach(), logits.detach().argmax(1))
            if w_dev is None:
                return losses.mean()
            return (losses * w_dev).sum() / w_dev.sum().clamp_min(1e-12)

        return objective

    def after_arch_step(self, ctx: SearchContext, result: Any) -> None:
        loss = result.loss.detach().float()
        self._seen_sum = loss if self._seen_sum is None else self._seen_sum + loss
        self._seen_steps += 1

    def epoch_stats(self) -> dict[str, Any]:
        seen = None if self._seen_sum is None else float(self._seen_sum) / self._seen_steps
        if self.selected is None:
            return {"arch_active": False, "selected_count": 0, "selected_indices": [], "seen_mean_loss": None}
        everything = self.selected.numel() == self.n
        indices = None
        if not everything and self._dataset_indices is not None:
            indices = self._dataset_indices[self.selected].sort().values.tolist()
        mean_loss = None if self._selected_mean_loss is None else float(self._selected_mean_loss)
        out = {
            "arch_active": True,
            "selected_count": int(self.selected.numel()),
            "selected_fraction": self.selected.numel() / max(1, self.n),
            "selected_indices": indices,  # dataset (train-split) indices; None = the whole split
            "selected_mean_loss": mean_loss if mean_loss is not None else seen,
            "seen_mean_loss": seen,
            "arch_steps": self._seen_steps,
        }
        out.update(self.info)
        return out

    def note_selected_losses(self, losses: Tensor, positions: Tensor) -> None:
        """Remember the mean scored loss of the selection (reported as ``selected_mean_loss``)."""
        self._selected_mean_loss = losses[positions.to(losses.device)].mean()

    def state_dict(self) -> dict[str, Any]:
        return {"arch_epoch": self.arch_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.arch_epoch = int(state["arch_epoch"])


def at_least(n: int, *candidates: float) -> int:
    """max of the candidates rounded up, capped at n (a float within 1e-9 of an integer counts as
    that integer: ceil(0.6 * 10) is 6, not 7)."""
    return min(n, max(math.ceil(c - 1e-9) for c in candidates))
