"""Building the ``ours`` strategy's tester from its config, and its initialisation (paper Sec. 3.3,
App. A.1, B.2.3).

``kind``: ``gan`` (Eq. 5: a ``generator`` GAN, B its hyperparameters; ``ablation=weights-only`` makes
the discriminator the upper-level variable, Eq. 18), ``augment`` (Eq. 6: the DADA policy) or
``selection`` (``ablation=pretrain``, Eq. 19: pairs generated once by the pretrained GAN). V is tied to
the discriminator's trunk under the cost reductions (Sec. 3.3), else a separate classifier
(``aux_arch``). ``tester_init``: ``cache`` starts from a pretrained tester in the cache (missing: a
one-line error naming `wcbench tester pretrain`), ``pretrain`` pretrains and caches it when missing,
``scratch`` never loads one; the selection ablation always needs the pretrained GAN.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from searchers.testers.augment import AugmentTester
from searchers.testers.auxiliary import TiedAuxiliary, build_classifier
from searchers.testers.base import Tester
from searchers.testers.dada import AugmentPolicy
from searchers.testers.fqgan import ConditionalGAN, fq_defaults
from searchers.testers.gan import GanTester
from searchers.testers.pretrain import image_size, load_pretrained, pretrain_tester, tester_cache_name
from searchers.testers.selection import SelectionTester
from wcbench.errors import ConfigError

log = logging.getLogger("wcbench.ours")


def data_stats(ctx: Any) -> tuple[list[float], list[float]]:
    """The dataset's normalisation (mean, std) as lists."""
    return ctx.train.mean.flatten().tolist(), ctx.train.std.flatten().tolist()


def build_gan(config: Any, ctx: Any) -> ConditionalGAN:
    """The ``generator`` GAN with B initialised to FQ-GAN's values for the dataset (or the config's)."""
    fq = fq_defaults(ctx.dataset)
    size = 2 ** (config.dict_size_log2 or int(fq["dict_size_log2"]))
    return ConditionalGAN(
        config.generator,
        ctx.num_classes,
        width=config.gan_width,
        dim_z=config.dim_z,
        fq_layers=config.fq_layers,
        dict_size=size,
        decay=fq["decay"] if config.decay is None else config.decay,
        fq_weight=fq["fq_weight"] if config.fq_weight is None else config.fq_weight,
        resolution=image_size(ctx.train),
    ).to(ctx.device)


def build_auxiliary(config: Any, ctx: Any, gan: ConditionalGAN | None) -> nn.Module:
    """V: a head on the discriminator's trunk (CR with ``tie_auxiliary``), else an ``aux_arch`` net."""
    if gan is not None and config.cost_reduction and config.tie_auxiliary:
        return TiedAuxiliary(gan.D, ctx.num_classes, config.aux_hidden).to(ctx.device)
    return build_classifier(config.aux_arch, ctx.num_classes, config.aux_width, *data_stats(ctx)).to(
        ctx.device
    )


def build_tester(
    kind: str,
    config: Any,
    ctx: Any,
    *,
    cache_dir: Path,
    lam: float,
    batch_size: int,
    generator: torch.Generator,
) -> tuple[Tester, str]:
    """(tester, how it was initialised) for the ``ours`` config and the search context ``ctx``.

    ``generator`` draws the setup's numbers (pretraining, the selection pairs); the selection
    ablation's batches come from the search's ``ctx.generator``. V is always built, for the cache key
    and the pretraining (so lambda = 0 and the pretrain ablation start from the same pretrained tester
    as the full method), then dropped when ``lam`` is 0 (Eq. 20: no stage III).
    """
    common: dict[str, Any] = dict(
        momentum=config.tester_momentum,
        weight_decay=config.tester_weight_decay,
        grad_clip=config.tester_grad_clip,
        b_lr=config.b_lr,
        b_betas=tuple(config.b_betas),
        b_weight_decay=config.b_weight_decay,
    )
    tester: GanTester | AugmentTester
    if kind == "augment":
        policy = AugmentPolicy(config.augment_temperature).to(ctx.device)
        tester = AugmentTester(policy, build_auxiliary(config, ctx, None), **common)
    else:
        gan = build_gan(config, ctx)
        tester = GanTester(
            gan,
            build_auxiliary(config, ctx, gan),
            upper="D" if config.ablation == "weights-only" else "B",
            d_lr=config.d_lr,
            d_betas=tuple(config.d_betas),
            train_d_loss=config.ablation != "weights-only",
            **common,
        )
    path = cache_dir / f"{tester_cache_name(ctx.train, tester, config, ctx.dataset)}.pt"
    want = config.tester_init
    if kind == "selection" and want != "scratch":
        want = "pretrain"
    if want == "scratch":
        note = "scratch (tester_init=scratch)"
    elif path.exists():
        load_pretrained(tester, path)
        note = f"cache {path}"
    elif want == "pretrain":
        if not hasattr(ctx.train, "images"):
            raise ConfigError(
                "tester_init=pretrain pretrains on a search split held in memory; a streamed "
                "(stream=true) search has none: --set strategy.tester_init=cache (a cached tester, "
                "else scratch) or scratch"
            )
        log.info("ours: pretraining the tester into %s", path)
        pretrain_tester(
            ctx.train, tester, config, cache_dir, dataset_name=ctx.dataset, generator=generator, log=log.info
        )
        load_pretrained(tester, path)
        note = f"pretrained now, cache {path}"
    else:
        algorithm = getattr(ctx.algorithm, "name", "") or "darts2nd"
        raise ConfigError(
            f"no pretrained {kind} tester at {path}: make it with `wcbench tester pretrain --dataset "
            f"{ctx.dataset} --tester {kind} --algorithm {algorithm} --preset {ctx.preset}` (and the same "
            "strategy --set values; `wcbench run` does this itself), or start from an untrained tester "
            "with --set strategy.tester_init=scratch"
        )
    log.info("ours: tester %s initialised from %s", kind, note)
    if lam <= 0:
        tester.drop_auxiliary()  # adversarial only (Eq. 20): no stage III
    if kind == "selection":
        assert isinstance(tester, GanTester)
        selection = SelectionTester.from_gan(
            tester.gan,
            config.pretrain_pairs,
            generator,
            ctx.device,
            lr=config.selection_lr,
            batch_size=batch_size,
            generator=ctx.generator,
        )
        return selection, note
    return tester, note
