"""``ours``: the paper's method -- minimise the loss on adversarial validation data made by a tester.

Paper Sec. 3 (Eq. 1-6), Sec. 3.3, Appendix A (Algorithm 1), B.2 and D.5. With any search algorithm
(``ours-darts1st``, ``ours-darts2nd``, ``ours-pdarts``, ``ours-pcdarts``, ``ours-prdarts``) the
architecture step minimises (Eq. 4, 10)::

    L(W', A, f(tester)) + gamma * L(W', A, D_val)   [+ mu * DeCov(learner features on f(tester)), CR]

and the tester maximises ``L(W', A, f(tester)) - lambda * L(V', D_val)`` (Eq. 11). The algorithm's own
``arch_step`` supplies ``W'`` and the hypergradient of A (Eq. 12-14: darts2nd unrolls, first-order
algorithms use W' = W); this strategy never touches an algorithm.

Per iteration (Algorithm 1), with the tester a GAN (``tester=gan``, default for darts1st/darts2nd, Eq. 5)
or the DADA augmentation policy (``tester=augment``, default for pdarts/pcdarts/prdarts, Eq. 6):

1. ``objective(ctx)``: ``G' = G - eta_g grad_G L_dg(G, B)`` (Eq. 8, one-step unrolled with
   ``torch.func.functional_call``); the closure generates ``f(G')`` (class labels y drawn uniformly,
   z ~ N(0, I)) and returns the objective above. G''s parameters (or P itself) are put in
   ``ctx.extra_arch_step_params``, so the architecture step also returns
   ``v = grad_{G'} L(W', A, f(G'))``.
2. ``after_arch_step``: V' (Eq. 9), ``u = grad_{V'} L(V', D_val)``, and the hypergradient of B (Eq. 11,
   15-16), by finite differences (``hypergrad=fd``, default, as the paper) or double backward
   (``hypergrad=exact``); B takes an Adam ascent step (see :mod:`searchers.testers.tester`).
3. ``after_weight_step``: the ordinary updates -- D (hinge + FQ loss, every iteration), G (SGD on L_dg),
   V (SGD on generated data). All run also in the algorithm's weights-only warm-up epochs.

Cost reduction (Sec. 3.3; ``cost_reduction=true`` = CR, default; ``false`` = NCR): hypergradients of A,
G and B every ``hyper_every`` = 8 iterations (G's SGD step too; D, V and W every iteration); DeCov on
the learner's penultimate features of the generated batch (weight ``decov_weight``) added to the
stage-IV objective as ``decov_weight * DeCov(h) / d`` (A minimises it, the tester maximises it with
the rest of Eq. 4); V's feature layers
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

Tester initialisation (App. A.1, B.2.3): :func:`~searchers.testers.tester.pretrain_tester` trains G, D
and V on the search-train split and caches them under ``<data root>/testers/`` keyed by dataset, split
and settings. ``tester_init=cache`` (default) starts from that cache when present and otherwise logs
that it trains from scratch; ``pretrain`` pretrains (and caches) when missing; ``scratch`` forces
scratch. The pretrain ablation always needs a pretrained GAN (it pretrains when missing).

Diagnostics per epoch (``epoch_stats``): the error of a fixed reference classifier (ResNet-18 trained
once on search-train, cached) on this epoch's generated validation set (Fig. 1 left; the same latent
codes / images and random numbers every epoch); V's D_val loss; B (or the policy's entropy and top
sub-policies, or the selection statistics); the adversarial loss (mean learner loss on generated data
over the epoch's architecture steps); and a PNG grid of generated examples (Fig. 2) in
``<out_dir>/tester/epoch-XXX.png``.
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
    IndexStream,
    ModelFn,
    Objective,
    SearchContext,
    StrategyConfig,
    ValidationStrategy,
)
from searchers.testers.augment import AugmentPolicy
from searchers.testers.auxiliary import (
    TiedAuxiliary,
    build_classifier,
    classifier_error,
    train_classifier,
)
from searchers.testers.fqgan import ConditionalGAN, fq_defaults
from searchers.testers.regularizers import decov
from searchers.testers.tester import (
    AugmentTester,
    GanTester,
    SelectionTester,
    _atomic_save,
    cache_key,
    load_pretrained,
    pretrain_tester,
    tester_cache_name,
)
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
    aux_pretrain_iters: int = Field(64000, ge=0, description="V pretraining iterations (He et al.)")
    pretrain_pairs: int = Field(100000, ge=2, description="pretrain ablation: M generated pairs")
    reference_arch: Literal["resnet18", "small"] = Field("resnet18", description="Fig. 1 classifier")
    reference_width: int = Field(64, ge=1, description="reference classifier width")
    reference_iters: int = Field(64000, ge=0, description="reference training iterations; 0 = none")
    diag_samples: int = Field(1000, ge=0, description="generated examples scored per epoch")
    grid: int = Field(10, ge=0, description="Fig. 2 grid side (grid x grid images); 0 = no PNG")
    probe_iters: int = Field(0, ge=0, description="fresh probe trained on generated data; 0 = off")


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


def _stats(ctx: SearchContext) -> tuple[list[float], list[float]]:
    """The dataset's normalisation (mean, std) as lists."""
    return ctx.train.mean.flatten().tolist(), ctx.train.std.flatten().tolist()


