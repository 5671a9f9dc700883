"""ImageNet-style image folders streamed from disk: torchvision's ``ImageFolder`` and a DataLoader for the
retrain; :class:`ImageFiles` (decoded on demand, seeded per item) for the ImageNet search."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader, Dataset

from wcbench.data.datasets import QUICK_HINT
from wcbench.errors import ConfigError, DatasetError

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


# ------------------------------------------------------------------------------ files decoded on demand


def resolve_imagefolder(name: str, root: str | Path | None = None) -> Path:
    """The folder of ``imagefolder:<path>`` (a relative path: the working directory, then the data root)."""
    from wcbench.data.datasets import resolve_data_root

    key, _, arg = str(name).partition(":")
    if key != "imagefolder" or not arg:
        raise ConfigError(
            f"streaming needs an imagefolder:<path> dataset (train/<wnid>/*.JPEG), got {name!r}; pass "
            f"--dataset imagefolder:<path>, or --set stream=false for a dataset held in memory"
        )
    path = Path(arg).expanduser()
    data_root = resolve_data_root(root)
    if not path.is_absolute() and not path.exists() and (data_root / path).exists():
        path = data_root / path
    return path


def random_resized_crop_params(
    height: int,
    width: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of torchvision's ``RandomResizedCrop.get_params`` (10 tries, then the centre
    crop clamped to ``ratio``), with its numbers drawn from ``generator`` instead of the global RNG."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * float(torch.empty(1).uniform_(scale[0], scale[1], generator=generator))
        aspect = math.exp(
            float(torch.empty(1).uniform_(float(log_ratio[0]), float(log_ratio[1]), generator=generator))
        )
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class ImageFiles(Dataset):
    """Image files decoded on demand to uint8 (3, S, S) RGB, for DataLoader workers.

    An item key is ``(index, seed)``: ``seed < 0`` gives the evaluation view (shorter side resized to
    ``round(S * 256 / 224)``, centre crop S: DARTS's ImageNet eval transform); otherwise the search's
    training view, PC-DARTS's train_search_imagenet.py ``RandomResizedCrop(S)`` + ``RandomHorizontalFlip``
    with its numbers drawn from ``torch.Generator().manual_seed(seed)``, so a batch is the same in any
    worker and on resume. Returns ``(image, label)``.
    """

    def __init__(self, files: list[Path], labels: list[int], image_size: int = 224) -> None:
        self.files = [str(f) for f in files]
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.image_size = int(image_size)

    def __len__(self) -> int:
        return len(self.files)

    def decode(self, index: int) -> torch.Tensor:
        """The file as uint8 (3, H, W) RGB (Pillow: libjpeg-turbo, the GIL released while decoding)."""
        import numpy as np
        from PIL import Image

        with Image.open(self.files[index]) as im:
            return torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)

    def view(self, index: int, seed: int) -> torch.Tensor:
        """Item ``index`` as uint8 (3, S, S): augmented by ``seed`` (>= 0) or the evaluation view."""
        from torchvision.transforms import functional as TF

        img = self.decode(index)
        s = self.image_size
        if seed < 0:
            img = TF.resize(img, int(round(s * 256 / 224)), antialias=True)
            return TF.center_crop(img, [s, s])
        g = torch.Generator().manual_seed(int(seed))
        top, left, h, w = random_resized_crop_params(int(img.shape[1]), int(img.shape[2]), g)
        img = TF.resized_crop(img, top, left, h, w, [s, s], antialias=True)
        if float(torch.rand(1, generator=g)) < 0.5:
            img = TF.hflip(img)
        return img

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = key
        return self.view(int(index), int(seed)), int(self.labels[int(index)])
