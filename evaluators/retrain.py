"""Retrain a genotype from scratch: the architecture-evaluation stage (paper Appendix D.2, Tables 33-36).

``retrain(genotype, dataset, out_dir, config)`` trains NetworkCIFAR / NetworkImageNet with SGD
(momentum, weight decay, gradient-norm clipping), a per-epoch learning-rate schedule (cosine, or
linear as P-DARTS's ImageNet code, with optional linear warm-up), the auxiliary head (weight
``auxiliary_weight``), drop path ramped linearly ``p * epoch / epochs`` (DARTS train.py), cutout and
label smoothing. The presets are data files, ``wcbench/presets/retrain/<family>.toml``.

A retrain directory holds:

- ``retrain.json``: the resolved config, the genotype (JSON and hash), dataset, seed, classes and
  normalisation; written before the first epoch.
- ``checkpoint.pt``: model, optimizer, epoch and RNG states after each epoch (loaded with
  ``weights_only=True``). Rerunning resumes from it; every epoch reseeds from ``(seed, epoch)`` and the
  loaders draw from ``(seed, epoch)`` only, so on CPU a resumed run ends with bit-identical weights.
- ``history.jsonl``: one line per epoch (lr, train loss/acc, valid loss/acc, wall time, peak memory).
- ``model.pt``: the final weights (a state_dict), written when the last epoch is done.

On CUDA: bf16 autocast, channels_last, the device-resident loader for in-memory datasets, optional
``torch.compile``; under ``torchrun`` (``WORLD_SIZE`` > 1) DDP, with ``batch_size`` the global batch.
A NaN or inf loss (or gradient norm) raises :class:`~wcbench.errors.TrainingError` and leaves the last
checkpoint untouched.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

import wcbench
from evaluators.common import (
    CHECKPOINT_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    RETRAIN_FILE,
    resolve_device,
)
from wcbench.checkpoints import load_checkpoint, save_checkpoint
from wcbench.config import load_preset, resolve_config
from wcbench.devices import peak_memory_mb
from wcbench.errors import CheckpointError, ConfigError, TrainingError
from wcbench.files import append_jsonl, atomic_write_json, atomic_write_text, read_json, read_jsonl
from wcbench.genotype import Genotype
from wcbench.phases import phase
from wcbench.progress import ProgressBars
from wcbench.seeding import derive_seed
from wcbench.tracking import Tracker, log_backends

FAMILIES = ("darts", "pdarts", "pcdarts", "prdarts", "imagenet")
"""Preset files: darts (Table 33), pdarts/pcdarts (Table 34), prdarts (Table 35), imagenet (Table 36)."""

_PUBLISHED_FAMILY = {
    "DARTS_V1": "darts",
    "DARTS_V2": "darts",
    "PDARTS": "pdarts",
    "PC_DARTS_cifar": "pcdarts",
    "PC_DARTS_image": "pcdarts",
    "PRDARTS": "prdarts",
}

# fields that fix the network and the data: a resume must not change them
_STRUCTURAL = ("network", "init_channels", "layers", "auxiliary_weight", "image_size", "stream")


class RetrainConfig(BaseModel):
    """Settings of one retrain; every field of a `paper` preset cites its table in the preset file."""

    model_config = ConfigDict(extra="forbid")

    network: Literal["cifar", "imagenet"] = "cifar"
    image_size: int | None = Field(None, ge=8, description="only for imagefolder data (resize + crop)")
    epochs: int = Field(ge=0)
    batch_size: int = Field(ge=1, description="global batch size (over all DDP ranks)")
    optimizer: Literal["sgd"] = "sgd"
    lr: float = Field(gt=0)
    lr_schedule: Literal["cosine", "linear", "constant"] = "cosine"
    lr_min: float = Field(0.0, ge=0)
    warmup_epochs: int = Field(0, ge=0)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(ge=0)
    init_channels: int = Field(ge=1)
    layers: int = Field(ge=1)
    auxiliary_weight: float = Field(0.0, ge=0, description="0 = no auxiliary head")
    cutout: int = Field(0, ge=0)
    drop_path_prob: float = Field(0.0, ge=0, lt=1)
    grad_clip: float = Field(0.0, ge=0, description="0 = no clipping")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    augment: bool = True
    valid_split: str = Field(
        "auto", description="'auto': val if the dataset has one, else test; 'none' to skip"
    )
    valid_every: int = Field(1, ge=1)
    max_train_examples: int | None = Field(None, ge=1)
    max_steps_per_epoch: int | None = Field(
        None, ge=1, description="cap on training steps per epoch (a rehearsal; the search's setting too)"
    )
    max_valid_examples: int | None = Field(None, ge=1)
    stream: bool | None = Field(
        None, description="stream an ImageNet-style folder (auto: imagenet + imagefolder)"
    )
    workers: int = Field(8, ge=0, description="loader workers when streaming")
    amp: bool = Field(True, description="bf16 autocast on CUDA (ignored on CPU)")
    channels_last: bool = Field(True, description="on CUDA only")
    compile: bool = Field(False, description="torch.compile on CUDA")


# --------------------------------------------------------------------------------------------------
# presets


def algorithm_family(algorithm: str, dataset: str) -> str:
    """The retrain table of a search algorithm's genotypes: Table 36 (``imagenet``) on ImageNet, else
    the algorithm class's ``retrain_family`` (Tables 33-35)."""
    from wcbench.registry import ALGORITHMS

    return "imagenet" if dataset == "imagenet" else ALGORITHMS.get(algorithm).retrain_family