def _raw(split: Any, pos: Tensor) -> tuple[Tensor, Tensor]:
    """Unaugmented [0, 1] images and labels of a SplitData at positions ``pos``."""
    p = pos.to(split.images.device)
    return split.images.index_select(0, p).float() / 255, split.labels.index_select(0, p)


def save_grid(x: Tensor, path: Path, nrow: int) -> None:
    """Save [0, 1] images (N, 3, H, W) as a PNG grid, atomically."""
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    save_image(x.detach().float().cpu().clamp(0, 1), tmp, nrow=nrow, padding=1)
    tmp.replace(path)


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

    def __init__(self, config: StrategyConfig) -> None:
        super().__init__(config)
        self.tester: GanTester | AugmentTester | SelectionTester | None = None
        self.reference: nn.Module | None = None
        self.init_note = ""
        self._pending: dict[str, Any] | None = None
        self._epoch_stats: dict[str, Any] = {}
        self._reset_epoch()
        self.hyper_steps_total = 0

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
        self.every = cfg.hyper_every if cfg.cost_reduction else 1
        self.decov_weight = cfg.decov_weight if cfg.cost_reduction else 0.0
        self.mode = cfg.hypergrad

    def _cache_dir(self) -> Path:
        if self.config.cache_dir:
            return Path(self.config.cache_dir).expanduser()
        return self.data_dir / "testers"

    # ---------------------------------------------------------------- building
    def _build_gan(self, ctx: SearchContext) -> ConditionalGAN:
        cfg = self.config
        fq = fq_defaults(ctx.dataset)
        size = 2 ** (cfg.dict_size_log2 or int(fq["dict_size_log2"]))
        return ConditionalGAN(
            cfg.generator,
            ctx.num_classes,
            width=cfg.gan_width,
            dim_z=cfg.dim_z,
            fq_layers=cfg.fq_layers,
            dict_size=size,
            decay=fq["decay"] if cfg.decay is None else cfg.decay,
            fq_weight=fq["fq_weight"] if cfg.fq_weight is None else cfg.fq_weight,
        ).to(ctx.device)

    def _build_aux(
        self, ctx: SearchContext, gan: ConditionalGAN | None, force: bool = False
    ) -> nn.Module | None:
        cfg = self.config
        if self._lam <= 0 and not force:
            return None  # adversarial only: stage III skipped (Eq. 20)
        if gan is not None and cfg.cost_reduction and cfg.tie_auxiliary:
            return TiedAuxiliary(gan.D, ctx.num_classes, cfg.aux_hidden).to(ctx.device)
        return build_classifier(cfg.aux_arch, ctx.num_classes, cfg.aux_width, *_stats(ctx)).to(ctx.device)

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
            self._build_tester(ctx, g_setup)
            self._build_reference(ctx)
        n_tr, n_val = len(ctx.train), len(ctx.val)
        self.train_stream = IndexStream(torch.arange(n_tr), self.batch_size, ctx.generator)
        self.val_stream = IndexStream(torch.arange(n_val), ctx.config.batch_size, ctx.generator)
        self.aux_val_stream = IndexStream(torch.arange(n_val), self.batch_size, ctx.generator)
        if isinstance(self.tester, SelectionTester):
            m = self.tester.images.shape[0]
            self.pair_stream = IndexStream(torch.arange(m), self.batch_size, ctx.generator)
        self._build_diag_bank(ctx)
        self.out_dir = Path(ctx.out_dir) if ctx.out_dir is not None else None

    def _build_tester(self, ctx: SearchContext, g: torch.Generator) -> None:
        cfg = self.config
        common = dict(
            momentum=cfg.tester_momentum,
            weight_decay=cfg.tester_weight_decay,
            grad_clip=cfg.tester_grad_clip,
            b_lr=cfg.b_lr,
            b_betas=tuple(cfg.b_betas),
            b_weight_decay=cfg.b_weight_decay,
        )
        cache = self._cache_dir()
        # V is always built for the cache key and the pretraining (so lambda=0 and the pretrain ablation
        # start from the same pretrained tester as the full method), then dropped where not used
        if self.kind == "augment":
            policy = AugmentPolicy(cfg.augment_temperature).to(ctx.device)
            tester: Any = AugmentTester(policy, self._build_aux(ctx, None, force=True), **common)
        else:
            gan = self._build_gan(ctx)
            tester = GanTester(
                gan,
                self._build_aux(ctx, gan, force=True),
                upper="D" if cfg.ablation == "weights-only" else "B",
                d_lr=cfg.d_lr,
                d_betas=tuple(cfg.d_betas),
                train_d_loss=cfg.ablation != "weights-only",
                **common,
            )
        path = cache / f"{tester_cache_name(ctx.train, tester, cfg, ctx.dataset)}.pt"
        want = cfg.tester_init
        if self.kind == "selection" and want != "scratch":
            want = "pretrain"
        if want == "scratch":
            self.init_note = "scratch (tester_init=scratch)"
        elif path.exists():
            load_pretrained(tester, path)
            self.init_note = f"cache {path}"
        elif want == "pretrain":
            log.info("ours: pretraining the tester into %s", path)
            pretrain_tester(
                ctx.train, tester, cfg, cache, dataset_name=ctx.dataset, generator=g, log=log.info
            )
            load_pretrained(tester, path)
            self.init_note = f"pretrained now, cache {path}"
        else:
            self.init_note = f"scratch (no pretrained tester at {path})"
        log.info("ours: tester %s initialised from %s", self.kind, self.init_note)
        if self._lam <= 0:
            tester.aux, tester.v_opt = None, None  # adversarial only (Eq. 20): no stage III
        if self.kind == "selection":
            tester = self._make_selection(ctx, tester.gan, g)
        self.tester = tester

    @torch.no_grad()
    def _make_selection(self, ctx: SearchContext, gan: ConditionalGAN, g: torch.Generator) -> SelectionTester:
        """Eq. 19: generate the M pairs once with the fixed pretrained GAN."""
        m, chunk = self.config.pretrain_pairs, 500
        xs, ys = [], []
        gan.eval()
        for s in range(0, m, chunk):
            n = min(chunk, m - s)
            z, y = gan.sample_latent(max(n, 2), g, ctx.device)
            x = gan.generate(z, y)[:n]
            xs.append((x * 255).round().clamp(0, 255).to(torch.uint8))
            ys.append(y[:n])
        return SelectionTester(torch.cat(xs), torch.cat(ys), lr=self.config.selection_lr)

    def _build_reference(self, ctx: SearchContext) -> None:
        """The fixed reference classifier of Fig. 1 (left), trained once on search-train, cached."""
        cfg = self.config
        if cfg.reference_iters <= 0 or cfg.diag_samples <= 0:
            self.reference = None
            return
        settings = {
            "arch": cfg.reference_arch,
            "width": cfg.reference_width,
            "iters": cfg.reference_iters,
            "batch": 128,
        }
        path = (
            self._cache_dir()
            / f"{cache_key('reference', ctx.dataset, ctx.train.dataset_indices, settings)}.pt"
        )
        model = build_classifier(cfg.reference_arch, ctx.num_classes, cfg.reference_width, *_stats(ctx)).to(
            ctx.device
        )
        if path.exists():
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        else:
            log.info("ours: training the reference classifier into %s", path)
            train_classifier(
                model,
                ctx.train.images,
                ctx.train.labels,
                iters=cfg.reference_iters,
                batch_size=min(128, len(ctx.train)),
                generator=_seeded(ctx.seed, "reference"),
            )
            _atomic_save(model.state_dict(), path)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.reference = model

    def _build_diag_bank(self, ctx: SearchContext) -> None:
        """Fixed inputs of the per-epoch generated validation set (same every epoch)."""
        n = self.config.diag_samples
        g = _seeded(ctx.seed, "diagnostics")
        self.bank: dict[str, Any] = {}
        if n <= 0:
            return
        if isinstance(self.tester, GanTester):
            z, _ = self.tester.gan.sample_latent(max(n, 2), g, ctx.device)
            y = torch.arange(max(n, 2), device=ctx.device) % ctx.num_classes  # class-balanced
            self.bank = {"z": z, "y": y}
        elif isinstance(self.tester, AugmentTester):
            pos = torch.randperm(len(ctx.train), generator=g)[:n]
            x, y = _raw(ctx.train, pos)
            self.bank = {"x": x, "y": y, "sample": self.tester.policy.draw(x.shape[0], g)}
        else:
            assert isinstance(self.tester, SelectionTester)
            m = self.tester.images.shape[0]
            self.bank = {"idx": torch.randperm(m, generator=g)[: min(n, m)]}
        nv = min(n, len(ctx.val))
        self.bank["val"] = _raw(ctx.val, torch.arange(nv))

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

    def _sample_latent(self, ctx: SearchContext, n: int | None = None) -> tuple[Tensor, Tensor]:
        assert isinstance(self.tester, GanTester)
        return self.tester.gan.sample_latent(n or self.batch_size, ctx.generator, ctx.device)

    def _train_batch(self, ctx: SearchContext) -> tuple[Tensor, Tensor]:
        return _raw(ctx.train, self.train_stream.next()[0])

    # ---------------------------------------------------------------- ValidationStrategy
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

    def objective(self, ctx: SearchContext) -> Objective:
        assert self.tester is not None
        tester = self.tester
        due = self._due(ctx)
        x_val, y_val = ctx.val.batch(self.val_stream.next()[0], generator=ctx.generator)
        extras: list[Tensor] = []
        pending: dict[str, Any] = {"due": due}
        if isinstance(tester, GanTester):
            z2, y2 = self._sample_latent(ctx)
            if due:
                zg, yg = self._sample_latent(ctx)
                g_prime = tester.unrolled(self._eta(ctx), zg, yg)
                extras = list(g_prime.values())
                pending.update(g_prime=g_prime, gen_batch=(zg, yg))

                def make() -> tuple[Tensor, Tensor, Tensor | None]:
                    return tester.generate_at(g_prime, z2, y2), y2, None

            else:
                with torch.no_grad():
                    fixed = tester.generate_at(None, z2, y2)

                def make() -> tuple[Tensor, Tensor, Tensor | None]:
                    return fixed, y2, None

        elif isinstance(tester, AugmentTester):
            x_tr, y_tr = self._train_batch(ctx)
            sample = tester.policy.draw(x_tr.shape[0], ctx.generator)
            if due:
                for p in tester.upper_params:
                    p.grad = None
                extras = list(tester.upper_params)

                def make() -> tuple[Tensor, Tensor, Tensor | None]:
                    return tester.augment(x_tr, sample), y_tr, None

            else:
                with torch.no_grad():
                    fixed = tester.augment(x_tr, sample)

                def make() -> tuple[Tensor, Tensor, Tensor | None]:
                    return fixed, y_tr, None

        else:
            idx = self.pair_stream.next()[0]
            if due:
                tester.s.grad = None
                extras = [tester.s]

            def make() -> tuple[Tensor, Tensor, Tensor | None]:
                x, y, s = tester.batch(idx)
                return x, y, (s if due else s.detach())

        ctx.extra_arch_step_params = extras
        self._pending = pending
        gamma, mu = self.config.gamma, self.decov_weight
        algorithm = ctx.algorithm

        def objective(model_fn: ModelFn) -> Tensor:
            x_gen, y_gen, s = make()
            feats: list[Tensor] = []
            lin = _last_linear(algorithm) if mu > 0 else None
            handle = (
                lin.register_forward_hook(lambda m, i, o: feats.append(i[0])) if lin is not None else None
            )
            try:
                logits = model_fn(self._normalize(x_gen))
            finally:
                if handle is not None:
                    handle.remove()
            losses = F.cross_entropy(logits.float(), y_gen, reduction="none")
            adv = losses.mean() if s is None else (s * losses).sum() / s.sum().clamp_min(1e-12)
            val = F.cross_entropy(model_fn(x_val).float(), y_val)
            total = adv + gamma * val
            reg = None
            if feats and mu > 0:
                reg = decov(feats[0].float(), per_dim=True)
                total = total + mu * reg
            pending["adv"], pending["val"] = adv.detach(), val.detach()
            pending["decov"] = None if reg is None else reg.detach()
            return total

        return objective

    def after_arch_step(self, ctx: SearchContext, result: ArchStepResult) -> None:
        p, self._pending = self._pending, None
        ctx.extra_arch_step_params = []
        if p is None:
            return
        self._arch_steps += 1
        self._add("adversarial_loss", p.get("adv"))
        self._add("val_term_loss", p.get("val"))
        self._add("decov", p.get("decov"))
        if not p["due"]:
            return
        tester = self.tester
        eta = self._eta(ctx)
        xv, yv = _raw(ctx.val, self.aux_val_stream.next()[0])
        if isinstance(tester, GanTester):
            g_prime = p["g_prime"]
            v = [torch.zeros_like(t) if t.grad is None else t.grad.detach() for t in g_prime.values()]
            dj, st = tester.hypergradient(
                g_prime,
                v,
                eta_g=eta,
                lam=self._lam,
                eta_v=eta,
                gen_batch=p["gen_batch"],
                aux_batch=self._sample_latent(ctx),
                val_batch=(xv, yv),
                mode=self.mode,
                r=self.config.fd_r,
            )
        elif isinstance(tester, AugmentTester):
            direct = [torch.zeros_like(t) if t.grad is None else t.grad.detach() for t in tester.upper_params]
            for t in tester.upper_params:
                t.grad = None
            x1, y1 = self._train_batch(ctx)
            dj, st = tester.hypergradient(
                direct,
                lam=self._lam,
                eta_v=eta,
                aux_batch=(x1, y1, tester.policy.draw(x1.shape[0], ctx.generator)),
                val_batch=(xv, yv),
                mode=self.mode,
                r=self.config.fd_r,
            )
        else:
            assert isinstance(tester, SelectionTester)
            g = tester.s.grad
            dj, st = [torch.zeros_like(tester.s) if g is None else g.detach()], {}
            tester.s.grad = None
        if dj:
            tester.step_upper(dj)
        self._add("aux_val_loss_unrolled", st.get("aux_val_loss_unrolled"))
        self._hyper_steps += 1
        self.hyper_steps_total += 1

    def after_weight_step(self, ctx: SearchContext) -> None:
        tester = self.tester
        eta = self._eta(ctx)
        if isinstance(tester, GanTester):
            if self.config.ablation != "weights-only":
                x, y = self._train_batch(ctx)
                z, yf = self._sample_latent(ctx)
                for k, val in tester.train_d(x, y, z, yf).items():
                    self._add(k, val)
            if self._due(ctx):
                z, yf = self._sample_latent(ctx)
                tester.train_g(z, yf, eta)
            if tester.aux is not None:
                z1, y1 = self._sample_latent(ctx)
                tester.train_aux(tester.generate_at(None, z1, y1).detach(), y1, eta)
        elif isinstance(tester, AugmentTester) and tester.aux is not None:
            x, y = self._train_batch(ctx)
            with torch.no_grad():
                xa = tester.augment(x, tester.policy.draw(x.shape[0], ctx.generator))
            tester.train_aux(xa, y, eta)

    # ---------------------------------------------------------------- diagnostics
    @torch.no_grad()
    def generated_validation_set(self) -> tuple[Tensor, Tensor]:
        """This epoch's generated validation set from the fixed bank ([0, 1] images, labels)."""
        tester = self.tester
        if isinstance(tester, GanTester):
            z, y = self.bank["z"], self.bank["y"]
            xs = [tester.generate_at(None, z[s : s + 500], y[s : s + 500]) for s in range(0, z.shape[0], 500)]
            return torch.cat(xs)[: self.config.diag_samples], y[: self.config.diag_samples]
        if isinstance(tester, AugmentTester):
            return tester.augment(self.bank["x"], self.bank["sample"]), self.bank["y"]
        assert isinstance(tester, SelectionTester)
        x, y, _ = tester.batch(self.bank["idx"])
        return x, y

    def on_epoch_end(self, ctx: SearchContext) -> None:
        cfg = self.config
        stats: dict[str, Any] = {
            "tester": self.kind,
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
        stats.update(self.tester.stats())
        if self.bank:
            x, y = self.generated_validation_set()
            stats["reference_error"] = (
                classifier_error(self.reference, x, y) if self.reference is not None else None
            )
            xv, yv = self.bank["val"]
            aux = getattr(self.tester, "aux", None)
            stats["aux_val_loss"] = self.tester.aux_loss(xv, yv) if aux is not None else None
            if cfg.probe_iters > 0:
                stats["probe_val_loss"] = self._probe(ctx, x, y, xv, yv)
            if cfg.grid > 0 and self.out_dir is not None:
                k = cfg.grid * cfg.grid
                order = torch.argsort(y[:k].cpu(), stable=True).to(y.device)
                path = self.out_dir / "tester" / f"epoch-{ctx.epoch:03d}.png"
                save_grid(x[:k].index_select(0, order), path, cfg.grid)
                stats["grid_png"] = str(path.relative_to(self.out_dir))
        self._epoch_stats = stats

    def _probe(self, ctx: SearchContext, x: Tensor, y: Tensor, xv: Tensor, yv: Tensor) -> float:
        """D_val loss of a fresh small classifier trained on the generated set (a V-independent
        measure of how useful the generated data are)."""
        g = _seeded(ctx.seed, f"probe-{ctx.epoch}")
        with _own_rng(ctx.device, g):
            model = build_classifier("small", ctx.num_classes, 8, *_stats(ctx))
            model = model.to(ctx.device)
            images = (x * 255).round().clamp(0, 255).to(torch.uint8)
            with torch.enable_grad():
                train_classifier(
                    model,
                    images,
                    y,
                    iters=self.config.probe_iters,
                    batch_size=min(64, x.shape[0]),
                    lr=0.05,
                    generator=g,
                    augment=False,
                )
            with torch.no_grad():
                return float(F.cross_entropy(model(xv), yv))

    def epoch_stats(self) -> dict[str, Any]:
        out = dict(self._epoch_stats)
        for k, v in list(out.items()):
            if isinstance(v, float) and not math.isfinite(v):
                out[k] = None
        return out

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        assert self.tester is not None
        out: dict[str, Any] = {
            "tester": self.tester.state_dict(),
            "hyper_steps_total": self.hyper_steps_total,
            "streams": {
                "train": self.train_stream.state_dict(),
                "val": self.val_stream.state_dict(),
                "aux_val": self.aux_val_stream.state_dict(),
            },
        }
        if isinstance(self.tester, SelectionTester):
            out["streams"]["pairs"] = self.pair_stream.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.tester is not None
        self.tester.load_state_dict(state["tester"])
        self.hyper_steps_total = int(state.get("hyper_steps_total", 0))
        streams = state.get("streams", {})
        self.train_stream.load_state_dict(streams["train"])
        self.val_stream.load_state_dict(streams["val"])
        self.aux_val_stream.load_state_dict(streams["aux_val"])
        if isinstance(self.tester, SelectionTester):
            self.pair_stream.load_state_dict(streams["pairs"])


# ================================================================================== `wcbench tester pretrain`


def pretrain_tester_cache(ctx: SearchContext, config: StrategyConfig) -> str:
    """Pretrain the tester an ``ours`` search with ``config`` starts from and cache it under the
    search's data root (App. A.1, B.2.3): the strategy's setup with ``tester_init="pretrain"``, which
    trains and caches only what is missing. Returns where the tester came from (``cache <path>`` or
    ``pretrained now, cache <path>``)."""
    strategy = Ours(config.model_copy(update={"tester_init": "pretrain"}))
    strategy.setup(ctx)
    return strategy.init_note
