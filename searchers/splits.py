"""The search split held in memory: its two halves (:class:`SplitData`, search-train D_tr and
search-validation D_val, resident on the device and addressed by position), endless index streams over
them, and the passes the loop makes over a half (BatchNorm recalibration, evaluation). The streamed
split for data too large to hold (ImageNet) is :mod:`searchers.streaming`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wcbench.seeding import derive_seed

Batch = tuple[Tensor, Tensor]
"""(x, y): a normalised image batch and its int64 labels, on the device."""


def _epoch_seed(seed: int, epoch: int, salt: str) -> int:
    return derive_seed(salt, seed, epoch)


class SplitData:
    """One half of the search split, resident on the device, addressable by position.

    ``images`` uint8 (n, 3, H, W) and ``labels`` int64 (n,) live on ``device``; ``dataset_indices``
    (CPU int64, (n,)) maps a position 0..n-1 to the example's index in the dataset's train split
    (what the history reports as "which examples"). ``batch(positions, generator)`` returns a
    normalised float batch, augmented as DARTS's search queues are (zero-padded random crop 4 and
    horizontal flip, random numbers drawn on the CPU ``generator`` so a batch is the same on any
    device); ``eval_batches`` yields unaugmented batches in order.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        dataset_indices: Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device,
        augment: bool = True,
        crop_padding: int = 4,
        channels_last: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.dataset_indices = dataset_indices.to("cpu", torch.int64)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.augment = augment
        self.crop_padding = crop_padding
        self.channels_last = channels_last

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(
        self, positions: Tensor, generator: torch.Generator | None = None, augment: bool | None = None
    ) -> Batch:
        """Examples at ``positions`` (CPU or device int64): ``(x, y)`` on the device."""
        from wcbench.data.loaders import random_crop, random_flip

        augment = self.augment if augment is None else augment
        pos = positions.to(self.device)
        x = self.images.index_select(0, pos).float().div_(255.0)
        if augment:
            b = int(positions.numel())
            span = 2 * self.crop_padding + 1
            dy = torch.randint(span, (b,), generator=generator)
            dx = torch.randint(span, (b,), generator=generator)
            flip = torch.rand(b, generator=generator) < 0.5
            if self.crop_padding:
                x = random_crop(x, dy.to(self.device), dx.to(self.device), self.crop_padding)
            x = random_flip(x, flip.to(self.device))
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels.index_select(0, pos)

    def raw(self, positions: Tensor) -> Batch:
        """Unaugmented [0, 1] images and labels at ``positions`` (what a tester starts from)."""
        p = positions.to(self.images.device)
        return self.images.index_select(0, p).float() / 255, self.labels.index_select(0, p)

    def epoch_batches(
        self, batch_size: int, seed: int, epoch: int, drop_last: bool = True
    ) -> Iterator[tuple[Tensor, Batch]]:
        """(positions, (x, y)) of one training epoch: a permutation and augmentation drawn from a
        generator seeded by (seed, epoch) only, so a resumed run sees the same batches. A last
        partial batch is dropped (``drop_last``) so batch norm never sees a batch of one."""
        g = torch.Generator().manual_seed(_epoch_seed(seed, epoch, "search-train"))
        n = len(self)
        order = torch.randperm(n, generator=g)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for start in range(0, stop, batch_size):
            pos = order[start : start + batch_size]
            yield pos, self.batch(pos, generator=g)

    def eval_batches(self, batch_size: int) -> Iterator[tuple[Tensor, Batch]]:
        """(positions, (x, y)) over the whole split in order, without augmentation."""
        n = len(self)
        for start in range(0, n, batch_size):
            pos = torch.arange(start, min(n, start + batch_size))
            yield pos, self.batch(pos, augment=False)


class IndexStream:
    """Endless batches of positions drawn from ``pool``: a fresh permutation (from ``generator``)
    each pass, consumed ``batch_size`` at a time; a pass's tail shorter than a batch is skipped, so
    every batch has ``min(batch_size, len(pool))`` distinct examples. ``weights`` (optional, same
    length as ``pool``) are carried along for weighted objectives."""

    def __init__(
        self, pool: Tensor, batch_size: int, generator: torch.Generator, weights: Tensor | None = None
    ) -> None:
        if pool.numel() == 0:
            raise ValueError("IndexStream needs a non-empty pool")
        self.pool = pool.to("cpu", torch.int64)
        self.weights = None if weights is None else weights.to("cpu")
        self.batch_size = min(int(batch_size), int(self.pool.numel()))
        self.generator = generator
        self._order = torch.empty(0, dtype=torch.int64)

    def next(self) -> tuple[Tensor, Tensor | None]:
        """(positions, weights or None) of the next batch."""
        if self._order.numel() < self.batch_size:
            self._order = torch.randperm(self.pool.numel(), generator=self.generator)
        take, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
        return self.pool[take], None if self.weights is None else self.weights[take]

    def state_dict(self) -> dict[str, Any]:
        return {"order": self._order.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._order = state["order"].to("cpu", torch.int64)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, data: SplitData, batch_size: int) -> None:
    """Recompute every BatchNorm's running statistics as the plain average over one unaugmented pass
    of ``data`` in train mode, as one-shot supernets are evaluated (SPOS, Guo et al., ECCV 2020): a
    supernet whose weights move fast has running averages that lag its batch statistics, and in
    few steps (a small dataset) its eval-mode accuracy stays near chance while it fits the data.
    The global RNG (dropout on skip connections) is left as it was."""
    norm = nn.modules.batchnorm._BatchNorm
    bns = [m for m in model.modules() if isinstance(m, norm) and m.track_running_stats]
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    with torch.random.fork_rng(devices=[data.device] if data.device.type == "cuda" else []):
        for _, (x, _) in data.eval_batches(batch_size):
            model(x)
    model.train(was_training)
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum


@torch.no_grad()
def evaluate_split(model: nn.Module, data: SplitData, batch_size: int) -> tuple[Tensor, Tensor]:
    """(per-example CE losses (n,), predicted classes (n,)) in eval mode, no grad, on the device."""
    was_training = model.training
    model.eval()
    losses, preds = [], []
    for _, (x, y) in data.eval_batches(batch_size):
        logits = model(x).float()
        losses.append(F.cross_entropy(logits, y, reduction="none"))
        preds.append(logits.argmax(1))
    model.train(was_training)
    return torch.cat(losses), torch.cat(preds)