def family_for(genotype_ref: str | Path | None, dataset: str) -> str:
    """The preset family to use when none is given: ``imagenet`` for the dataset named imagenet; else
    the ``retrain_family`` a search recorded in its ``genotype.json`` (a search directory or the file;
    for one written before it was recorded, the family of the algorithm its ``config.json`` names),
    the published name's (DARTS_V2 -> darts), else ``darts``."""
    if dataset == "imagenet":
        return "imagenet"
    text = str(genotype_ref or "").strip()
    if text in _PUBLISHED_FAMILY:
        return _PUBLISHED_FAMILY[text]
    if text.startswith("{"):  # genotype JSON given inline
        try:
            record = json.loads(text)
        except ValueError:
            return "darts"
        return str(record.get("retrain_family") or "darts") if isinstance(record, dict) else "darts"
    if not text or "Genotype(" in text:
        return "darts"
    path = Path(text)
    if path.is_dir():
        path = path / "genotype.json"
    if not path.is_file():
        return "darts"
    try:
        record = read_json(path)
        family = record.get("retrain_family") if isinstance(record, dict) else None
        config = path.with_name("config.json")
        if family is None and config.is_file():
            from wcbench.registry import ALGORITHMS

            algorithm = read_json(config).get("algorithm")
            family = algorithm_family(algorithm, dataset) if algorithm in ALGORITHMS else None
    except (OSError, ValueError, AttributeError, CheckpointError):  # a DARTS string file: no record
        return "darts"
    return str(family) if family else "darts"


def load_retrain_config(
    family: str, preset: str, dataset: str, overrides: Mapping[str, Any] | None = None
) -> RetrainConfig:
    """``presets/retrain/<family>.toml`` ``[preset]`` (+ ``[preset.<dataset>]``) with ``--set`` overrides."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown retrain family {family!r}; choose one of {', '.join(FAMILIES)}")
    values = load_preset("retrain", family, preset, dataset)
    return resolve_config(RetrainConfig, values, dict(overrides or {}))


# --------------------------------------------------------------------------------------------------
# learning rate, seeding, memory


def lr_at(cfg: RetrainConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based), constant within the epoch as in DARTS / P-DARTS."""
    e, n = epoch, max(cfg.epochs, 1)
    if cfg.lr_schedule == "cosine":
        lr = cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * e / n))
    elif cfg.lr_schedule == "linear":  # P-DARTS / PC-DARTS train_imagenet.py adjust_lr
        w = cfg.warmup_epochs
        if n - e > w:
            lr = cfg.lr * (n - w - e) / max(n - w, 1)
        else:
            lr = cfg.lr * (n - e) / (max(n - w, 1) * max(w, 1))
    else:
        lr = cfg.lr
    if e < cfg.warmup_epochs:  # train_imagenet.py: lr * (epoch + 1) / 5 in the first 5 epochs
        lr = lr * (e + 1) / cfg.warmup_epochs
    return float(lr)


def _epoch_seed(seed: int, epoch: int) -> int:
    return derive_seed("retrain", seed, epoch)


# --------------------------------------------------------------------------------------------------
# data


