"""The one small CNN of wcbench: three conv3-BN-activation stages and a linear layer.

Two users build it, with different settings (the parameters, their order and hence every random draw
of the initialisation follow from the settings alone):

* the ``ours`` strategy's auxiliary model V and reference classifier in the quick preset
  (``searchers.testers``): images in [0, 1] normalised by the network (``mean``/``std``), channels
  ``width, 2 width, 4 width``, a 2x2 average pool after every stage;
* a worst-case committee member (``evaluators.worst_case``, ``arch = "small"``): already normalised
  inputs (``mean=None``), ``width=32`` (32, 64, 128 channels), a 2x2 max pool after the first two
  stages only (``pool="max", pool_last=False``).

Both end with a global average pool and ``fc``; ``features(x)`` is the pooled ``feature_dim`` vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from wcbench.data.loaders import Normalize

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "silu": nn.SiLU, "elu": nn.ELU}
"""``relu`` is the networks' activation; the smooth ones exist for finite-difference checks."""


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (``relu``, ``silu`` or ``elu``)."""
    return ACTIVATIONS[name]()


class SmallCNN(nn.Module):
    """conv3-BN-act-pool x 3 (``width``, 2 ``width``, 4 ``width``), global average pool, linear.

    ``mean``/``std`` None: no normalisation in front (inputs already normalised). ``pool``: the 2x2
    pool after a stage (``avg`` or ``max``); ``pool_last`` False: none after the third stage.
    """

    def __init__(
        self,
        num_classes: int,
        width: int = 16,
        mean: Sequence[float] | None = (0.5, 0.5, 0.5),
        std: Sequence[float] | None = (0.5, 0.5, 0.5),
        act: str = "relu",
        pool: Literal["avg", "max"] = "avg",
        pool_last: bool = True,
    ) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"unknown pool {pool!r}; choose avg or max")
        self.norm: nn.Module = nn.Identity() if mean is None or std is None else Normalize(mean, std)
        blocks: list[nn.Module] = []
        c = 3
        for i, mult in enumerate((1, 2, 4)):
            blocks += [
                nn.Conv2d(c, width * mult, 3, 1, 1, bias=False),
                nn.BatchNorm2d(width * mult),
                activation(act),
            ]
            if pool_last or i < 2:
                blocks.append(nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2))
            c = width * mult
        self.body = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, num_classes)
        self.feature_dim = c

    def features(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(self.body(self.norm(x)), 1).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))
