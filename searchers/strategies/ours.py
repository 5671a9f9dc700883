"""``ours``: the paper's method -- minimise the loss on adversarial validation data made by a tester.

Paper Sec. 3 (Eq. 1-6), Sec. 3.3, Appendix A (Algorithm 1), B.2 and D.5. With any search algorithm
(``ours-darts1st``, ``ours-darts2nd``, ``ours-pdarts``, ``ours-pcdarts``, ``ours-prdarts``) the
architecture step minimises (Eq. 4, 10)::

    L(W', A, f(tester)) + gamma * L(W', A, D_val)   [+ mu * DeCov(learner features on f(tester)), CR;
                                                      A's objective only, not the tester's]

and the tester maximises ``L(W', A, f(tester)) - lambda * L(V', D_val)`` (Eq. 11). The algorithm's own
``arch_step`` supplies ``W'`` and the hypergradient of A (Eq. 12-14: darts2nd unrolls, first-order
algorithms use W' = W); this strategy never touches an algorithm.

Per iteration (Algorithm 1) the strategy calls its tester through the interface of
:mod:`searchers.testers.base` -- a GAN (``tester=gan``, default for darts1st/darts2nd, Eq. 5,
:mod:`searchers.testers.gan`), the DADA augmentation policy (``tester=augment``, default for
pdarts/pcdarts/prdarts, Eq. 6, :mod:`searchers.testers.augment`) or the selection variables of the
pretrain ablation (Eq. 19, :mod:`searchers.testers.selection`):

1. ``objective(ctx)``: a D_val batch, then the tester's generated batch ``f(tester)``
   (``validation_batch``; on a due iteration the GAN's one-step unrolled ``G' = G - eta_g grad_G
   L_dg(G, B)``, Eq. 8, and ``f(G')``); the closure returns the objective above. The tensors ``f``
   is differentiable in (G''s parameters, P, s) go to ``ctx.extra_arch_step_params``, so the
   architecture step also returns ``v = grad_{G'} L(W', A, f(G'))``.
2. ``after_arch_step`` (due iterations): a D_val batch for V, then the tester's ``upper_step``: V'
   (Eq. 9), ``u = grad_{V'} L(V', D_val)``, the hypergradient of B (Eq. 11, 15-16) by finite
   differences (``hypergrad=fd``, default, as the paper) or double backward (``hypergrad=exact``), and
   an Adam ascent step on B.
3. ``after_weight_step``: the tester's ``lower_step``, its ordinary updates -- D (hinge + FQ loss, every
   iteration), G (SGD on L_dg), V (SGD on generated data). All run also in the algorithm's
   weights-only warm-up epochs.

Cost reduction (Sec. 3.3; ``cost_reduction=true`` = CR, default; ``false`` = NCR): hypergradients of A,
G and B every ``hyper_every`` = 8 iterations (G's SGD step too; D, V and W every iteration); DeCov on
the learner's penultimate features of the generated batch (weight ``decov_weight``) added to the
stage-IV objective as ``decov_weight * DeCov(h) / d``: A minimises it, and the tester's J (Eq. 11)
does not contain it -- the tester's tensors are differentiated by the objective without it, from the
same forward pass (``ctx.extra_arch_step_objective``; ``decov_drives_tester=true`` lets its gradient
reach the tester as well); V's feature layers
tied to the discriminator's (:class:`~searchers.testers.auxiliary.TiedAuxiliary`; GAN tester only --
the augmentation tester has no discriminator); the epoch count is the algorithm's preset (Appendix E:
50 for ours-darts/pcdarts/prdarts, 25 per stage for ours-pdarts). NCR: every iteration, no DeCov, a
separate ResNet-18 V.

The loop asks :meth:`Ours.wants_arch_step` before each architecture step, so under CR A is updated
only on the due iterations. (Should a loop call ``objective`` on a step that is not due, A is updated
on a fresh batch of the current tester's data, without unrolling and without a B update.)
``search_overrides`` gives the loop the paper's Appendix E search settings for ``ours-<algorithm>``
where they differ from the plain algorithm's preset (ours.toml ``search_overrides`` tables).

Ablations (options): ``lambda=0`` (adversarial only, Eq. 20 -- stage III and V are skipped),
``ablation=weights-only`` (Eq. 18: B fixed at FQ-GAN's values; the discriminator S is the upper-level
variable, updated by the same hypergradient and not by its GAN loss), ``ablation=pretrain`` (Eq. 19:
a fixed pretrained GAN generates ``pretrain_pairs`` pairs once; selection variables s weight them; the
D_val term's weight is ``gamma``), ``generator=fqgan|sngan|biggan`` (Table 8).

Tester initialisation (App. A.1, B.2.3, :mod:`searchers.testers.build`):
:func:`~searchers.testers.pretrain.pretrain_tester` trains G, D and V on the search-train split and
caches them under ``<data root>/testers/`` keyed by dataset, split and settings.
``tester_init=cache`` (default) starts from that cache and stops with a one-line error naming the
command that makes it when it is missing (`wcbench run` makes it first: :meth:`Ours.prepare`, its tester
stage); ``pretrain`` pretrains (and caches) when missing; ``scratch`` starts from an untrained tester,
said in the history (``tester_init``) and on the leaderboard row. The pretrain
ablation always needs a pretrained GAN (it pretrains when missing).

Diagnostics per epoch (``epoch_stats``): the error of a fixed reference classifier (ResNet-18 trained
once on search-train, cached) on this epoch's generated validation set (Fig. 1 left; the same latent
codes / images and random numbers every epoch); V's D_val loss; B (or the policy's entropy and top
sub-policies, or the selection statistics); the adversarial loss (mean learner loss on generated data
over the epoch's architecture steps); and a PNG grid of generated examples (Fig. 2) in
``<out_dir>/tester/epoch-XXX.png`` (:mod:`searchers.testers.diagnostics`).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, create_model
from torch import Tensor, nn

from searchers.base import (
    ArchStepResult,
    ModelFn,
    Objective,
    ObjectiveTerms,
    SearchContext,
    StrategyConfig,
    ValidationStrategy,
)
from searchers.darts import model_at, unrolled_weights
from searchers.splits import IndexStream
from searchers.testers.base import Tester, TesterStep, raw_batch
from searchers.testers.build import build_tester, data_stats
from searchers.testers.diagnostics import (
    classifier_error,
    probe_val_loss,
    reference_classifier,
    save_curves,
    save_grid,
    trajectory_point,
)
from searchers.testers.regularizers import decov
from wcbench.config import preset_file
from wcbench.errors import ConfigError
from wcbench.registry import STRATEGIES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger("wcbench.ours")

GAN_ALGORITHMS = frozenset({"darts1st", "darts2nd"})


# ================================================================================== config


class _OursBase(StrategyConfig):
    """Settings of ``ours``; ``lambda`` is added below (a Python keyword). Preset:
    ``wcbench/presets/strategy/ours.toml``; each paper value cites its source there."""

    tester: Literal["auto", "gan", "augment"] = Field(
        "auto", description="auto: gan for darts1st/darts2nd, augment for the others (paper Sec. 4.2)"
    )
    generator: Literal["fqgan", "sngan", "biggan"] = Field("fqgan", description="GAN tester (Table 8)")
    gamma: float = Field(1.0, ge=0, description="weight of L(W', A, D_val) (Eq. 4); Eq. 19's lambda")
    paper_lambda: dict[str, float] = Field(
        default_factory=dict, description="lambda per algorithm when lambda is unset ('*' = any other)"
    )
    ablation: Literal["none", "weights-only", "pretrain"] = Field("none", description="App. B.2.2")
    hypergrad: Literal["fd", "exact"] = Field("fd", description="B's mixed second derivatives")
    fd_r: float = Field(0.01, gt=0, description="finite-difference step r / ||direction|| (DARTS)")
    cost_reduction: bool = Field(True, description="Sec. 3.3 cost reductions (CR); false = NCR")
    hyper_every: int = Field(8, ge=1, description="CR: iterations between hypergradient steps")
    decov_weight: float = Field(0.1, ge=0, description="CR: weight of DeCov / d on generated data")
    decov_drives_tester: bool = Field(
        False, description="also let DeCov's gradient reach the tester (off: A's objective only, Sec. 3.3)"
    )
    cr_halve_epochs: bool = Field(
        False, description="CR halves the search epochs (Sec. 3.3: 50 -> 25); off: the preset's epochs"
    )
    unroll_first_order: bool = Field(
        False,
        description="first-order algorithms evaluate A's objective at W' = W - eta grad (App. A); off: W",
    )
    tie_auxiliary: bool = Field(True, description="CR: V's feature layers = D's trunk (GAN tester)")
    tester_init: Literal["cache", "pretrain", "scratch"] = Field("cache", description="see module doc")
    cache_dir: str | None = Field(None, description="pretrained testers; None = <data root>/testers")
    # tester shape
    gan_width: int = Field(64, ge=1, description="BigGAN ch (64: 256 channels, FQ-GAN CIFAR)")
    dim_z: int = Field(128, ge=4, description="latent size")
    fq_layers: list[int] = Field([0, 1, 2, 3], description="D blocks followed by FQ (FQ-GAN 0123)")
    dict_size_log2: int | None = Field(None, ge=1, description="FQ dictionary 2^k; None = dataset's")
    decay: float | None = Field(None, ge=0, le=1, description="B init lambda (FQ decay); None = dataset's")
    fq_weight: float | None = Field(None, ge=0, description="B init alpha (FQ weight); None = dataset's")
    aux_arch: Literal["resnet18", "small"] = Field("resnet18", description="V when not tied (Sec. 4.2)")
    aux_width: int = Field(64, ge=1, description="V's first-stage channels")
    aux_hidden: int = Field(256, ge=1, description="tied V's head hidden units (two layers)")
    augment_temperature: float = Field(0.5, gt=0, description="Gumbel/concrete temperature (DADA)")
    # optimisation
    tester_lr: float | None = Field(None, gt=0, description="G and V SGD lr; None = W's (Tables 25-32)")
    tester_momentum: float = Field(0.9, ge=0, description="G, V SGD momentum (Tables 25-32)")
    tester_weight_decay: float = Field(3e-4, ge=0, description="G, V weight decay (Tables 25-32)")
    tester_grad_clip: float = Field(5.0, ge=0, description="G, V gradient clip (Tables 27-31)")
    d_lr: float = Field(2e-4, gt=0, description="D Adam lr (FQ-GAN)")
    d_betas: tuple[float, float] = Field((0.0, 0.999), description="D Adam betas (FQ-GAN)")
    b_lr: float = Field(3e-4, gt=0, description="B Adam lr (Tables 25-32)")
    b_betas: tuple[float, float] = Field((0.5, 0.999), description="B Adam betas (DARTS' arch Adam)")
    b_weight_decay: float = Field(1e-3, ge=0, description="B Adam weight decay (Tables 25-32)")
    selection_lr: float = Field(0.1, gt=0, description="pretrain ablation: Adam lr of s")
    gen_batch: int | None = Field(None, ge=2, description="generated batch size; None = search batch")
    # pretraining and diagnostics
    pretrain_iters: int = Field(48828, ge=0, description="GAN pretraining G steps (FQ-GAN / 2)")
    pretrain_batch: int = Field(64, ge=2, description="pretraining batch (FQ-GAN)")
    pretrain_lr: float = Field(2e-4, gt=0, description="GAN pretraining G and D Adam lr (FQ-GAN)")
    pretrain_d_steps: int = Field(4, ge=1, description="D steps per G step in pretraining (FQ-GAN)")
    pretrain_ema: float = Field(0.9999, ge=0, lt=1, description="decay of G's weight EMA (BigGAN --ema)")
    pretrain_ema_start: int = Field(1000, ge=0, description="G step where the EMA starts (--ema_start)")
    aux_pretrain_iters: int = Field(64000, ge=0, description="V pretraining iterations (He et al.)")
    pretrain_pairs: int = Field(100000, ge=2, description="pretrain ablation: M generated pairs")
    reference_arch: Literal["resnet18", "small"] = Field("resnet18", description="Fig. 1 classifier")
    reference_width: int = Field(64, ge=1, description="reference classifier width")
    reference_iters: int = Field(64000, ge=0, description="reference training iterations; 0 = none")
    diag_samples: int = Field(1000, ge=0, description="generated examples scored per epoch")
    grid: int = Field(10, ge=0, description="Fig. 2 grid side (grid x grid images); 0 = no PNG")
    probe_iters: int = Field(0, ge=0, description="fresh probe trained on generated data; 0 = off")

    @property
    def arch_step_period(self) -> int:
        """Iterations between architecture (hypergradient) steps: ``hyper_every`` under CR, else 1."""
        return self.hyper_every if self.cost_reduction else 1


OursConfig = create_model(
    "OursConfig",
    __base__=_OursBase,
    __doc__=_OursBase.__doc__,
    **{
        "lambda": (
            float | None,
            Field(None, ge=0, description="lambda of Eq. 4/11; None = paper_lambda; 0 = adversarial only"),
        )
    },
)


def search_overrides(algorithm: str, dataset: str, preset: str = "paper") -> dict[str, Any]:
    """Search-algorithm settings the paper's Appendix E uses for ``ours-<algorithm>`` where they differ
    from the plain algorithm's preset (``[<preset>.search_overrides.<algorithm>]`` of ours.toml, with
    ``[<preset>.search_overrides.<algorithm>.<dataset>]`` over it)."""
    path = preset_file("strategy", "ours")
    with path.open("rb") as fh:
        tables = tomllib.load(fh)
    per = tables.get(preset, {}).get("search_overrides", {}).get(algorithm, {})
    out = {k: v for k, v in per.items() if not isinstance(v, dict)}
    out.update(per.get(dataset, {}))
    return out


# ================================================================================== helpers


def _last_linear(module: nn.Module) -> nn.Linear | None:
    last = None
    for m in module.modules():
        if isinstance(m, nn.Linear):
            last = m
    return last


def _seeded(seed: int, salt: str) -> torch.Generator:
    from wcbench.seeding import derive_seed

    return torch.Generator().manual_seed(derive_seed(f"ours-{salt}", seed))


@contextmanager
def _own_rng(device: torch.device, generator: torch.Generator) -> Iterator[None]:
    """Seed the global RNGs from ``generator`` inside the block and restore them afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
        yield


