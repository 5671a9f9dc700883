"""Tester initialisation (paper Sec. 3.3, App. A.1, B.2.3): pretrain G, D and V once and cache them.

:func:`pretrain_tester` trains the tester's GAN (FQ-GAN's CIFAR recipe, :func:`pretrain_gan`) and its
auxiliary model V on the search-train split and writes ``<cache_dir>/<key>.pt``, with ``key`` from the
dataset, its split and the settings that shape the tester (:func:`tester_cache_name`);
:func:`load_pretrained` starts a tester from that file. :func:`cache_key` also names the reference
classifier's cache (:mod:`searchers.testers.diagnostics`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import filelock
import torch
from torch import Tensor

from searchers.testers.augment import AugmentTester
from searchers.testers.auxiliary import TiedAuxiliary, train_classifier
from searchers.testers.fqgan import ConditionalGAN
from searchers.testers.functional import frozen
from searchers.testers.gan import GanTester
from wcbench.checkpoints import checksum_path, save_checkpoint
from wcbench.phases import phase


def cache_key(kind: str, dataset_name: str, dataset_indices: Tensor, settings: dict[str, Any]) -> str:
    """A file stem from the dataset, its split (the train positions) and the settings that shape it."""
    idx = dataset_indices.to("cpu", torch.int64).contiguous().numpy().tobytes()
    h = hashlib.sha256()
    h.update(json.dumps({"kind": kind, "dataset": dataset_name, **settings}, sort_keys=True).encode())
    h.update(hashlib.sha256(idx).digest())
    return f"{kind}-{dataset_name.replace(':', '_').replace('/', '_')}-{h.hexdigest()[:16]}"


def pretrain_gan(
    gan: ConditionalGAN,
    images: Tensor,
    labels: Tensor,
    *,
    iters: int,
    batch_size: int = 64,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.0, 0.999),
    d_steps: int = 4,
    ema: float = 0.9999,
    ema_start: int = 1000,
    generator: torch.Generator | None = None,
    log: Callable[[str], None] | None = None,
    resume: Path | None = None,
) -> None:
    """FQ-GAN's CIFAR recipe (``launch_C10.sh``): Adam 2e-4, betas (0, 0.999) for G and D, 4 D steps
    per G step, batch 64, hinge loss (+ FQ loss), B fixed at its initial values; ``iters`` G steps.

    G's weights are averaged as ``--ema --use_ema --ema_start 1000`` (BigGAN's ``ema_decay`` 0.9999)
    do: from G step ``ema_start`` on, ``G_ema <- ema * G_ema + (1 - ema) * G`` (before it, a copy), and
    G ends as ``G_ema``, the generator those scripts sample and evaluate with. ``ema=0`` keeps the
    last G.

    ``resume``: a file that holds the state every ``iters // 20`` G steps (and is read back on a
    restart, so an interrupted pretraining resumes to the same result); deleted by the caller."""
    dev = images.device
    g_opt = torch.optim.Adam(gan.G.parameters(), lr=lr, betas=betas)
    d_opt = torch.optim.Adam(gan.D.parameters(), lr=lr, betas=betas)
    n = images.shape[0]
    g_ema = copy.deepcopy(gan.G).requires_grad_(False)
    parts = {"gan": gan, "g_opt": g_opt, "d_opt": d_opt, "g_ema": g_ema}
    start = _resume(resume, parts, generator)
    gan.train()
    for it in range(start, iters):
        for _ in range(d_steps):
            idx = torch.randint(n, (batch_size,), generator=generator).to(dev)
            z, yf = gan.sample_latent(batch_size, generator, dev)
            loss_d, _ = gan.d_loss(
                images.index_select(0, idx).float() / 255, labels.index_select(0, idx), z, yf
            )
            d_opt.zero_grad(set_to_none=True)
            loss_d.backward()
            d_opt.step()
        z, yf = gan.sample_latent(batch_size, generator, dev)
        loss_g = gan.g_loss(z, yf)
        g_opt.zero_grad(set_to_none=True)
        d_opt.zero_grad(set_to_none=True)
        loss_g.backward()
        g_opt.step()
        _ema_step(g_ema, gan.G, 0.0 if it < ema_start else ema)
        if log is not None and (it % max(1, iters // 10) == 0 or it == iters - 1):
            log(f"pretrain GAN {it + 1}/{iters}: d_loss {loss_d.item():.4f} g_loss {loss_g.item():.4f}")
        if resume is not None and (it + 1) % max(1, iters // 20) == 0 and it + 1 < iters:
            _save_resume(resume, parts, generator, it + 1)
    if iters > start:
        gan.G.load_state_dict(g_ema.state_dict())


@torch.no_grad()
def _ema_step(average: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``average <- decay * average + (1 - decay) * model`` (parameters; buffers copied)."""
    for a, p in zip(average.parameters(), model.parameters(), strict=True):
        a.lerp_(p, 1.0 - decay)
    for a, b in zip(average.buffers(), model.buffers(), strict=True):
        a.copy_(b)


