"""Per-epoch diagnostics of a tester (paper Fig. 1 left, Fig. 2): what the ``ours`` strategy logs.

* :func:`reference_classifier` -- a fixed classifier (ResNet-18 in the paper, App. D.3) trained once on
  search-train and cached; :func:`classifier_error` is its error on the epoch's generated validation
  set (Fig. 1 left: the generated data get harder as the search goes on);
* :func:`probe_val_loss` -- the D_val loss of a fresh small classifier trained on the generated set
  (a measure of their usefulness that does not depend on V);
* :func:`save_grid` -- a PNG grid of generated examples (Fig. 2).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import filelock
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from searchers.testers.auxiliary import build_classifier, train_classifier
from searchers.testers.pretrain import cache_key, image_size
from wcbench.checkpoints import save_checkpoint
from wcbench.errors import ConfigError
from wcbench.files import atomic_write_bytes
from wcbench.phases import phase

log = logging.getLogger("wcbench.ours")


def reference_classifier(
    train: Any,
    *,
    dataset: str,
    num_classes: int,
    stats: tuple[Sequence[float], Sequence[float]],
    arch: str,
    width: int,
    iters: int,
    cache_dir: Path,
    device: torch.device,
    generator: torch.Generator,
) -> nn.Module:
    """The fixed reference classifier (eval mode, frozen): loaded from ``cache_dir`` when there, else
    trained on the search-train split ``train`` (numbers from ``generator``) and cached. The
    initialisation draws from the global RNG either way."""
    settings = {"arch": arch, "width": width, "iters": iters, "batch": 128}
    if not hasattr(train, "images"):
        raise ConfigError(
            "the reference classifier (Fig. 1) trains on a search split held in memory; a streamed "
            "(stream=true) search has none: --set strategy.reference_iters=0"
        )
    size = image_size(train)
    if size != 32:  # a search at another resolution (32: the key as before)
        settings["resolution"] = size
    path = cache_dir / f"{cache_key('reference', dataset, train.dataset_indices, settings)}.pt"
    model = build_classifier(arch, num_classes, width, *stats).to(device)
    path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(path) + ".lock"):  # one writer; a concurrent run waits, then loads
        if path.exists():
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        else:
            log.info("ours: training the reference classifier into %s", path)
            with (
                phase("tester: reference classifier", "tester", device, setting="reference_iters") as clock,
                clock.part("step", iters),
            ):
                train_classifier(
                    model,
                    train.images,
                    train.labels,
                    iters=iters,
                    batch_size=min(128, len(train)),
                    generator=generator,
                )
            save_checkpoint(path, model.state_dict())
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@torch.no_grad()
def classifier_error(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 500) -> float:
    """Top-1 error (fraction) of ``model`` (eval mode) on [0, 1] images ``x``."""
    was = model.training
    model.eval()
    wrong = 0
    for s in range(0, x.shape[0], batch_size):
        wrong += int((model(x[s : s + batch_size]).argmax(1) != y[s : s + batch_size]).sum())
    model.train(was)
    return wrong / max(1, x.shape[0])


def probe_val_loss(
    generated: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    *,
    num_classes: int,
    stats: tuple[Sequence[float], Sequence[float]],
    iters: int,
    device: torch.device,
    generator: torch.Generator,
) -> float:
    """D_val loss of a fresh small classifier (width 8) trained ``iters`` SGD steps on the generated
    set (no augmentation; numbers from ``generator``, initialisation from the global RNG)."""
    x, y = generated
    xv, yv = val
    model = build_classifier("small", num_classes, 8, *stats)
    model = model.to(device)
    images = (x * 255).round().clamp(0, 255).to(torch.uint8)
    with torch.enable_grad():
        train_classifier(
            model,
            images,
            y,
            iters=iters,
            batch_size=min(64, x.shape[0]),
            lr=0.05,
            generator=generator,
            augment=False,
        )
    with torch.no_grad():
        return float(F.cross_entropy(model(xv), yv))


def save_grid(x: Tensor, path: Path, nrow: int) -> None:
    """Save [0, 1] images (N, 3, H, W) as a PNG grid, atomically."""
    from torchvision.utils import save_image

    buf = io.BytesIO()
    save_image(x.detach().float().cpu().clamp(0, 1), buf, format="png", nrow=nrow, padding=1)
    atomic_write_bytes(path, buf.getvalue())


def trajectory_point(epoch: int, stats: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one epoch that :func:`save_curves` draws: the reference classifier's accuracy on
    the generated validation set (Fig. 1 left, as accuracy), the tester's upper-level variables (B's
    values; the policy's entropy; the selection's mean) and the adversarial loss."""
    point: dict[str, Any] = {"epoch": int(epoch)}
    err = stats.get("reference_error")
    point["reference_accuracy"] = None if err is None else 1.0 - float(err)
    for key in ("adversarial_loss", "policy_entropy", "selection_mean"):
        if isinstance(stats.get(key), int | float):
            point[key] = float(stats[key])
    if isinstance(stats.get("B"), dict):
        point["B"] = {k: float(v) for k, v in stats["B"].items() if isinstance(v, int | float)}
    return point


def save_curves(trajectory: Sequence[dict[str, Any]], path: Path) -> None:
    """Draw the tester's trajectory over the search epochs as a PNG beside the sample grids: the
    reference classifier's accuracy on this epoch's generated data (the curve of Fig. 1, left) and
    the upper-level variables (B for a GAN tester, the policy's entropy for the augmentation one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [p["epoch"] for p in trajectory]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    acc = [p.get("reference_accuracy") for p in trajectory]
    if any(a is not None for a in acc):
        left.plot(epochs, [100 * a if a is not None else float("nan") for a in acc], "o-", color="C0")
    left.set_xlabel("search epoch")
    left.set_ylabel("accuracy (%)")
    left.set_title("reference classifier on generated data", fontsize=10)
    left.set_ylim(0, 100)
    names = sorted({k for p in trajectory for k in p.get("B", {})})
    if names:
        for name in names:
            right.plot(epochs, [p.get("B", {}).get(name, float("nan")) for p in trajectory], "o-", label=name)
        right.legend(fontsize=8, loc="best")
        right.set_title("tester's hyperparameters B", fontsize=10)
    else:
        key = next((k for k in ("policy_entropy", "selection_mean") if any(k in p for p in trajectory)), None)
        if key is not None:
            right.plot(epochs, [p.get(key, float("nan")) for p in trajectory], "o-", color="C1")
        right.set_title(key.replace("_", " ") if key else "tester", fontsize=10)
    right.set_xlabel("search epoch")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
