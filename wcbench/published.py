"""Published sizes of the published genotypes, with the source and the counter that made each.

Shown beside wcbench's own counts; never used to scale them (each paper used its own, unstated counter).
"""

from __future__ import annotations

PUBLISHED_COST: dict[tuple[str, str], dict[str, object]] = {
    ("DARTS_V2", "cifar10"): {"params_m": 3.3, "source": "DARTS (Liu et al. 2019), Table 1"},
    ("PDARTS", "cifar10"): {"params_m": 3.4, "source": "P-DARTS (Chen et al. 2019), Table 1"},
    ("PC_DARTS_cifar", "cifar10"): {"params_m": 3.6, "source": "PC-DARTS (Xu et al. 2020), Table 1"},
    ("PRDARTS", "cifar10"): {"params_m": 3.4, "source": "PR-DARTS (Zhou et al. 2020), Table 1"},
    ("DARTS_V2", "imagenet"): {
        "params_m": 4.7,
        "macs_m": 574,
        "source": "paper Table 23 (DARTS's figure; its counter is not stated)",
    },
    ("PDARTS", "imagenet"): {
        "params_m": 4.9,
        "macs_m": 557,
        "source": "paper Table 23 (P-DARTS's figure; its counter is not stated)",
    },
    ("PC_DARTS_image", "imagenet"): {
        "params_m": 5.3,
        "macs_m": 597,
        "source": "paper Table 23 (PC-DARTS's figure; its counter is not stated)",
    },
}

MACS_COUNTER = "torch.utils.flop_counter (conv + linear, FLOPs / 2)"
