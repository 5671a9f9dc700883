"""ImageNet-style image folders streamed from disk with torchvision's ``ImageFolder`` and a DataLoader."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader

from wcbench.data.datasets import QUICK_HINT
from wcbench.errors import DatasetError

if TYPE_CHECKING:
    from torchvision.transforms import Compose

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_transform(train: bool, image_size: int = 224) -> Compose:
    """DARTS's ImageNet transforms: train RandomResizedCrop + flip + ColorJitter(0.4, 0.4, 0.4, 0.2);
    eval Resize(256) + CenterCrop(224) (scaled with ``image_size``); then ToTensor and Normalize."""
    from torchvision import transforms as T

    if train:
        steps = [
            T.RandomResizedCrop(image_size),
            T.RandomHorizontalFlip(),
            T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2),
        ]
    else:
        steps = [T.Resize(int(round(image_size * 256 / 224))), T.CenterCrop(image_size)]
    return T.Compose([*steps, T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def imagefolder_loader(
    root: str | Path,
    split: str,
    batch_size: int,
    train: bool,
    workers: int,
    image_size: int = 224,
    *,
    distributed: bool = False,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader over ``<root>/<split>/<wnid>/*.JPEG`` (ImageNet, ImageNet-C/A/R/Sketch, ...).

    ``train`` picks the augmentation and shuffling; ``distributed`` uses a ``DistributedSampler`` (call
    ``loader.sampler.set_epoch(e)`` each epoch). Missing or empty folders raise DatasetError.
    """
    from torchvision.datasets import ImageFolder

    folder = Path(root).expanduser() / split
    layout = f"ImageFolder layout: {Path(root).expanduser()}/{split}/<wnid>/*.JPEG"
    ways = f"ImageNet-style data cannot be downloaded automatically: put it there, or {QUICK_HINT}"
    if not folder.is_dir():
        raise DatasetError(f"image folder not found at {folder} (expected {layout}); {ways}")
    try:
        dataset = ImageFolder(str(folder), transform=imagenet_transform(train, image_size))
    except (FileNotFoundError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())
        raise DatasetError(
            f"image folder {folder} is unusable ({reason}; expected {layout}); {ways}"
        ) from exc
    sampler = None
    if distributed:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, shuffle=train)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        persistent_workers=workers > 0,
    )