@dataclass
class _Data:
    train: Any
    valid: Any | None
    num_classes: int
    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    image_size: int
    valid_split: str | None
    num_train: int
    num_valid: int


def _splits_of(dataset: str) -> tuple[str, ...]:
    from wcbench.data import DATASET_INFO

    info = DATASET_INFO.get(dataset.partition(":")[0])
    return tuple(info.splits) if info is not None else ("train", "test")


def _resolve_valid_split(cfg: RetrainConfig, dataset: str) -> str | None:
    if cfg.valid_split == "none":
        return None
    splits = _splits_of(dataset)
    if cfg.valid_split == "auto":
        return "val" if "val" in splits else "test"
    if cfg.valid_split not in splits:
        raise ConfigError(
            f"valid_split {cfg.valid_split!r}: dataset {dataset!r} has splits {', '.join(splits)}"
        )
    return cfg.valid_split


def _subset(ds: Any, n: int | None, seed: int) -> Any:
    if n is None or n >= len(ds):
        return ds
    g = torch.Generator().manual_seed(seed)
    return ds.subset(torch.randperm(len(ds), generator=g)[:n].sort().values)


def use_stream(cfg: RetrainConfig, dataset: str) -> bool:
    if cfg.stream is not None:
        return bool(cfg.stream)
    return cfg.network == "imagenet" and dataset.startswith("imagefolder:")


