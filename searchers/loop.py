"""The search loop: data, optimisers, epochs, checkpoint/resume, history, progress (DARTS train_search.py).

``run_search`` runs ``<strategy>-<algorithm>`` and writes into ``out_dir``:

* ``config.json``: the resolved run config (searcher, dataset, preset, seed, space, the algorithm's
  and the strategy's settings), written with the first epoch's record. Rerunning with the same
  ``out_dir`` resumes from its checkpoint only if the config is equal (the device may differ);
  otherwise a ConfigError names the differing key.
  A directory without a checkpoint (nothing finished an epoch) is simply started afresh.
* ``history.jsonl``: one line per epoch (see ``_history_record``).
* ``checkpoint.pt``: after every epoch, atomically: algorithm and strategy state, both optimisers,
  every RNG state, the cached validation losses. Loaded with ``weights_only=True``.
* ``genotype.json``: at the end; beside the genotype, ``retrain_family``: the algorithm's evaluation
  table (``SearchAlgorithm.retrain_family``), which `wcbench retrain` and `wcbench run` retrain it with.

Data: the train split of the dataset is halved by ``search_split(n, seed, train_portion)`` (paper
Sec. 4.1: CIFAR 50k -> 25k + 25k). For ``digits`` too the search uses its ``train`` split only
(1,078 -> 539 + 539), as for CIFAR; its ``val`` and ``test`` splits stay unseen by the search.
With ``train_fraction`` / ``val_fraction`` the two halves are per-class subsets instead (PC-DARTS's
ImageNet search: 10% / 2.5%). With ``stream`` (the ``imagenet`` preset) an ``imagefolder:<path>`` train
split stays on disk and is decoded in DataLoader workers (:mod:`searchers.streaming`); with
``network = "imagenet"`` the supernet has PC-DARTS's ImageNet stem.

Per epoch e: ``algorithm.on_epoch_start(e)`` (rebuild -> new optimisers), lr = ``algorithm.lr_at(e)``,
``strategy.on_epoch_start``; per step (a training batch): if the architecture is not frozen, the
architecture step with the strategy's objective, then the weight step (SGD on the same batch,
gradient clipping); then a validation pass over the whole search-validation split (per-example
losses, cached for the strategies), the history line, the checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from searchers.base import (
    SearchAlgorithm,
    SearchConfig,
    SearchContext,
    ValidationStrategy,
    assign_grads,
)
from searchers.spec import SearchSpec, check_same_config, resolve_search
from searchers.splits import SplitData, evaluate_split, recalibrate_batchnorm
from wcbench.checkpoints import checkpoint_keys, load_checkpoint, save_checkpoint
from wcbench.devices import peak_memory_mb, resolve_device
from wcbench.errors import CheckpointError, ConfigError, TrainingError
from wcbench.files import append_jsonl, atomic_write_json, atomic_write_text, read_json, read_jsonl
from wcbench.genotype import Genotype
from wcbench.phases import phase
from wcbench.progress import ProgressBars
from wcbench.registry import ALGORITHMS, STRATEGIES
from wcbench.seeding import derive_seed
from wcbench.space import get_space
from wcbench.tracking import Tracker, log_backends

CHECKPOINT_FORMAT = 1
_CHECKPOINT_KEYS = (
    "epoch",
    "global_step",
    "algorithm",
    "strategy",
    "weight_optimizer",
    "arch_optimizer",
    "rng",
)
EpochCallback = Callable[[int, dict[str, Any]], None]


# ================================================================================== helpers


def _seed_int(seed: int, salt: str) -> int:
    return derive_seed(salt, seed)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def use_channels_last(cfg: SearchConfig, device: torch.device) -> bool:
    """Whether the supernet and batches go channels_last: as configured on CUDA, never on a CPU (as the
    retrain does). On CPUs, torch 2.14.1's oneDNN weight gradient of small 1x1 convolutions in
    channels_last (``jit_avx2_1x1_convolution_bwd_weights``) writes past its buffer: with one thread
    PC-DARTS's partial-channel FactorizedReduce aborted with glibc heap corruption, and with two it
    hung inside that kernel's OpenMP region. Reproduction: tests/test_single_thread.py."""
    return cfg.channels_last and device.type == "cuda"