def _resume(path: Path | None, parts: dict[str, Any], generator: torch.Generator | None) -> int:
    """Load ``parts`` (modules and optimizers) and ``generator`` from ``path`` if it exists; returns
    the iteration to continue from (0 without a file)."""
    if path is None or not path.exists():
        return 0
    from wcbench.checkpoints import load_checkpoint

    state = load_checkpoint(path)
    for name, part in parts.items():
        part.load_state_dict(state[name])
    if generator is not None and state.get("generator") is not None:
        generator.set_state(state["generator"])
    return int(state["iteration"])


def _save_resume(
    path: Path, parts: dict[str, Any], generator: torch.Generator | None, iteration: int
) -> None:
    state: dict[str, Any] = {name: part.state_dict() for name, part in parts.items()}
    state["generator"] = None if generator is None else generator.get_state()
    state["iteration"] = iteration
    save_checkpoint(path, state)


def pretrain_tester(
    dataset: Any,
    tester: GanTester | AugmentTester,
    config: Any,
    cache_dir: str | Path,
    *,
    dataset_name: str,
    generator: torch.Generator | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Pretrain the tester's G (and D) and its auxiliary model V on ``dataset`` and cache them.

    ``dataset``: the search-train split (``.images`` uint8 (n, 3, H, W), ``.labels``,
    ``.dataset_indices``; a :class:`searchers.splits.SplitData`). ``config``: the ``ours`` strategy config
    (``pretrain_iters``, ``pretrain_batch``, ``aux_pretrain_iters`` and the tester's shape). The cache is
    ``<cache_dir>/<key>.pt`` with ``key`` from the dataset name, its split and the settings
    (:func:`tester_cache_name`); an existing file is returned without training. V is trained on real
    D_tr images (App. A.1: "V is initialized using a pretrained ResNet-18"); under parameter tying only
    its head, on the pretrained discriminator's features (Sec. 3.3).
    """
    path = Path(cache_dir) / f"{tester_cache_name(dataset, tester, config, dataset_name)}.pt"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(path) + ".lock"):  # a concurrent run waits, then finds the file
        if path.exists():
            return path
        _pretrain(dataset, tester, config, path, generator, log)
    return path


def _pretrain(
    dataset: Any,
    tester: GanTester | AugmentTester,
    config: Any,
    path: Path,
    generator: torch.Generator | None,
    log: Callable[[str], None] | None,
) -> None:
    images, labels = dataset.images, dataset.labels
    partial = path.with_name(path.stem + ".gan-partial.pt")
    if isinstance(tester, GanTester) and config.pretrain_iters > 0:
        with (
            phase("tester: G/D pretraining", "tester", images.device, setting="pretrain_iters") as clock,
            clock.part("step", config.pretrain_iters),
        ):
            pretrain_gan(
                tester.gan,
                images,
                labels,
                iters=config.pretrain_iters,
                batch_size=config.pretrain_batch,
                lr=config.pretrain_lr,
                d_steps=config.pretrain_d_steps,
                ema=config.pretrain_ema,
                ema_start=config.pretrain_ema_start,
                generator=generator,
                log=log,
                resume=partial,
            )
    if tester.aux is not None and config.aux_pretrain_iters > 0:
        params = list(tester.aux.parameters())
        ctx = frozen(tester.aux.trunk) if isinstance(tester.aux, TiedAuxiliary) else nullcontext()
        v_phase = phase("tester: V pretraining", "tester", images.device, setting="aux_pretrain_iters")
        with ctx, v_phase as clock, clock.part("step", config.aux_pretrain_iters):
            losses = train_classifier(
                tester.aux,
                images,
                labels,
                iters=config.aux_pretrain_iters,
                batch_size=config.pretrain_batch,
                params=params,
                generator=generator,
                augment=aux_augment(dataset),
            )
        if log is not None:
            log(f"pretrain V: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    state: dict[str, Any] = {"aux": None if tester.aux is None else tester.aux.state_dict()}
    if isinstance(tester, GanTester):
        state["gan"] = tester.gan.state_dict()
    save_checkpoint(path, state)
    partial.unlink(missing_ok=True)
    checksum_path(partial).unlink(missing_ok=True)


def tester_settings(tester: GanTester | AugmentTester, config: Any) -> dict[str, Any]:
    """The settings that determine a pretrained tester (the cache key's content)."""
    out: dict[str, Any] = {
        "aux": None if tester.aux is None else type(tester.aux).__name__,
        "aux_arch": config.aux_arch,
        "aux_width": config.aux_width,
        "aux_hidden": config.aux_hidden,
        "aux_pretrain_iters": config.aux_pretrain_iters,
        "pretrain_batch": config.pretrain_batch,
    }
    if isinstance(tester.aux, TiedAuxiliary):  # caches of the head without its LayerNorm do not load
        out["aux_head"] = "layernorm"
    if isinstance(tester, GanTester):
        gan = tester.gan
        out.update(
            generator=gan.kind,
            width=config.gan_width,
            dim_z=config.dim_z,
            fq_layers=list(gan.D.fq_layers),
            dict_size=[q.n_embed for q in gan.D.quantizers.values()],
            B_init=gan.B.as_dict(),
            pretrain_iters=config.pretrain_iters,
            pretrain_lr=config.pretrain_lr,
            pretrain_d_steps=config.pretrain_d_steps,
            pretrain_ema=config.pretrain_ema,
            pretrain_ema_start=config.pretrain_ema_start,
        )
    return out


def aux_augment(split: Any) -> bool:
    """Whether V's pretraining crops and flips: as the search's own batches do (``augment`` of the
    search config; the quick preset's digits have none, since a flipped digit is another digit)."""
    return bool(getattr(split, "augment", True))


def image_size(split: Any, default: int = 32) -> int:
    """The side of a search split's images (held in memory: ``images``; streamed: ``image_size``)."""
    images = getattr(split, "images", None)
    if images is not None:
        return int(images.shape[-1])
    return int(getattr(split, "image_size", default))


def tester_cache_name(dataset: Any, tester: GanTester | AugmentTester, config: Any, dataset_name: str) -> str:
    """The cache file stem of a pretrained tester (:func:`cache_key` of :func:`tester_settings`)."""
    settings = tester_settings(tester, config)
    if not aux_augment(dataset):  # V learnt without crop and flip (a key as before when it has them)
        settings["aux_augment"] = False
    size = image_size(dataset)
    if size != 32:  # a search at another resolution (32: the key as before)
        settings["resolution"] = size
    return cache_key(f"tester-{tester.kind}", dataset_name, dataset.dataset_indices, settings)


def load_pretrained(tester: GanTester | AugmentTester, path: Path) -> None:
    """Load G, D and V from a :func:`pretrain_tester` cache file."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(tester, GanTester) and state.get("gan") is not None:
        tester.gan.load_state_dict(state["gan"])
    if tester.aux is not None and state.get("aux") is not None:
        tester.aux.load_state_dict(state["aux"])