def _make_data(
    cfg: RetrainConfig,
    dataset: str,
    seed: int,
    data_root: str | None,
    download: bool,
    device: torch.device,
    rank: int,
    world: int,
) -> _Data:
    from wcbench.data import DeviceLoader, get_dataset

    valid_split = _resolve_valid_split(cfg, dataset)
    channels_last = cfg.channels_last and device.type == "cuda"
    if use_stream(cfg, dataset):
        from wcbench.data import IMAGENET_MEAN, IMAGENET_STD, imagefolder_loader

        if not dataset.startswith("imagefolder:"):
            raise ConfigError(
                "stream=true needs an imagefolder:<path> dataset (train/ and test/ class folders)"
            )
        root = dataset.partition(":")[2]
        size = cfg.image_size or 224
        per_rank = max(cfg.batch_size // world, 1)
        train = imagefolder_loader(
            root, "train", per_rank, True, cfg.workers, size, distributed=world > 1, drop_last=True
        )
        valid = (
            imagefolder_loader(root, valid_split, per_rank, False, cfg.workers, size, distributed=world > 1)
            if valid_split
            else None
        )
        classes = list(train.dataset.classes)
        return _Data(
            train,
            valid,
            len(classes),
            classes,
            IMAGENET_MEAN,
            IMAGENET_STD,
            size,
            valid_split,
            len(train.dataset),
            len(valid.dataset) if valid is not None else 0,
        )
    size = cfg.image_size if dataset.startswith("imagefolder:") else None
    train_ds = _subset(
        get_dataset(dataset, "train", data_root, download, image_size=size), cfg.max_train_examples, seed
    )
    valid_ds = None
    if valid_split:
        valid_ds = _subset(
            get_dataset(dataset, valid_split, data_root, download, image_size=size),
            cfg.max_valid_examples,
            seed,
        )
    train = DeviceLoader(
        train_ds,
        cfg.batch_size,
        shuffle=True,
        augment=cfg.augment,
        cutout=cfg.cutout,
        drop_last=False,
        device=device,
        seed=seed,
        normalize=True,
        channels_last=channels_last,
    )
    valid = None
    if valid_ds is not None:
        valid = DeviceLoader(
            valid_ds,
            max(cfg.batch_size, 256),
            shuffle=False,
            augment=False,
            device=device,
            seed=seed,
            normalize=True,
            channels_last=channels_last,
        )
    return _Data(
        train,
        valid,
        train_ds.num_classes,
        list(train_ds.classes),
        train_ds.mean,
        train_ds.std,
        train_ds.image_size,
        valid_split,
        len(train_ds),
        len(valid_ds) if valid_ds is not None else 0,
    )


# --------------------------------------------------------------------------------------------------
# the loop


class StopTraining(Exception):
    """Raised by an ``on_epoch_end`` callback to stop after a checkpoint (tests use it to simulate a kill)."""


@dataclass
class RetrainResult:
    out_dir: Path
    epochs_done: int
    resumed_from: int
    finished: bool
    history: list[dict[str, Any]]


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def _check_compatible(out: Path, record: Mapping[str, Any]) -> None:
    """A resume must be of the same genotype, dataset, seed and network as what the directory holds."""
    path = out / RETRAIN_FILE
    if not path.exists():
        return
    old = read_json(path)
    if not isinstance(old, dict):
        raise CheckpointError(f"{path} is not a JSON object; delete {out} to start over")
    diffs = []
    for key in ("genotype_hash", "dataset", "seed", "num_classes"):
        if old.get(key) != record.get(key):
            diffs.append(f"{key} {old.get(key)!r} -> {record.get(key)!r}")
    for key in _STRUCTURAL:
        a, b = old.get("config", {}).get(key), record["config"].get(key)
        if a != b:
            diffs.append(f"{key} {a!r} -> {b!r}")
    if diffs and (out / CHECKPOINT_FILE).exists():
        raise ConfigError(
            f"{out} holds a retrain that differs ({'; '.join(diffs)}); use another --out, or delete {out} "
            f"to start over"
        )


def _with_config_history(out: Path, record: dict[str, Any], start_epoch: int) -> dict[str, Any]:
    """``record`` plus, when a resume changed settings (say a lower lr after a NaN), the earlier ones."""
    record = {**record, "resumed_at_epoch": start_epoch}
    path = out / RETRAIN_FILE
    if start_epoch == 0 or not path.exists():
        return record
    old = read_json(path)
    earlier = list(old.get("earlier_configs", [])) if isinstance(old, dict) else []
    if isinstance(old, dict) and old.get("config") != record["config"]:
        earlier.append({"config": old.get("config"), "until_epoch": start_epoch})
    if earlier:
        record["earlier_configs"] = earlier
    return record


def _unwrap(net: nn.Module) -> nn.Module:
    net = getattr(net, "module", net)  # DDP
    return getattr(net, "_orig_mod", net)  # torch.compile


def _state_dict_cpu(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone() for k, v in _unwrap(net).state_dict().items()}


def retrain(
    genotype: Genotype,
    dataset: str,
    out_dir: str | Path,
    config: RetrainConfig,
    *,
    seed: int = 0,
    data_root: str | None = None,
    download: bool = False,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    preset: Mapping[str, Any] | None = None,
    genotype_source: str | None = None,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
    log: str | None = None,
) -> RetrainResult:
    """Train ``genotype`` on ``dataset`` from scratch into ``out_dir``; resume if a checkpoint is there.

    ``on_epoch_end(epoch, record)`` is called after each epoch's checkpoint is written (raise
    :class:`StopTraining` from it to stop early, as a kill would). ``log``: training-curve loggers
    (:mod:`wcbench.tracking`; None: ``$WCBENCH_LOG``); off a terminal each epoch is also one line on
    stderr (:meth:`wcbench.progress.ProgressBars.epoch_line`).
    """
    out = Path(out_dir)
    log_backends(log)  # an unknown or missing logger fails before any work
    world, rank, local_rank = _dist_info()
    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend)
        dev = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
    else:
        dev = resolve_device(device)
    cuda = dev.type == "cuda"
    is_main = rank == 0
    if distributed and config.batch_size % world:
        raise ConfigError(f"batch_size {config.batch_size} is not divisible by the {world} DDP ranks")

    torch.manual_seed(seed)
    data = _make_data(config, dataset, seed, data_root, download, dev, rank, world)
    record: dict[str, Any] = {
        "genotype": genotype.to_dict(),
        "genotype_hash": genotype.hash(),
        "genotype_darts": genotype.to_darts(),
        "genotype_source": genotype_source,
        "dataset": dataset,
        "data_root": None if data_root is None else str(data_root),
        "seed": int(seed),
        "num_classes": data.num_classes,
        "classes": data.classes,
        "mean": list(data.mean),
        "std": list(data.std),
        "image_size": data.image_size,
        "valid_split": data.valid_split,
        "num_train": data.num_train,
        "num_valid": data.num_valid,
        "config": {**config.model_dump(mode="json"), "stream": use_stream(config, dataset)},
        "preset": dict(preset or {}),
        "memory_source": peak_memory_mb(dev)[1],
        "device": str(dev),
        "world_size": world,
        "wcbench_version": wcbench.__version__,
        "torch_version": torch.__version__,
    }
    _check_compatible(out, record)

    torch.manual_seed(seed)
    net = build_network_for(genotype, config, data.num_classes).to(dev)
    if cuda and config.channels_last:
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        net.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )

    start_epoch = 0
    ckpt_path = out / CHECKPOINT_FILE
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location="cpu")
        try:
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch = int(state["epoch"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint {ckpt_path} does not fit this retrain ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:160]}); delete {out} to start over"
            ) from exc
    history = [r for r in read_jsonl(out / HISTORY_FILE) if int(r.get("epoch", -1)) < start_epoch]
    if is_main and (out / HISTORY_FILE).exists():
        # a kill between the history line and the checkpoint leaves lines of an epoch to be redone
        text = "".join(_json_line(r) for r in history)
        atomic_write_text(out / HISTORY_FILE, text)

    if start_epoch >= config.epochs and (out / MODEL_FILE).exists():
        return RetrainResult(
            out, start_epoch, start_epoch, True, history
        )  # done: retrain.json stays as it was
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / RETRAIN_FILE, _with_config_history(out, record, start_epoch))

    model: nn.Module = net
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(net, device_ids=[local_rank] if cuda else None)
    if config.compile and cuda:
        model = torch.compile(model)

    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    eval_criterion = nn.CrossEntropyLoss()
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16))
        if (cuda and config.amp)
        else (lambda: nullcontext())
    )
    params = [p for p in net.parameters()]

    tracker = Tracker(out, "retrain", log if is_main else "none", start_epoch)  # curves: rank 0 only
    with (
        tracker,
        ProgressBars(progress if is_main else False, None if is_main else False) as bars,
        ExitStack() as stack,
    ):
        epoch_task = bars.add(f"retrain {dataset}", total=config.epochs, completed=start_epoch)
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            if cuda:
                torch.cuda.reset_peak_memory_stats(dev)
            lr = lr_at(config, epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            net.drop_path_prob = config.drop_path_prob * epoch / max(config.epochs, 1)
            torch.manual_seed(_epoch_seed(seed, epoch))
            _set_epoch(data.train, epoch)
            model.train()
            n_seen, loss_sum, correct = 0, torch.zeros((), device=dev), torch.zeros((), device=dev)
            n_batches = min(len(data.train), config.max_steps_per_epoch or len(data.train))
            batch_task = bars.add(f"epoch {epoch + 1}/{config.epochs}", total=n_batches)
            clock = stack.enter_context(phase("retrain", "retrain", dev))
            for step, (x, y) in enumerate(data.train):
                if step >= n_batches:
                    break
                x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                if distributed and not use_stream(config, dataset):
                    x, y = x[rank::world], y[rank::world]  # each rank its share of the global batch
                    if x.shape[0] == 0:
                        continue
                with clock.part("train step"):
                    optimizer.zero_grad(set_to_none=True)
                    with autocast():
                        logits, logits_aux = model(x)
                        loss = criterion(logits.float(), y)
                        if logits_aux is not None and config.auxiliary_weight > 0:
                            loss = loss + config.auxiliary_weight * criterion(logits_aux.float(), y)
                    loss.backward()
                    if config.grad_clip > 0:
                        gnorm = nn.utils.clip_grad_norm_(params, config.grad_clip)
                        finite = bool(
                            torch.isfinite(torch.stack([loss.detach().float(), gnorm.float()])).all()
                        )
                    else:
                        finite = bool(torch.isfinite(loss.detach()).all())
                if not finite:
                    kept = (
                        f"the last good checkpoint (after epoch {epoch}) is kept at {ckpt_path}"
                        if ckpt_path.exists()
                        else "no checkpoint had been written yet"
                    )
                    raise TrainingError(
                        f"loss became {float(loss.detach()):.4g} at epoch {epoch + 1} step {step + 1} "
                        f"(lr {lr:.4g}); "
                        f"{kept}; lower the learning rate with --set lr=... (now {config.lr:g}) and rerun"
                    )
                with clock.part("train step", 0):
                    optimizer.step()
                b = y.shape[0]
                n_seen += b
                loss_sum += loss.detach().float() * b
                correct += (logits.detach().argmax(1) == y).sum()
                bars.update(batch_task, advance=1)
            bars.remove(batch_task)
            train_loss, train_acc = _reduce(loss_sum, correct, n_seen, dev, distributed)
            rec: dict[str, Any] = {
                "epoch": epoch,
                "lr": lr,
                "drop_path_prob": net.drop_path_prob,
                "train_loss": train_loss,
                "train_acc": train_acc,
            }
            if data.valid is not None and (
                (epoch + 1) % config.valid_every == 0 or epoch + 1 == config.epochs
            ):
                with clock.part("validation example", data.num_valid):
                    v_loss, v_acc = evaluate(model, data.valid, dev, autocast, eval_criterion, distributed)
                rec.update({"valid_split": data.valid_split, "valid_loss": v_loss, "valid_acc": v_acc})
            stack.close()  # the epoch's phase ends: its parts and peak memory are recorded
            rec["wall_time_s"] = round(time.perf_counter() - t0, 3)
            rec["peak_memory_mb"] = round(peak_memory_mb(dev)[0], 1)
            if is_main:
                append_jsonl(out / HISTORY_FILE, rec)
                save_checkpoint(
                    ckpt_path,
                    {
                        "model": _state_dict_cpu(net),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": {"name": config.lr_schedule, "last_epoch": epoch, "lr": lr},
                        "epoch": epoch + 1,
                        "seed": int(seed),
                        "genotype_hash": genotype.hash(),
                        "rng_cpu": torch.get_rng_state(),
                        "rng_cuda": torch.cuda.get_rng_state_all() if cuda else [],
                    },
                )
            if distributed:
                torch.distributed.barrier()
            history.append(rec)
            info = f"loss {train_loss:.3f} acc {train_acc:.1f}%"
            if "valid_acc" in rec:
                info += f" | {data.valid_split} acc {rec['valid_acc']:.1f}%"
            bars.update(epoch_task, advance=1, status=info)
            valid = f"{data.valid_split}_acc {rec['valid_acc']:.2f}%" if "valid_acc" in rec else ""
            bars.epoch_line(
                f"retrain {dataset}",
                epoch + 1,
                config.epochs,
                train_loss,
                train_acc,
                rec["wall_time_s"],
                valid,
            )
            tracker.scalars(epoch, {k: v for k, v in rec.items() if k != "epoch"})
            if on_epoch_end is not None:
                try:
                    on_epoch_end(epoch, rec)
                except StopTraining:
                    return RetrainResult(out, epoch + 1, start_epoch, False, history)
    if is_main:
        save_checkpoint(out / MODEL_FILE, _state_dict_cpu(net))
    if distributed:
        torch.distributed.barrier()
    return RetrainResult(out, config.epochs, start_epoch, True, history)


def _json_line(record: Mapping[str, Any]) -> str:
    import json

    return json.dumps(dict(record), ensure_ascii=False) + "\n"


def _set_epoch(loader: Any, epoch: int) -> None:
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    sampler = getattr(loader, "sampler", None)
    if sampler is not None and hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def _reduce(
    loss_sum: torch.Tensor, correct: torch.Tensor, n: int, dev: torch.device, distributed: bool
) -> tuple[float, float]:
    t = torch.stack([loss_sum.float(), correct.float(), torch.tensor(float(n), device=dev)])
    if distributed:
        torch.distributed.all_reduce(t)
    total = max(float(t[2]), 1.0)
    return float(t[0]) / total, 100.0 * float(t[1]) / total


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Any,
    dev: torch.device,
    autocast: Callable[[], Any] | None = None,
    criterion: nn.Module | None = None,
    distributed: bool = False,
) -> tuple[float, float]:
    """(mean loss, top-1 accuracy %) of ``model`` over ``loader`` in eval mode."""
    model.eval()
    criterion = criterion or nn.CrossEntropyLoss()
    ctx = autocast or (lambda: nullcontext())
    loss_sum, correct, n = torch.zeros((), device=dev), torch.zeros((), device=dev), 0
    for x, y in loader:
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        with ctx():
            out = model(x)
        logits = (out[0] if isinstance(out, tuple) else out).float()
        loss_sum += criterion(logits, y) * y.shape[0]
        correct += (logits.argmax(1) == y).sum()
        n += y.shape[0]
    return _reduce(loss_sum, correct, n, dev, distributed)


def build_network_for(genotype: Genotype, config: RetrainConfig, num_classes: int) -> nn.Module:
    from wcbench.networks import build_network

    return build_network(
        genotype,
        config.network,
        config.init_channels,
        config.layers,
        num_classes,
        auxiliary=config.auxiliary_weight > 0,
    )
