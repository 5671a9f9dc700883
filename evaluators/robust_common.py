"""Inference helpers of the robustness scorers (cifar-c, imagenet-c, imagenet-a/-r/-sketch, worst-case).

- :func:`predict_nhwc`: logits-derived predictions for uint8 (N, H, W, 3) arrays, memory maps included,
  read a batch at a time (pinned host memory, non-blocking copies, bf16 autocast on CUDA).
- :class:`JpegSamples`: (path, label, group) samples of ImageNet-style folders, decoded by PIL in
  DataLoader worker processes with the evaluation transform (Resize + CenterCrop, as the official
  ImageNet-C/A/R/Sketch evaluation scripts).
- :func:`model_classes`: the class names (wnids) a retrained model's outputs stand for, from its
  ``retrain.json``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evaluators.common import LogitsOnly, ScoreContext, read_retrain_record
from wcbench.errors import DatasetError

IMG_EXTENSIONS = (".jpeg", ".jpg", ".png", ".ppm", ".bmp", ".webp", ".tif", ".tiff")


def autocast(device: torch.device) -> Any:
    """bf16 autocast on CUDA, nothing elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def eval_model(ctx: ScoreContext) -> nn.Module:
    """The trained network returning logits only, in eval mode (channels_last on CUDA)."""
    model = LogitsOnly(ctx.network()).eval()
    if ctx.device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def default_workers() -> int:
    from wcbench.cpus import default_workers as shared  # allowed CPUs - 1 (at most 8), or WCBENCH_WORKERS

    return shared()


def predict_nhwc(
    model: nn.Module,
    images: np.ndarray,
    rows: np.ndarray | range,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device,
    batch_size: int,
    topk: int = 1,
) -> torch.Tensor:
    """Top-``topk`` predicted classes (len(rows), topk) for ``images[rows]`` (uint8 NHWC, e.g. a memmap).

    Rows are read in order, ``batch_size`` at a time, so only one batch is in host memory at once.
    """
    rows = np.asarray(rows, dtype=np.int64)
    m = torch.tensor(list(mean), dtype=torch.float32, device=device).view(1, 3, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32, device=device).view(1, 3, 1, 1)
    cuda = device.type == "cuda"
    out = []
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            sel = rows[start : start + batch_size]
            contiguous = sel.size and sel[-1] - sel[0] + 1 == sel.size
            block = images[sel[0] : sel[-1] + 1] if contiguous else images[sel]
            x = torch.from_numpy(np.array(block, dtype=np.uint8, copy=True))  # reads the memmap rows
            if cuda:
                x = x.pin_memory().to(device, non_blocking=True)
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            x = (x - m) / s
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device):
                logits = model(x)
            k = min(topk, logits.shape[1])
            out.append(logits.float().topk(k, dim=1).indices.cpu())
    if not out:
        return torch.empty(0, topk, dtype=torch.int64)
    return torch.cat(out)


def model_classes(ctx: ScoreContext) -> list[str] | None:
    """Class names of the model's outputs (``retrain.json`` ``classes``, or what an external model
    declares), if recorded."""
    if ctx.external is not None:
        classes = ctx.external.classes
        return list(classes) if classes is not None and len(classes) == ctx.num_classes else None
    if ctx.model_dir is None:
        return None
    classes = read_retrain_record(ctx.model_dir).get("classes")
    if isinstance(classes, list) and len(classes) == ctx.num_classes:
        return [str(c) for c in classes]
    return None


def list_class_folders(folder: Path, layout: str, what: str) -> list[str]:
    """Sorted sub-folder names of ``folder``; a missing or empty folder is a one-line DatasetError."""
    if not folder.is_dir():
        raise DatasetError(
            f"{what} not found at {folder} (expected {layout}); it cannot be downloaded by wcbench"
        )
    names = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    if not names:
        raise DatasetError(f"{what} at {folder} has no class folders (expected {layout})")
    return names


def list_images(folder: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, _dirs, names in sorted(os.walk(folder, followlinks=True)):
        found += [Path(dirpath) / n for n in sorted(names) if n.lower().endswith(IMG_EXTENSIONS)]
    return found


def eval_transform(image_size: int, resize: int | None = None) -> Callable[[Any], torch.Tensor]:
    """Resize(resize or image_size * 256 / 224) + CenterCrop(image_size) + ToTensor (no normalisation)."""
    from torchvision import transforms as T

    size = resize if resize is not None else int(round(image_size * 256 / 224))
    return T.Compose([T.Resize(size), T.CenterCrop(image_size), T.ToTensor()])


class JpegSamples(torch.utils.data.Dataset):
    """``(path, label, group)`` samples decoded with PIL (RGB) and ``transform``; yields (x, label, group)."""

    def __init__(self, samples: Sequence[tuple[str, int, int]], transform: Callable[[Any], torch.Tensor]):
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        from PIL import Image

        path, label, group = self.samples[i]
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except Exception as exc:  # noqa: BLE001 - any decoder failure names the file
            raise DatasetError(f"cannot decode image {path} ({type(exc).__name__}: {exc})") from exc
        return self.transform(img), label, group


def iterate_predictions(
    model: nn.Module,
    dataset: JpegSamples,
    ctx: ScoreContext,
    batch_size: int,
    workers: int,
    topk: int = 5,
    logit_indices: Sequence[int] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(top-k predictions, labels, groups) per batch; JPEGs decoded in ``workers`` processes.

    ``logit_indices`` restricts the model's outputs to those columns (ImageNet-A/R's 200 classes)
    before ranking; predictions are then positions in that list.
    """
    device = ctx.device
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    m = torch.tensor(list(ctx.mean), dtype=torch.float32, device=device).view(1, 3, 1, 1)
    s = torch.tensor(list(ctx.std), dtype=torch.float32, device=device).view(1, 3, 1, 1)
    cols = (
        None
        if logit_indices is None
        else torch.as_tensor(list(logit_indices), dtype=torch.int64, device=device)
    )
    with torch.inference_mode():
        for x, y, g in loader:
            x = x.to(device, non_blocking=True)
            x = (x - m) / s
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device):
                logits = model(x)
            logits = logits.float()
            if cols is not None:
                logits = logits.index_select(1, cols)
            k = min(topk, logits.shape[1])
            yield logits.topk(k, dim=1).indices.cpu(), y, g