# ================================================================================== the strategy


@STRATEGIES.register("ours")
class Ours(ValidationStrategy):
    """The paper's four-level method as a validation strategy (module docstring)."""

    Config = OursConfig
    name = "ours"

    @classmethod
    def search_overrides(cls, algorithm: str, dataset: str, preset: str) -> dict[str, Any]:
        """The paper's Appendix E search settings for ``ours-<algorithm>`` (ours.toml)."""
        return search_overrides(algorithm, dataset, preset)

    @classmethod
    def config_search_overrides(cls, config: StrategyConfig, values: dict[str, Any]) -> dict[str, Any]:
        """``cr_halve_epochs``: Sec. 3.3's halved epoch count under the cost reductions."""
        if config.cost_reduction and config.cr_halve_epochs and "epochs" in values:
            return {"epochs": max(1, int(values["epochs"]) // 2)}
        return {}

    @classmethod
    def wants_prepare(cls, config: StrategyConfig) -> bool:
        """The tester stage runs unless the user asked for an untrained tester (``tester_init=scratch``)."""
        return config.tester_init != "scratch"

    @classmethod
    def prepare(cls, ctx: SearchContext, config: StrategyConfig) -> str:
        """The tester stage (Sec. 3.3, App. A.1): pretrain G/D, V and the reference classifier of
        Fig. 1 into the data root's cache, or find them there (:func:`pretrain_tester_cache`)."""
        return pretrain_tester_cache(ctx, config)

    def __init__(self, config: StrategyConfig) -> None:
        super().__init__(config)
        self.tester: Tester | None = None
        self.reference: nn.Module | None = None
        self.init_note = ""
        self._pending: dict[str, Any] | None = None
        self._epoch_stats: dict[str, Any] = {}
        self._reset_epoch()
        self.hyper_steps_total = 0
        self.trajectory: list[dict[str, Any]] = []  # per epoch: reference accuracy, B (curves.png)

    # ---------------------------------------------------------------- resolved settings
    @property
    def lam(self) -> float:
        return self._lam

    def _resolve(self, ctx: SearchContext) -> None:
        cfg = self.config
        algo = getattr(ctx.algorithm, "name", "") or type(ctx.algorithm).__name__.lower()
        self.algorithm_name = algo
        if cfg.ablation == "pretrain":
            self.kind = "selection"
        elif cfg.tester == "auto":
            self.kind = "gan" if algo in GAN_ALGORITHMS else "augment"
        else:
            self.kind = cfg.tester
        if cfg.ablation == "weights-only" and self.kind != "gan":
            raise ConfigError("ablation=weights-only needs the GAN tester (set strategy.tester=gan)")
        lam = getattr(cfg, "lambda")
        if lam is None:
            lam = cfg.paper_lambda.get(algo, cfg.paper_lambda.get("*", 1.0))
        self._lam = 0.0 if self.kind == "selection" else float(lam)
        self.every = cfg.arch_step_period
        self.decov_weight = cfg.decov_weight if cfg.cost_reduction else 0.0
        self.mode = cfg.hypergrad

    def _cache_dir(self) -> Path:
        if self.config.cache_dir:
            return Path(self.config.cache_dir).expanduser()
        return self.data_dir / "testers"

    # ---------------------------------------------------------------- building
    def setup(self, ctx: SearchContext) -> None:
        cfg = self.config
        self._resolve(ctx)
        self.data_dir = ctx.data_dir()  # the search's data root: pretrained testers are cached under it
        self.device = ctx.device
        self.mean = ctx.train.mean.view(1, -1, 1, 1)
        self.std = ctx.train.std.view(1, -1, 1, 1)
        self.batch_size = int(cfg.gen_batch or ctx.config.batch_size)
        g_setup = _seeded(ctx.seed, "setup")
        with _own_rng(ctx.device, g_setup):  # the search's global RNG stream is left as it was
            self.tester = self.make_tester(ctx, g_setup)
            self.reference = self._make_reference(ctx)
        n_tr, n_val = len(ctx.train), len(ctx.val)
        self.train_stream = IndexStream(torch.arange(n_tr), self.batch_size, ctx.generator)
        self.val_stream = IndexStream(torch.arange(n_val), ctx.config.batch_size, ctx.generator)
        self.aux_val_stream = IndexStream(torch.arange(n_val), self.batch_size, ctx.generator)
        self._fix_diagnostic_inputs(ctx)
        self.out_dir = Path(ctx.out_dir) if ctx.out_dir is not None else None

    def make_tester(self, ctx: SearchContext, generator: torch.Generator) -> Tester:
        """The tester of ``self.kind`` from the config, initialised as ``tester_init`` says (sets
        ``init_note``); ``generator`` draws the setup's numbers. Override to plug in another tester."""
        tester, self.init_note = build_tester(
            self.kind,
            self.config,
            ctx,
            cache_dir=self._cache_dir(),
            lam=self._lam,
            batch_size=self.batch_size,
            generator=generator,
        )
        return tester

    def _make_reference(self, ctx: SearchContext) -> nn.Module | None:
        """The fixed reference classifier of Fig. 1 (left), trained once on search-train, cached."""
        cfg = self.config
        if cfg.reference_iters <= 0 or cfg.diag_samples <= 0:
            return None
        return reference_classifier(
            ctx.train,
            dataset=ctx.dataset,
            num_classes=ctx.num_classes,
            stats=data_stats(ctx),
            arch=cfg.reference_arch,
            width=cfg.reference_width,
            iters=cfg.reference_iters,
            cache_dir=self._cache_dir(),
            device=ctx.device,
            generator=_seeded(ctx.seed, "reference"),
        )

    def _fix_diagnostic_inputs(self, ctx: SearchContext) -> None:
        """Fixed inputs of the per-epoch generated validation set (the same every epoch)."""
        assert self.tester is not None
        n = self.config.diag_samples
        g = _seeded(ctx.seed, "diagnostics")
        self.bank: dict[str, Any] = {}
        if n <= 0:
            return
        self.bank = self.tester.diagnostic_inputs(n, g, ctx.train, ctx.num_classes, ctx.device)
        nv = min(n, len(ctx.val))
        self.bank["val"] = raw_batch(ctx.val, torch.arange(nv))

    # ---------------------------------------------------------------- schedule
    def _due(self, ctx: SearchContext) -> bool:
        return ctx.step % self.every == 0

    def wants_arch_step(self, ctx: SearchContext) -> bool:
        """Whether this step's architecture update is due (CR: every ``hyper_every`` iterations)."""
        return self._due(ctx)

    def _eta(self, ctx: SearchContext) -> float:
        return float(self.config.tester_lr if self.config.tester_lr is not None else ctx.lr)

    def _normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def _step(self, ctx: SearchContext) -> TesterStep:
        """What the tester needs of this iteration (its random numbers come from ``ctx.generator``)."""
        return TesterStep(
            generator=ctx.generator,
            device=ctx.device,
            batch_size=self.batch_size,
            eta=self._eta(ctx),
            due=self._due(ctx),
            train_batch=lambda: raw_batch(ctx.train, self.train_stream.next()[0]),
        )

    # ---------------------------------------------------------------- epoch statistics
    def _reset_epoch(self) -> None:
        # accumulated as tensors on the device (no host sync in the step loop), read at the epoch's end
        self._sums: dict[str, Tensor] = {}
        self._counts: dict[str, int] = {}
        self._arch_steps = 0
        self._hyper_steps = 0

    def _add(self, key: str, value: Tensor | None) -> None:
        if value is None:
            return
        v = value.detach().float()
        self._sums[key] = self._sums[key] + v if key in self._sums else v
        self._counts[key] = self._counts.get(key, 0) + 1

    def _means(self) -> dict[str, float]:
        return {k: float(v) / self._counts[k] for k, v in self._sums.items()}

    def on_epoch_start(self, epoch: int, ctx: SearchContext) -> None:
        self._reset_epoch()
        self._epoch_stats = {}

    # ---------------------------------------------------------------- Algorithm 1
    def objective(self, ctx: SearchContext) -> Objective:
        """Step 1: the architecture step's objective on the tester's generated batch (Eq. 4, 10)."""
        assert self.tester is not None
        step = self._step(ctx)
        x_val, y_val = ctx.val.batch(self.val_stream.next()[0], generator=ctx.generator)
        batch = self.tester.validation_batch(step)
        ctx.extra_arch_step_params, ctx.extra_arch_step_objective = batch.params, None
        pending: dict[str, Any] = {"due": step.due, "batch": batch}
        self._pending = pending
        gamma, mu = self.config.gamma, self.decov_weight
        algorithm = ctx.algorithm
        w_prime = None
        if self.config.unroll_first_order and not algorithm.second_order and ctx.train_batch is not None:
            # App. A: W' = W - eta grad_W L_tr(W, A), treated as a constant (first-order hypergradient)
            w_prime = unrolled_weights(algorithm, ctx.train_batch, ctx.lr, ctx.weight_optimizer)

        def features(model_fn: ModelFn, x: Tensor) -> tuple[Tensor, Tensor | None]:
            """(logits, the learner's penultimate features when DeCov is on) of generated images."""
            feats: list[Tensor] = []
            lin = _last_linear(algorithm) if mu > 0 else None
            handle = (
                lin.register_forward_hook(lambda m, i, o: feats.append(i[0])) if lin is not None else None
            )
            try:
                logits = model_fn(self._normalize(x))
            finally:
                if handle is not None:
                    handle.remove()
            return logits, (feats[0] if feats else None)

        def model_of(model_fn: ModelFn) -> ModelFn:
            return model_fn if w_prime is None else model_at(algorithm, w_prime)

        def tester_term(model_fn: ModelFn) -> Tensor:
            """The loss on the tester's generated batch (+ DeCov on its features, Sec. 3.3)."""
            x_gen, y_gen, s = batch.make()
            model_fn = model_of(model_fn)
            logits, h = features(model_fn, x_gen) if mu > 0 else (model_fn(self._normalize(x_gen)), None)
            losses = F.cross_entropy(logits.float(), y_gen, reduction="none")
            adv = losses.mean() if s is None else (s * losses).sum() / s.sum().clamp_min(1e-12)
            total, reg = adv, None
            if h is not None and mu > 0:
                reg = decov(h.float(), per_dim=True)
                if not self.config.decov_drives_tester:
                    # DeCov (Sec. 3.3) regularises the learner: it is in A's objective, not in the
                    # tester's J (Eq. 11). The tester's tensors follow the objective without it, from
                    # this same pass (a second pass on detached images held a third supernet graph).
                    ctx.extra_arch_step_objective = adv
                total = adv + mu * reg
            pending["adv"], pending["decov"] = adv.detach(), None if reg is None else reg.detach()
            return total

        def val_term(model_fn: ModelFn) -> Tensor:
            """gamma times the loss on a D_val batch (Eq. 4); the tester's tensors are not in it."""
            val = F.cross_entropy(model_of(model_fn)(x_val).float(), y_val)
            pending["val"] = val.detach()
            return gamma * val

        # Two terms on two batches: the architecture step backpropagates each before building the
        # next (the same gradient; one supernet graph held at a time instead of two).
        return ObjectiveTerms(tester_term, val_term)

    def after_arch_step(self, ctx: SearchContext, result: ArchStepResult) -> None:
        """Step 2 (due iterations): the tester's hypergradient and ascent step (Eq. 11, 15-16)."""
        p, self._pending = self._pending, None
        ctx.extra_arch_step_params, ctx.extra_arch_step_objective = [], None
        if p is None:
            return
        self._arch_steps += 1
        self._add("adversarial_loss", p.get("adv"))
        self._add("val_term_loss", p.get("val"))
        self._add("decov", p.get("decov"))
        if not p["due"]:
            return
        assert self.tester is not None
        step = self._step(ctx)
        val_batch = raw_batch(ctx.val, self.aux_val_stream.next()[0])
        st = self.tester.upper_step(
            step, p["batch"], val_batch, lam=self._lam, mode=self.mode, r=self.config.fd_r
        )
        self._add("aux_val_loss_unrolled", st.get("aux_val_loss_unrolled"))
        self._hyper_steps += 1
        self.hyper_steps_total += 1

    def after_weight_step(self, ctx: SearchContext) -> None:
        """Step 3 (every iteration, warm-up included): the tester's ordinary updates."""
        assert self.tester is not None
        for k, val in self.tester.lower_step(self._step(ctx)).items():
            self._add(k, val)

    # ---------------------------------------------------------------- diagnostics
    @torch.no_grad()
    def generated_validation_set(self) -> tuple[Tensor, Tensor]:
        """This epoch's generated validation set from the fixed inputs ([0, 1] images, labels)."""
        assert self.tester is not None
        return self.tester.generated_set(self.bank)

    def on_epoch_end(self, ctx: SearchContext) -> None:
        assert self.tester is not None
        cfg = self.config
        stats: dict[str, Any] = {
            "tester": self.tester.kind,
            "generator": cfg.generator if self.kind == "gan" else None,
            "lambda": self._lam,
            "gamma": cfg.gamma,
            "ablation": cfg.ablation,
            "cost_reduction": cfg.cost_reduction,
            "tester_init": self.init_note,
            "arch_steps": self._arch_steps,
            "hyper_steps": self._hyper_steps,
            "adversarial_loss": None,
            "val_term_loss": None,
            "decov": None,
            "aux_val_loss_unrolled": None,
        }
        stats.update(self._means())
        stats.update(self.tester.diagnostics())
        if self.bank:
            x, y = self.generated_validation_set()
            stats["reference_error"] = (
                classifier_error(self.reference, x, y) if self.reference is not None else None
            )
            xv, yv = self.bank["val"]
            stats["aux_val_loss"] = self.tester.aux_loss(xv, yv)
            if cfg.probe_iters > 0:
                stats["probe_val_loss"] = self._probe(ctx, x, y, xv, yv)
            if cfg.grid > 0 and self.out_dir is not None:
                k = cfg.grid * cfg.grid
                order = torch.argsort(y[:k].cpu(), stable=True).to(y.device)
                path = self.out_dir / "tester" / f"epoch-{ctx.epoch:03d}.png"
                save_grid(x[:k].index_select(0, order), path, cfg.grid)
                stats["grid_png"] = str(path.relative_to(self.out_dir))
        stats["reference_accuracy"] = (
            None if stats.get("reference_error") is None else 1.0 - stats["reference_error"]
        )
        self.trajectory = [p for p in self.trajectory if p["epoch"] < ctx.epoch]
        self.trajectory.append(trajectory_point(ctx.epoch, stats))
        if self.out_dir is not None:
            save_curves(self.trajectory, self.out_dir / "tester" / "curves.png")
            stats["curves_png"] = "tester/curves.png"
        self._epoch_stats = stats

    def _probe(self, ctx: SearchContext, x: Tensor, y: Tensor, xv: Tensor, yv: Tensor) -> float:
        """D_val loss of a fresh small classifier trained on the generated set (a V-independent
        measure of how useful the generated data are)."""
        g = _seeded(ctx.seed, f"probe-{ctx.epoch}")
        with _own_rng(ctx.device, g):
            return probe_val_loss(
                (x, y),
                (xv, yv),
                num_classes=ctx.num_classes,
                stats=data_stats(ctx),
                iters=self.config.probe_iters,
                device=ctx.device,
                generator=g,
            )

    def epoch_stats(self) -> dict[str, Any]:
        out = dict(self._epoch_stats)
        for k, v in list(out.items()):
            if isinstance(v, float) and not math.isfinite(v):
                out[k] = None
        return out

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        assert self.tester is not None
        streams = {"train": self.train_stream, "val": self.val_stream, "aux_val": self.aux_val_stream}
        streams.update(self.tester.streams())
        return {
            "tester": self.tester.state_dict(),
            "hyper_steps_total": self.hyper_steps_total,
            "streams": {name: stream.state_dict() for name, stream in streams.items()},
            "trajectory": self.trajectory,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.tester is not None
        self.tester.load_state_dict(state["tester"])
        self.hyper_steps_total = int(state.get("hyper_steps_total", 0))
        self.trajectory = list(state.get("trajectory", []))
        streams = state.get("streams", {})
        self.train_stream.load_state_dict(streams["train"])
        self.val_stream.load_state_dict(streams["val"])
        self.aux_val_stream.load_state_dict(streams["aux_val"])
        for name, stream in self.tester.streams().items():
            stream.load_state_dict(streams[name])


# ================================================================================== `wcbench tester pretrain`


def pretrain_tester_cache(ctx: SearchContext, config: StrategyConfig) -> str:
    """Pretrain the tester an ``ours`` search with ``config`` starts from and cache it under the
    search's data root (App. A.1, B.2.3): the strategy's setup with ``tester_init="pretrain"``, which
    trains and caches only what is missing. Returns where the tester came from (``cache <path>`` or
    ``pretrained now, cache <path>``)."""
    strategy = Ours(config.model_copy(update={"tester_init": "pretrain"}))
    strategy.setup(ctx)
    return strategy.init_note
