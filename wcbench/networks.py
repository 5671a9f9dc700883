"""Evaluation networks built from a genotype (DARTS cnn/model.py): NetworkCIFAR and NetworkImageNet.

Both return `(logits, logits_aux)`; `logits_aux` is None unless the auxiliary head is on and the
model is training. The auxiliary heads pool adaptively to 2x2 before their 2x2 convolution, so
they give the official shapes at 32x32 / 224x224 and also work at other sizes (STL-10's 96x96).
Parameters are counted as the papers count them: the auxiliary head excluded.
"""

from __future__ import annotations

import torch
from torch import nn

from wcbench.genotype import Genotype
from wcbench.space import FactorizedReduce, Identity, ReLUConvBN, make_op, reduction_layers


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Drop a whole path per example with probability `drop_prob`, rescaling survivors (DARTS utils.py)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x.div(keep) * mask


class Cell(nn.Module):
    """A cell of a genotype: 4 nodes, each the sum of two ops on earlier states."""

    def __init__(
        self, genotype: Genotype, c_prev_prev: int, c_prev: int, c: int, reduction: bool, reduction_prev: bool
    ):
        super().__init__()
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_prev_prev, c)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        pairs = genotype.reduce if reduction else genotype.normal
        concat = genotype.reduce_concat if reduction else genotype.normal_concat
        self.reduction = reduction
        self._steps = len(pairs) // 2
        self._concat = list(concat)
        self.multiplier = len(concat)
        self._indices = [i for _, i in pairs]
        self._ops = nn.ModuleList(
            make_op(name, c, 2 if reduction and index < 2 else 1, affine=True) for name, index in pairs
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self._steps):
            hs = []
            for k in (2 * i, 2 * i + 1):
                op = self._ops[k]
                h = op(states[self._indices[k]])
                if self.training and drop_prob > 0.0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                hs.append(h)
            states.append(hs[0] + hs[1])
        return torch.cat([states[i] for i in self._concat], dim=1)


class AuxPool(nn.Module):
    """The heads' AvgPool(5, stride, count_include_pad=False), then adaptive pooling to 2x2.

    At the official input sizes (8x8 CIFAR, 7x7 ImageNet) the AvgPool already gives 2x2 and the
    adaptive pool is the identity; at other sizes the output is still 2x2; maps smaller than the
    5x5 window are pooled adaptively alone.
    """

    def __init__(self, stride: int):
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=stride, padding=0, count_include_pad=False)
        self.adaptive = nn.AdaptiveAvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) >= 5:
            x = self.pool(x)
        return self.adaptive(x)


class AuxiliaryHeadCIFAR(nn.Module):
    """After cell 2*layers//3 (8x8 at 32x32 input): ReLU, AvgPool(5, 3), 1x1 conv 128, BN, ReLU,
    2x2 conv 768, BN, ReLU, Linear. The adaptive pool is the identity at 8x8 input."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            AuxPool(stride=3),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class AuxiliaryHeadImageNet(nn.Module):
    """As DARTS's ImageNet head (7x7 input at 224): AvgPool(5, 2), no BN after the 768-channel conv."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            AuxPool(stride=2),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class _Network(nn.Module):
    drop_path_prob: float

    def _build_cells(self, genotype: Genotype, c: int, layers: int, c_stem: int, reduction_prev: bool) -> int:
        c_pp, c_p, c_curr = c_stem, c_stem, c
        self.cells = nn.ModuleList()
        self.aux_channels = 0
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_curr *= 2
            cell = Cell(genotype, c_pp, c_p, c_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells.append(cell)
            c_pp, c_p = c_p, cell.multiplier * c_curr
            if i == 2 * layers // 3:
                self.aux_channels = c_p
        return c_p

    def _cells_forward(self, s0: torch.Tensor, s1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits_aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == 2 * self.layers // 3 and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits, logits_aux


class NetworkCIFAR(_Network):
    """The CIFAR evaluation network: 3x3 stem to 3C, `layers` cells, global pooling, linear."""

    def __init__(
        self, genotype: Genotype, c: int = 36, num_classes: int = 10, layers: int = 20, auxiliary: bool = True
    ):
        super().__init__()
        self.genotype, self.layers, self.drop_path_prob = genotype, layers, 0.0
        stem_multiplier = 3
        c_stem = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(3, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        c_p = self._build_cells(genotype, c, layers, c_stem, reduction_prev=False)
        self.auxiliary_head = AuxiliaryHeadCIFAR(self.aux_channels, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        s = self.stem(x)
        return self._cells_forward(s, s)


class NetworkImageNet(_Network):
    """The ImageNet mobile-setting network: two stems (stride 8 in all), `layers` cells, pooling, linear."""

    def __init__(
        self,
        genotype: Genotype,
        c: int = 48,
        num_classes: int = 1000,
        layers: int = 14,
        auxiliary: bool = True,
    ):
        super().__init__()
        self.genotype, self.layers, self.drop_path_prob = genotype, layers, 0.0
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, c // 2, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c),
        )
        c_p = self._build_cells(genotype, c, layers, c, reduction_prev=True)
        self.auxiliary_head = AuxiliaryHeadImageNet(self.aux_channels, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)  # AvgPool2d(7) at 224x224, any size here
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        s0 = self.stem0(x)
        s1 = self.stem1(s0)
        return self._cells_forward(s0, s1)


def count_params(model: nn.Module, include_aux: bool = False) -> int:
    """Trainable parameters; the auxiliary head is excluded unless asked, as the papers count."""
    return sum(
        p.numel() for name, p in model.named_parameters() if include_aux or not name.startswith("auxiliary")
    )


def count_macs(model: nn.Module, input_size: tuple[int, int, int]) -> int:
    """Multiply-adds of one eval-mode forward pass, by torch.utils.flop_counter (FLOPs / 2).

    The counter counts convolutions and matrix products (linear layers); BN, pooling and adds are
    not counted. The auxiliary head does not run in eval mode, so it is not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    x = torch.zeros(1, *input_size, device=next(model.parameters()).device)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


PAPER_SETTINGS: dict[str, dict] = {
    "cifar10": {"c": 36, "layers": 20, "num_classes": 10, "input": (3, 32, 32), "kind": "cifar"},
    "cifar100": {"c": 36, "layers": 20, "num_classes": 100, "input": (3, 32, 32), "kind": "cifar"},
    "imagenet": {"c": 48, "layers": 14, "num_classes": 1000, "input": (3, 224, 224), "kind": "imagenet"},
}
"""The evaluation networks of the papers: CIFAR 36 channels x 20 cells; ImageNet mobile 48 x 14 at 224."""


def build_network(
    genotype: Genotype,
    kind: str = "cifar",
    c: int = 36,
    layers: int = 20,
    num_classes: int = 10,
    auxiliary: bool = True,
) -> _Network:
    """NetworkCIFAR (kind='cifar', any image size) or NetworkImageNet (kind='imagenet')."""
    if kind == "imagenet":
        return NetworkImageNet(genotype, c, num_classes, layers, auxiliary)
    return NetworkCIFAR(genotype, c, num_classes, layers, auxiliary)
