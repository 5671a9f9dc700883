"""Device-resident batches with augmentation on tensors (CIFAR-sized data, CPU or CUDA alike).

The augmentation is DARTS's CIFAR pipeline, batched: ``RandomCrop(H, padding=4)`` (zero padding),
``RandomHorizontalFlip()``, ``ToTensor()``, ``Normalize(mean, std)``, then ``Cutout(L)`` (the square is
zeroed after normalisation, as in DARTS). Every random number comes from one CPU ``torch.Generator``
seeded from ``(seed, epoch)``, so a run resumed at epoch ``e`` sees exactly the batches it would have
seen, on any device.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from wcbench.data.datasets import ArrayDataset
from wcbench.seeding import derive_seed


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(x - mean) / std`` per channel for float images in [0, 1] of shape (N, 3, H, W); a new tensor."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


class Normalize(torch.nn.Module):
    """:func:`normalize` as a module with the statistics as buffers, to put in front of a network that
    takes images in [0, 1] (attack wrappers, the tester's auxiliary models)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed from (seed, epoch), stable across platforms and Python versions."""
    return derive_seed("loader", seed, epoch)


def random_crop(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, padding: int) -> torch.Tensor:
    """Batched ``RandomCrop(H, padding)``: zero-pad by ``padding``, take the HxW window at (dy, dx) per image.

    ``dy``/``dx`` are int64 offsets in ``[0, 2 * padding]`` on ``x``'s device; (padding, padding) is the
    identity.
    """
    b, c, h, w = x.shape
    wp = w + 2 * padding
    padded = F.pad(x, (padding, padding, padding, padding)).view(b, c, -1)
    dev = x.device
    rows = dy.view(b, 1, 1) + torch.arange(h, device=dev).view(1, h, 1)
    cols = dx.view(b, 1, 1) + torch.arange(w, device=dev).view(1, 1, w)
    flat = (rows * wp + cols).view(b, 1, h * w).expand(b, c, h * w)  # one gather for the whole batch
    return padded.gather(2, flat).view(b, c, h, w)


def random_flip(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images where the bool tensor ``flip`` (N,) is true."""
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def cutout(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, length: int) -> torch.Tensor:
    """DARTS's ``Cutout(length)`` batched: zero the square centred at (cy, cx), clipped at the borders.

    As in DARTS the square spans ``[c - length // 2, c + length // 2)``, so an odd ``length`` gives a
    side of ``length - 1``.
    """
    _, _, h, w = x.shape
    dev = x.device
    half = length // 2
    y1, y2 = (cy - half).clamp(0, h), (cy + half).clamp(0, h)
    x1, x2 = (cx - half).clamp(0, w), (cx + half).clamp(0, w)
    r = torch.arange(h, device=dev).view(1, h)
    c = torch.arange(w, device=dev).view(1, w)
    in_rows = (r >= y1.view(-1, 1)) & (r < y2.view(-1, 1))
    in_cols = (c >= x1.view(-1, 1)) & (c < x2.view(-1, 1))
    mask = in_rows.unsqueeze(2) & in_cols.unsqueeze(1)
    return x.masked_fill(mask.unsqueeze(1), 0.0)


class DeviceLoader:
    """Batches ``(x, y)`` of an :class:`ArrayDataset` kept as uint8 on ``device``.

    Per batch: gather, convert to float in [0, 1], then, if ``augment``, random crop (padding
    ``crop_padding``, zero fill) and random horizontal flip; then normalise with the dataset's
    mean/std (unless ``normalize=False``, which yields [0, 1] images, e.g. for attacks); then, if
    ``cutout > 0``, DARTS's Cutout (zeros in the output tensor). All steps are vectorised over the batch.

    Call ``set_epoch(e)`` before iterating epoch ``e``: order and augmentation depend only on
    ``(seed, epoch)``; iterating twice without it repeats the same epoch (like ``DistributedSampler``).
    """

    def __init__(
        self,
        dataset: ArrayDataset,
        batch_size: int,
        *,
        shuffle: bool,
        augment: bool,
        cutout: int = 0,
        drop_last: bool = False,
        device: str | torch.device = "cpu",
        seed: int = 0,
        normalize: bool = True,
        channels_last: bool = False,
        crop_padding: int = 4,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if cutout < 0 or crop_padding < 0:
            raise ValueError("cutout and crop_padding must be non-negative")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.augment = augment
        self.cutout = int(cutout)
        self.drop_last = drop_last
        self.device = torch.device(device)
        self.seed = int(seed)
        self.normalize = normalize
        self.channels_last = channels_last
        self.crop_padding = int(crop_padding)
        self.epoch = 0
        non_blocking = self.device.type == "cuda"
        self.images = dataset.images.to(self.device, non_blocking=non_blocking)
        self.labels = dataset.labels.to(self.device, non_blocking=non_blocking)
        self.mean = torch.tensor(dataset.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(dataset.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration reproduces."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_examples(self) -> int:
        return len(self.dataset)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        n = len(self.dataset)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        _, _, h, w = self.images.shape
        span = 2 * self.crop_padding + 1
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            b = idx.numel()
            # all random numbers from the CPU generator in a fixed order, whatever the device;
            # one host-to-device copy per batch
            rows = [idx]
            if self.augment:
                rows += [
                    torch.randint(span, (b,), generator=g),
                    torch.randint(span, (b,), generator=g),
                    (torch.rand(b, generator=g) < 0.5).long(),
                ]
            if self.cutout > 0:
                rows += [torch.randint(h, (b,), generator=g), torch.randint(w, (b,), generator=g)]
            packed = torch.stack(rows).to(self.device, non_blocking=True)
            idx_dev, rest = packed[0], packed[1:]
            x = self.images.index_select(0, idx_dev)
            if self.augment:  # crop and flip commute with the conversion: do them on uint8
                dy, dx, flip, rest = rest[0], rest[1], rest[2].bool(), rest[3:]
                if self.crop_padding:
                    x = random_crop(x, dy, dx, self.crop_padding)
                x = random_flip(x, flip)
            x = x.float().div_(255.0)
            if self.normalize:
                x = (x - self.mean) / self.std
            if self.cutout > 0:
                x = cutout(x, rest[0], rest[1], self.cutout)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels.index_select(0, idx_dev)
