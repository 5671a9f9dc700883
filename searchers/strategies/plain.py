"""``plain``: the fixed human-labelled search-validation split (DARTS; the baselines).

Every architecture step minimises the mean cross-entropy of a batch of the search-validation half of
the training set (paper Sec. 4.1: 25k of CIFAR's 50k), drawn without replacement from a fresh
permutation per pass and augmented as DARTS's ``valid_queue`` (random crop 4, flip).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from searchers.base import SearchContext, StrategyConfig
from searchers.strategies import SubsetStrategy
from wcbench.registry import STRATEGIES


class PlainConfig(StrategyConfig):
    """No settings."""


@STRATEGIES.register("plain")
class Plain(SubsetStrategy):
    """L_val on the whole search-validation split (DARTS Eq. 3 outer objective)."""

    Config = PlainConfig
    name = "plain"

    def select(self, t: int, ctx: SearchContext) -> tuple[Tensor, Tensor | None, dict[str, Any]]:
        return torch.arange(self.n), None, {}
