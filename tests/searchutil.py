"""Helpers shared by the search-algorithm tests."""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from wcbench.genotype import Genotype


def mini_search(algo, steps: int = 2) -> Genotype:  # noqa: ANN001 - any SearchAlgorithm
    """The loop's call order (searchers.base docstring) on random data."""
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    wopt, aopt = algo.make_weight_optimizer(), algo.make_arch_optimizer()
    algo.train()
    for epoch in range(algo.total_epochs()):
        if algo.on_epoch_start(epoch):
            wopt, aopt = algo.make_weight_optimizer(), algo.make_arch_optimizer()
        for _ in range(steps):
            if not algo.arch_frozen(epoch):
                ctx = SimpleNamespace(arch_optimizer=aopt, extra_arch_step_params=[])
                algo.arch_step((x, y), lambda f: F.cross_entropy(f(x), y), ctx)
            wopt.zero_grad()
            algo.training_loss(algo(x), y).backward()
            wopt.step()
    return algo.genotype()
