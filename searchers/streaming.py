"""A search split streamed from an ImageNet-layout folder (PC-DARTS's ImageNet search).

PC-DARTS searches on ImageNet with 10% / 2.5% per-class subsets of the train set read through
DataLoaders (yuhuixu1993/PC-DARTS train_search_imagenet.py): 128k + 32k images do not fit a device, so
this split keeps only the labels resident and decodes images on demand. It has the interface of
:class:`searchers.splits.SplitData` that the loop and the strategies use (``len``, ``labels``,
``dataset_indices``, ``mean``/``std``, ``batch``, ``raw``, ``epoch_batches``, ``eval_batches``), but no
``images`` tensor:

* ``epoch_batches`` and ``eval_batches`` decode in DataLoader worker processes (``workers``; 0 = in
  process); the training order and every example's crop and flip come from (seed, epoch) only, so a
  resumed search sees the same batches;
* ``batch(positions, generator)`` (a strategy's random draw of validation examples) decodes in a
  thread pool of the same size, with one augmentation seed per example drawn from ``generator``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from searchers.base import Batch
from wcbench.data.imagenet import ImageFiles
from wcbench.seeding import derive_seed

_SEED_HIGH = 2**62


class StreamedSplit:
    """One half of a search split whose images stay on disk (module docstring)."""

    def __init__(
        self,
        files: ImageFiles,
        dataset_indices: Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device,
        *,
        augment: bool = True,
        channels_last: bool = False,
        workers: int = 0,
    ) -> None:
        self.files = files
        self.device = torch.device(device)
        self.dataset_indices = dataset_indices.to("cpu", torch.int64)
        self.labels = files.labels.index_select(0, self.dataset_indices).to(self.device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.augment = augment
        self.channels_last = channels_last
        self.workers = int(workers)
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return int(self.dataset_indices.numel())

    @property
    def image_size(self) -> int:
        return self.files.image_size

    # ---------------------------------------------------------------- tensors on the device
    def _finish(self, x_u8: Tensor, positions: Tensor) -> Batch:
        x = x_u8.to(self.device, non_blocking=True).float().div_(255.0)
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels.index_select(0, positions.to(self.device))

    def _decode(self, positions: Tensor, seeds: Tensor) -> Tensor:
        keys = list(zip(self.dataset_indices[positions.cpu()].tolist(), seeds.tolist()))
        if self.workers > 0 and len(keys) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="wcbench-decode")
            views = list(self._pool.map(lambda k: self.files.view(*k), keys))
        else:
            views = [self.files.view(*k) for k in keys]
        return torch.stack(views)

    # ---------------------------------------------------------------- SplitData's interface
    def batch(
        self, positions: Tensor, generator: torch.Generator | None = None, augment: bool | None = None
    ) -> Batch:
        """Examples at ``positions``: ``(x, y)`` on the device, normalised; augmented with seeds drawn
        from ``generator`` (the strategy's CPU generator) unless ``augment`` is False."""
        augment = self.augment if augment is None else augment
        positions = positions.to("cpu", torch.int64)
        b = int(positions.numel())
        if augment:
            seeds = torch.randint(0, _SEED_HIGH, (b,), generator=generator)
        else:
            seeds = torch.full((b,), -1, dtype=torch.int64)
        return self._finish(self._decode(positions, seeds), positions)

    def raw(self, positions: Tensor) -> Batch:
        """Unaugmented [0, 1] images (evaluation view) and labels at ``positions``, on the device."""
        positions = positions.to("cpu", torch.int64)
        x = self._decode(positions, torch.full((int(positions.numel()),), -1, dtype=torch.int64))
        return x.to(self.device).float().div_(255.0), self.labels.index_select(0, positions.to(self.device))

    def _loader(self, batches: list[Tensor], seeds: Tensor) -> Iterator[tuple[Tensor, Batch]]:
        keys = [
            list(zip(self.dataset_indices[pos].tolist(), seeds[pos].tolist(), strict=True)) for pos in batches
        ]
        loader = DataLoader(
            self.files,
            batch_sampler=keys,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
        )
        for pos, (x, _) in zip(batches, loader, strict=True):
            yield pos, self._finish(x, pos)

    def epoch_batches(
        self, batch_size: int, seed: int, epoch: int, drop_last: bool = True
    ) -> Iterator[tuple[Tensor, Batch]]:
        """(positions, (x, y)) of one training epoch, decoded in the loader's workers: the order and
        each example's augmentation seed come from a generator seeded by (seed, epoch) only."""
        g = torch.Generator().manual_seed(derive_seed("search-train", seed, epoch))
        n = len(self)
        order = torch.randperm(n, generator=g)
        seeds = torch.randint(0, _SEED_HIGH, (n,), generator=g)
        if not self.augment:
            seeds = torch.full_like(seeds, -1)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        batches = [order[s : s + batch_size] for s in range(0, stop, batch_size)]
        yield from self._loader(batches, seeds)

    def eval_batches(self, batch_size: int) -> Iterator[tuple[Tensor, Batch]]:
        """(positions, (x, y)) over the whole split in order, the evaluation view."""
        n = len(self)
        batches = [torch.arange(s, min(n, s + batch_size)) for s in range(0, n, batch_size)]
        yield from self._loader(batches, torch.full((n,), -1, dtype=torch.int64))

    def __getstate__(self) -> dict[str, Any]:  # the thread pool stays with its process
        state = dict(self.__dict__)
        state["_pool"] = None
        return state