def _resized(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """uint8 images at ``size`` x ``size`` (bilinear with antialiasing, rounded), or as they are."""
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def _make_split(ds: Any, idx: torch.Tensor, device: torch.device, cfg: SearchConfig) -> SplitData:
    return SplitData(
        _resized(ds.images.index_select(0, idx), cfg.resolution),
        ds.labels.index_select(0, idx),
        idx,
        ds.mean,
        ds.std,
        device,
        augment=cfg.augment,
        channels_last=use_channels_last(cfg, device),
    )


def _split_indices(labels: torch.Tensor, seed: int, cfg: SearchConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(search-train, search-val) indices of the train split: halves by ``train_portion`` (paper Sec.
    4.1), or per-class ``train_fraction`` / ``val_fraction`` subsets when both are set (PC-DARTS's
    ImageNet search: 10% / 2.5%); then the first ``max_examples`` of each."""
    from wcbench.data import search_split
    from wcbench.data.split import per_class_subsets

    if (cfg.train_fraction is None) != (cfg.val_fraction is None):
        raise ConfigError(
            "train_fraction and val_fraction go together (per-class subsets for W and A); set both, "
            "or neither to split by train_portion"
        )
    if cfg.train_fraction is not None and cfg.val_fraction is not None:
        train_idx, val_idx = per_class_subsets(labels, seed, cfg.train_fraction, cfg.val_fraction)
    else:
        train_idx, val_idx = search_split(int(labels.shape[0]), seed, cfg.train_portion)
    if cfg.max_examples is not None:
        train_idx, val_idx = train_idx[: cfg.max_examples], val_idx[: cfg.max_examples]
    return train_idx, val_idx


def _streamed_splits(
    spec: SearchSpec, device: torch.device, data_root: str | Path | None
) -> tuple[Any, Any, int, int]:
    """(train, val, classes, input channels) of ``imagefolder:<path>`` streamed from ``<path>/train``
    (``StreamedSplit``): labels resident, images decoded by loader workers, ImageNet mean/std."""
    from searchers.streaming import StreamedSplit
    from wcbench.cpus import default_workers
    from wcbench.data import IMAGENET_MEAN, IMAGENET_STD
    from wcbench.data.imagefolder import list_images
    from wcbench.data.imagenet import ImageFiles, resolve_imagefolder

    cfg = spec.algorithm_config
    classes, files, labels = list_images(resolve_imagefolder(spec.dataset, data_root), "train")
    images = ImageFiles(files, labels, cfg.image_size)
    train_idx, val_idx = _split_indices(images.labels, spec.seed, cfg)
    workers = default_workers() if cfg.workers is None else cfg.workers
    common: dict[str, Any] = dict(
        augment=cfg.augment, channels_last=use_channels_last(cfg, device), workers=workers
    )
    train = StreamedSplit(images, train_idx, IMAGENET_MEAN, IMAGENET_STD, device, **common)
    val = StreamedSplit(images, val_idx, IMAGENET_MEAN, IMAGENET_STD, device, **common)
    return train, val, len(classes), 3


def _place(algorithm: SearchAlgorithm, device: torch.device, cfg: SearchConfig) -> SearchAlgorithm:
    """Move to the device (and to channels_last, which also speeds up depthwise convs on CPU)."""
    algorithm.to(device)
    if use_channels_last(cfg, device):
        algorithm.to(memory_format=torch.channels_last)
    return algorithm


def _stage_of(algorithm: SearchAlgorithm, epoch: int) -> tuple[int, int]:
    """(stage of ``epoch``, number of stages): P-DARTS's progressive stages, else (0, 1)."""
    stage_of = getattr(algorithm, "stage_of", None)
    if stage_of is None:
        return 0, 1
    return int(stage_of(epoch)), int(getattr(algorithm, "num_stages", 1))


# ================================================================================== the loop


def search_context(
    spec: SearchSpec,
    device: str | torch.device | None = None,
    *,
    data_root: str | Path | None = None,
    download: bool = False,
    out_dir: Path | None = None,
) -> SearchContext:
    """The search split of ``spec.dataset`` on the device, the algorithm (its supernet) and the
    context a strategy's ``setup`` reads; what a search, and `wcbench tester pretrain`, start from."""
    dev = resolve_device(device)
    # ---------------------------------------------------------------- data
    from wcbench.data import get_dataset

    cfg = spec.algorithm_config
    if cfg.stream:
        train, val, num_classes, in_channels = _streamed_splits(spec, dev, data_root)
    else:
        ds = get_dataset(spec.dataset, "train", root=data_root, download=download)
        train_idx, val_idx = _split_indices(
            ds.labels, spec.seed if cfg.split_seed is None else cfg.split_seed, cfg
        )
        train = _make_split(ds, train_idx, dev, cfg)
        val = _make_split(ds, val_idx, dev, cfg)
        num_classes, in_channels = ds.num_classes, int(ds.images.shape[1])
    if len(train) < cfg.batch_size:
        raise ConfigError(
            f"batch_size {cfg.batch_size} exceeds the {len(train)} search-train examples of "
            f"{spec.dataset}; lower it with --set batch_size=..."
        )

    # ---------------------------------------------------------------- model, context
    torch.manual_seed(spec.seed)
    algo_cls = ALGORITHMS.get(spec.algorithm)
    alpha_gen = torch.Generator().manual_seed(_seed_int(spec.seed, "alphas"))
    algorithm: SearchAlgorithm = algo_cls(
        cfg, get_space(spec.space), num_classes, in_channels=in_channels, generator=alpha_gen
    )
    _place(algorithm, dev, cfg)
    total = algorithm.total_epochs()
    return SearchContext(
        algorithm=algorithm,
        config=cfg,
        strategy_config=spec.strategy_config,
        device=dev,
        train=train,
        val=val,
        num_classes=num_classes,
        dataset=spec.dataset,
        seed=spec.seed,
        generator=torch.Generator().manual_seed(_seed_int(spec.seed, "strategy")),
        preset=spec.preset,
        out_dir=out_dir,
        data_root=data_root,
        total_epochs=total,
        arch_epochs_total=sum(not algorithm.arch_frozen(e) for e in range(total)),
    )


def _track_epoch(tracker: Tracker, out: Path, epoch: int, record: dict[str, Any]) -> None:
    """The epoch's curves (losses, accuracies in %, learning rates, the strategy's numeric statistics)
    and the tester's sample grid, if the strategy wrote one, to the tracker."""
    names = ("train_loss", "val_loss", "arch_loss", "lr", "arch_lr", "wall_time_s", "peak_memory_mb")
    values: dict[str, Any] = {k: record.get(k) for k in names}
    values.update(train_acc=100.0 * record["train_acc"], val_acc=100.0 * record["val_acc"])
    stats = record.get("strategy")
    if isinstance(stats, dict):
        values.update({f"strategy/{k}": v for k, v in stats.items()})
        if isinstance(stats.get("grid_png"), str) and (out / stats["grid_png"]).is_file():
            tracker.image("tester_samples", out / stats["grid_png"], epoch)
    tracker.scalars(epoch, values)


@contextmanager
def _damaged(ckpt_path: Path) -> Iterator[None]:
    """Turn a checkpoint whose contents do not fit the search (a missing key, a wrong shape or type)
    into one :class:`CheckpointError` naming the file."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(
            f"checkpoint {ckpt_path} does not fit this search ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:160]}); delete it to restart the search"
        ) from exc


@contextmanager
def _left_empty_removed(out: Path) -> Iterator[None]:
    """Create ``out``; if this call created it and the setup inside fails before anything is written
    there (a missing dataset or tester cache), remove it again, so a failed search leaves no empty
    directory behind."""
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def run_search(
    searcher_name: str,
    dataset: str | None = None,
    preset: str = "paper",
    seed: int = 0,
    space: str = "darts",
    out_dir: str | Path = "search",
    overrides: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    data_root: str | Path | None = None,
    download: bool = False,
    callbacks: Sequence[EpochCallback] = (),
    log: str | None = None,
) -> Genotype:
    """Search ``<strategy>-<algorithm>`` and return its genotype (files: module docstring).

    Resumes from ``out_dir/checkpoint.pt`` when one exists with the same config; a finished search
    returns its genotype without recomputing. ``callbacks(epoch, record)`` run after each epoch's
    checkpoint (tests interrupt a search with one). ``log``: training-curve loggers
    (:mod:`wcbench.tracking`; None: ``$WCBENCH_LOG``); off a terminal each epoch is also one line on
    stderr (:meth:`wcbench.progress.ProgressBars.epoch_line`).
    """
    spec = resolve_search(searcher_name, dataset, preset, seed, space, overrides)
    log_backends(log)  # an unknown or missing logger fails before any work
    out = Path(out_dir)
    config_path, ckpt_path = out / "config.json", out / "checkpoint.pt"
    history_path, genotype_path = out / "history.jsonl", out / "genotype.json"
    current = spec.to_dict()
    with _left_empty_removed(out):
        if ckpt_path.exists():  # something to resume: only into the same config
            if not config_path.exists():
                raise CheckpointError(f"{ckpt_path} exists without its config.json; use a new --out")
            check_same_config(read_json(config_path), current, out)
        dev = resolve_device(device)
        if ckpt_path.exists():
            atomic_write_json(config_path, {**current, "device": str(dev)})
        # else config.json comes with the first epoch's record: a search that fails before it leaves
        # no config.json alone in --out to look like a run (issue #13)

        ctx = search_context(spec, dev, data_root=data_root, download=download, out_dir=out)
        algorithm, cfg, train, val, total = ctx.algorithm, ctx.config, ctx.train, ctx.val, ctx.total_epochs
        strategy: ValidationStrategy = STRATEGIES.get(spec.strategy)(spec.strategy_config)
        strategy.setup(ctx)

    start_epoch, global_step, elapsed = 0, 0, 0.0
    state: dict[str, Any] | None = None
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location="cpu")
        if state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{ckpt_path} has an unknown format; use a new --out")
        checkpoint_keys(state, _CHECKPOINT_KEYS, ckpt_path)
        with _damaged(ckpt_path):
            algorithm.load_search_state_dict(state["algorithm"])
            _place(algorithm, dev, cfg)
            start_epoch, global_step = int(state["epoch"]), int(state["global_step"])
            elapsed = float(state.get("elapsed_s", 0.0))
    ctx.weight_optimizer = algorithm.make_weight_optimizer()
    ctx.arch_optimizer = algorithm.make_arch_optimizer()
    if state is not None:
        with _damaged(ckpt_path):
            ctx.weight_optimizer.load_state_dict(state["weight_optimizer"])
            ctx.arch_optimizer.load_state_dict(state["arch_optimizer"])
            strategy.load_state_dict(state["strategy"])
            ctx.generator.set_state(state["rng"]["strategy"])
            if state.get("val_losses") is not None:
                ctx._val_cache = (state["val_losses"].to(dev), state["val_predictions"].to(dev))
            _set_rng_state(state["rng"], dev)

    if start_epoch >= total and genotype_path.exists():
        return Genotype.from_json(genotype_path.read_text())
    # drop history lines of epochs the checkpoint does not hold (killed between the two writes)
    if history_path.exists():
        kept = [r for r in read_jsonl(history_path) if int(r.get("epoch", -1)) < start_epoch]
        atomic_write_text(history_path, "".join(json.dumps(r) + "\n" for r in kept))

    train_steps = len(train) // cfg.batch_size
    steps = min(train_steps, cfg.max_steps_per_epoch or train_steps)
    ctx.steps_per_epoch = steps
    bar = ProgressBars(None if progress else False)  # progress=True: bars on a terminal only
    tracker = Tracker(out, "search", log, start_epoch)
    bar.start()
    task = bar.add(
        f"search {spec.searcher}",
        total=(total - start_epoch) * steps,
        status=f"epoch {start_epoch + 1}/{total}",
    )
    amp = cfg.amp and dev.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else nullcontext
    stack = ExitStack()
    try:
        for epoch in range(start_epoch, total):
            t0 = time.perf_counter()
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            if algorithm.on_epoch_start(epoch):
                _place(algorithm, dev, cfg)
                ctx.weight_optimizer = algorithm.make_weight_optimizer()
                ctx.arch_optimizer = algorithm.make_arch_optimizer()
                ctx.invalidate_val_losses()
            lr = algorithm.lr_at(epoch)
            for group in ctx.weight_optimizer.param_groups:
                group["lr"] = lr
            ctx.epoch, ctx.lr = epoch, lr
            ctx.arch_active = not algorithm.arch_frozen(epoch)
            strategy.on_epoch_start(epoch, ctx)
            algorithm.train()
            weight_params = algorithm.weight_parameters()
            sums = torch.zeros(4, device=dev, dtype=torch.float64)  # train loss*n, correct, n, arch loss
            arch_steps = 0
            stage, stages = _stage_of(algorithm, epoch)
            clock = stack.enter_context(
                phase(
                    f"search stage {stage + 1}/{stages}" if stages > 1 else "search",
                    "search",
                    dev,
                    stage=stage,
                )
            )
            for i, (_, (x, y)) in enumerate(train.epoch_batches(cfg.batch_size, spec.seed, epoch)):
                if i >= steps:
                    break
                ctx.step_in_epoch, ctx.step, ctx.train_batch = i, global_step, (x, y)
                if ctx.arch_active and strategy.wants_arch_step(ctx):
                    with clock.part("arch step"):
                        objective = strategy.objective(ctx)
                        with autocast():
                            result = algorithm.arch_step((x, y), objective, ctx)
                        strategy.after_arch_step(ctx, result)
                    sums[3] += result.loss.detach().double()
                    arch_steps += 1
                # weight step (DARTS Eq. 5 one step; weight gradients only)
                with clock.part("weight step"):
                    ctx.weight_optimizer.zero_grad(set_to_none=True)
                    with autocast():
                        logits = algorithm(x)
                        loss = algorithm.training_loss(logits, y)
                    grads = torch.autograd.grad(loss, weight_params, allow_unused=True)
                    assign_grads(weight_params, grads)
                    if cfg.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(weight_params, cfg.grad_clip)
                    ctx.weight_optimizer.step()
                    strategy.after_weight_step(ctx)
                with torch.no_grad():
                    sums[0] += loss.detach().double() * y.numel()
                    sums[1] += (logits.argmax(1) == y).sum()
                    sums[2] += y.numel()
                global_step += 1
                bar.advance(task)
            with clock.part("epoch end"):
                strategy.on_epoch_end(ctx)
            train_loss, train_correct, train_n, arch_loss = sums.tolist()
            if not math.isfinite(train_loss) or not math.isfinite(arch_loss):
                raise TrainingError(
                    f"{spec.searcher}: non-finite loss in epoch {epoch} (train "
                    f"{train_loss / max(train_n, 1):.4g}, architecture "
                    f"{arch_loss / max(arch_steps, 1):.4g}); lower the learning rates "
                    f"(--set lr=... / --set arch_lr=...) or keep grad_clip > 0, and use a new --out"
                )
            if cfg.bn_recalibrate:
                recalibrate_batchnorm(algorithm, train, cfg.eval_batch_size)
            with clock.part("validation example", len(val)):
                val_losses, val_preds = evaluate_split(algorithm, val, cfg.eval_batch_size)
            stack.close()  # the epoch's phase ends: its parts and peak memory are recorded
            ctx._val_cache = (val_losses, val_preds)
            val_loss = float(val_losses.mean())
            if not math.isfinite(val_loss):
                raise TrainingError(
                    f"{spec.searcher}: non-finite validation loss after epoch {epoch}; lower the learning "
                    f"rates (--set lr=... / --set arch_lr=...) and use a new --out"
                )
            wall = time.perf_counter() - t0
            elapsed += wall
            mem, mem_source = peak_memory_mb(dev)
            genotype = algorithm.genotype()
            record = {
                "epoch": epoch,
                "epochs": total,
                "lr": lr,
                "arch_lr": ctx.arch_lr,
                "arch_active": ctx.arch_active,
                "steps": steps,
                "arch_steps": arch_steps,
                "train_loss": train_loss / max(train_n, 1),
                "train_acc": train_correct / max(train_n, 1),
                "val_loss": val_loss,
                "val_acc": float((val_preds == val.labels).double().mean()),
                "arch_loss": arch_loss / arch_steps if arch_steps else None,
                "arch": algorithm.arch_state(),
                "strategy": strategy.epoch_stats(),
                "genotype": genotype.to_darts(),
                "wall_time_s": wall,
                "elapsed_s": elapsed,
                "peak_memory_mb": mem,
                "peak_memory_source": mem_source,
                "device": str(dev),
            }
            if not ckpt_path.exists():
                atomic_write_json(config_path, {**current, "device": str(dev)})
            append_jsonl(history_path, record)
            save_checkpoint(
                ckpt_path,
                {
                    "format": CHECKPOINT_FORMAT,
                    "epoch": epoch + 1,
                    "global_step": global_step,
                    "elapsed_s": elapsed,
                    "searcher": spec.searcher,
                    "algorithm": algorithm.search_state_dict(),
                    "strategy": strategy.state_dict(),
                    "weight_optimizer": ctx.weight_optimizer.state_dict(),
                    "arch_optimizer": ctx.arch_optimizer.state_dict(),
                    "rng": {**_rng_state(dev), "strategy": ctx.generator.get_state()},
                    "val_losses": val_losses.cpu(),
                    "val_predictions": val_preds.cpu(),
                },
            )
            bar.update(
                task,
                status=f"epoch {epoch + 1}/{total} val_acc {record['val_acc']:.3f} val_loss {val_loss:.3f}",
            )
            bar.epoch_line(
                f"search {spec.searcher}",
                epoch + 1,
                total,
                record["train_loss"],
                100.0 * record["train_acc"],
                wall,
                f"val_loss {val_loss:.4f} val_acc {100.0 * record['val_acc']:.2f}%",
            )
            _track_epoch(tracker, out, epoch, record)
            for callback in callbacks:
                callback(epoch, record)
    finally:
        stack.close()
        bar.stop()
        tracker.close()

    genotype = algorithm.genotype()
    # the algorithm's evaluation table goes with its genotype (read back by evaluators.retrain.family_for)
    atomic_write_json(genotype_path, {**genotype.to_dict(), "retrain_family": algorithm.retrain_family})
    return genotype
