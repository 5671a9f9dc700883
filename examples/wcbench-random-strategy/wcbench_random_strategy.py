"""An external wcbench plug-in in one file: the `random` validation strategy.

Each architecture-active epoch it selects a uniformly random `fraction` of the search-validation
split: the control a curriculum (SPCL, DIHCL) should beat, since it sees as few examples but picks
them blindly. Installed, it makes `random-darts1st`, `random-pdarts`, ... available to
`wcbench search` and `wcbench run` through the `wcbench.searchers` entry-point group.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field

from searchers.base import SearchContext, StrategyConfig
from searchers.strategies import SubsetStrategy
from wcbench.registry import STRATEGIES


class RandomConfig(StrategyConfig):
    fraction: float = Field(0.5, gt=0, le=1, description="share of the validation split used per epoch")


@STRATEGIES.register("random")
class RandomSubset(SubsetStrategy):
    """A random `fraction` of D_val per epoch (a control for the curricula)."""

    Config = RandomConfig
    name = "random"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {"fraction": 0.5},
        "quick": {"fraction": 0.5},
        "smoke": {"fraction": 0.5},
    }

    def select(self, t: int, ctx: SearchContext) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
        k = max(1, int(round(self.config.fraction * self.n)))
        picked = torch.randperm(self.n, generator=ctx.generator)[:k].sort().values
        return picked, None, {"fraction": self.config.fraction}
