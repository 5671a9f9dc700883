"""`imagenet-a`, `imagenet-r`, `imagenet-sketch`: distribution shifts of ImageNet (paper Tables 10-12).

- ImageNet-A (Hendrycks et al. 2021, ``<root>/<wnid>/*.jpg``, 200 classes) and ImageNet-R (Hendrycks et
  al. 2021, same layout, another 200 classes): a 1000-way ImageNet model is scored on its logits at
  the official 200 indices (:mod:`evaluators.imagenet_classes`, ascending, aligned with the sorted
  wnids), as both official ``eval.py`` scripts do; the label of folder ``wnid`` is its position in the
  200. The paper reports ImageNet-A as accuracy and ImageNet-R as top-1 error; both are in the score.
- ImageNet-Sketch (Wang et al. 2019, ``<root>/<wnid>/*.JPEG``, all 1000 classes, 50 per class): top-1
  and top-5 accuracy over the full 1000-way output (the paper reports accuracy).

Transform: Resize(256) + CenterCrop(224) (scaled with the model's input size) + the model's
normalisation, as the official scripts. JPEGs are decoded by ``workers`` DataLoader processes; on CUDA,
bf16 autocast. A folder with only some of the classes is scored on those (a ``complete`` flag says).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evaluators.common import ScoreContext, Scorer, ScoreResult, metric
from evaluators.imagenet_c import class_index
from evaluators.imagenet_classes import (
    IMAGENET_A_INDICES,
    IMAGENET_A_WNIDS,
    IMAGENET_R_INDICES,
    IMAGENET_R_WNIDS,
)
from evaluators.robust_common import (
    JpegSamples,
    default_workers,
    eval_model,
    eval_transform,
    iterate_predictions,
    list_class_folders,
    list_images,
    model_classes,
)
from wcbench.data import resolve_data_root
from wcbench.errors import ConfigError, DatasetError
from wcbench.metrics import MetricSpec
from wcbench.registry import SCORERS

IMAGENET_CLASSES = 1000


def subset_mask(indices: tuple[int, ...], num_classes: int = IMAGENET_CLASSES) -> np.ndarray:
    """Boolean mask over the 1000 outputs that is true exactly at ``indices`` (the official ``*_mask``)."""
    mask = np.zeros(num_classes, dtype=bool)
    mask[list(indices)] = True
    return mask


class VariantParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root: str | None = Field(None, description="the dataset folder of <wnid> sub-folders (default: see doc)")
    batch_size: int = Field(256, ge=1)
    workers: int | None = Field(None, ge=0, description="JPEG decoding processes (default: cores - 1, max 8)")
    max_per_class: int | None = Field(None, ge=1, description="at most this many images per class folder")


class _SubsetScorer(Scorer):
    """Shared body of the 200-class scorers."""

    folder: ClassVar[str] = ""
    title: ClassVar[str] = ""
    indices: ClassVar[tuple[int, ...]] = ()
    wnids: ClassVar[tuple[str, ...]] = ()
    headline: ClassVar[str] = "top1_accuracy"
    Params = VariantParams
    metrics = (
        MetricSpec("top1_accuracy", "%", "higher", "top-1 accuracy"),
        MetricSpec("top1_error", "%", "lower", "top-1 error"),
    )

    def check_model(self, ctx: ScoreContext) -> None:
        if ctx.num_classes != IMAGENET_CLASSES:
            raise ConfigError(
                f"{self.name} scores a 1000-way ImageNet model on its {len(self.indices)}-class logits; this "
                f"model has {ctx.num_classes} outputs (trained on {ctx.dataset!r})"
            )
        classes = model_classes(ctx)
        if classes is not None:
            wrong = [
                (w, i, classes[i]) for w, i in zip(self.wnids, self.indices, strict=True) if classes[i] != w
            ]
            if wrong:
                w, i, got = wrong[0]
                raise ConfigError(
                    f"{self.name}: the model's output {i} is class {got!r}, the official index list expects "
                    f"{w!r}: its classes are not in the standard ImageNet order (sorted wnids)"
                )

    def run(self, ctx: ScoreContext, params: VariantParams) -> ScoreResult:
        self.check_model(ctx)
        root = (
            Path(params.root).expanduser() if params.root else resolve_data_root(ctx.data_root) / self.folder
        )
        layout = f"{self.title}: <root>/<wnid>/*.jpg with wnids among the official {len(self.wnids)}"
        folders = list_class_folders(root, layout, self.title)
        position = {w: i for i, w in enumerate(self.wnids)}
        unknown = [f for f in folders if f not in position]
        if unknown:
            raise DatasetError(
                f"{root}: folders {unknown[:3]} are not {self.title} classes (expected {layout})"
            )
        samples: list[tuple[str, int, int]] = []
        for f in folders:
            files = list_images(root / f)
            if params.max_per_class is not None:
                files = files[: params.max_per_class]
            samples += [(str(p), position[f], 0) for p in files]
        if not samples:
            raise DatasetError(f"no images under {root} (expected {layout})")
        model = eval_model(ctx)
        dataset = JpegSamples(samples, eval_transform(ctx.image_size))
        workers = default_workers() if params.workers is None else params.workers
        correct = seen = 0
        it = iterate_predictions(
            model, dataset, ctx, params.batch_size, workers, topk=1, logit_indices=self.indices
        )
        for pred, y, _ in it:
            correct += int((pred[:, 0] == y).sum())
            seen += int(y.shape[0])
        acc = 100.0 * correct / max(seen, 1)
        return ScoreResult(
            metrics={"top1_accuracy": metric(acc, "%"), "top1_error": metric(100.0 - acc, "%")},
            dataset=self.name,
            split="test",
            num_examples=seen,
            details={"root": str(root), "workers": workers},
            extra={
                "headline": self.headline,
                "classes_present": len(folders),
                "complete": len(folders) == len(self.wnids),
                "logit_indices": f"official {len(self.indices)}-class index list ({self.name})",
            },
        )


@SCORERS.register("imagenet-a")
class ImagenetAScorer(_SubsetScorer):
    """Top-1 accuracy (%) on ImageNet-A, 1000-way model on the 200 official logits (paper Table 10)."""

    name = "imagenet-a"
    version = "1"
    folder = "imagenet-a"
    title = "ImageNet-A"
    indices = IMAGENET_A_INDICES
    wnids = IMAGENET_A_WNIDS
    headline = "top1_accuracy"


@SCORERS.register("imagenet-r")
class ImagenetRScorer(_SubsetScorer):
    """Top-1 error (%) on ImageNet-R, 1000-way model on the 200 official logits (paper Table 11)."""

    name = "imagenet-r"
    version = "1"
    folder = "imagenet-r"
    title = "ImageNet-R"
    indices = IMAGENET_R_INDICES
    wnids = IMAGENET_R_WNIDS
    headline = "top1_error"


@SCORERS.register("imagenet-sketch")
class ImagenetSketchScorer(Scorer):
    """Top-1 and top-5 accuracy (%) on ImageNet-Sketch over all 1000 classes (paper Table 12)."""

    name = "imagenet-sketch"
    version = "1"
    Params = VariantParams
    metrics = (
        MetricSpec("top1_accuracy", "%", "higher", "top-1 accuracy"),
        MetricSpec("top5_accuracy", "%", "higher", "top-5 accuracy"),
        MetricSpec("top1_error", "%", "lower", "top-1 error"),
        MetricSpec("top5_error", "%", "lower", "top-5 error"),
    )

    def run(self, ctx: ScoreContext, params: VariantParams) -> ScoreResult:
        if params.root:
            root = Path(params.root).expanduser()
        else:
            root = resolve_data_root(ctx.data_root) / "imagenet-sketch"
            if (root / "sketch").is_dir():  # the official archive unpacks to sketch/
                root = root / "sketch"
        layout = "ImageNet-Sketch: <root>/<wnid>/*.JPEG (1000 wnid folders, the archive's sketch/)"
        folders = list_class_folders(root, layout, "ImageNet-Sketch")
        index = class_index(ctx, folders, root)
        samples: list[tuple[str, int, int]] = []
        for f in folders:
            files = list_images(root / f)
            if params.max_per_class is not None:
                files = files[: params.max_per_class]
            samples += [(str(p), index[f], 0) for p in files]
        if not samples:
            raise DatasetError(f"no images under {root} (expected {layout})")
        model = eval_model(ctx)
        dataset = JpegSamples(samples, eval_transform(ctx.image_size))
        workers = default_workers() if params.workers is None else params.workers
        c1 = c5 = seen = 0
        for pred, y, _ in iterate_predictions(model, dataset, ctx, params.batch_size, workers, topk=5):
            hit = pred.eq(y.view(-1, 1))
            c1 += int(hit[:, :1].any(dim=1).sum())
            c5 += int(hit.any(dim=1).sum())
            seen += int(y.shape[0])
        top1, top5 = 100.0 * c1 / max(seen, 1), 100.0 * c5 / max(seen, 1)
        return ScoreResult(
            metrics={
                "top1_accuracy": metric(top1, "%"),
                "top5_accuracy": metric(top5, "%"),
                "top1_error": metric(100.0 - top1, "%"),
                "top5_error": metric(100.0 - top5, "%"),
            },
            dataset="imagenet-sketch",
            split="test",
            num_examples=seen,
            details={"root": str(root), "workers": workers},
            extra={
                "headline": "top1_accuracy",
                "classes_present": len(folders),
                "complete": len(folders) == IMAGENET_CLASSES,
                "top5_note": "top-5 = top-k with k = min(5, classes)",
            },
        )
