"""The search framework's seam: search algorithms x validation strategies (the README, "Searchers").

A searcher is ``<strategy>-<algorithm>``. The two halves meet in exactly one place, the architecture
step (DARTS Alg. 1, line 1; paper Eq. 4/10 for ``ours``)::

    objective = strategy.objective(ctx)                      # WHAT the architecture minimises
    result = algorithm.arch_step(ctx.train_batch, objective, ctx)   # HOW A gets its gradient
    strategy.after_arch_step(ctx, result)

``objective`` is a callable ``objective(model_fn) -> scalar loss``. ``model_fn`` maps a normalised
image batch ``x`` (N, 3, H, W) to logits (N, classes): the supernet at the current weights ``w``
(first order: ``model_fn`` is the algorithm itself) or at the one-step unrolled weights ``w'``
(darts2nd, DARTS Eq. 6-8). The strategy decides which data and loss (plain: a batch of the fixed
search-validation split; spcl/dihcl: a batch of the selected hard validation examples; the paper's
``ours``: generated data + gamma * D_val loss, Eq. 4) and never needs to know whether the weights were
unrolled; the algorithm decides how the gradient of that loss reaches the architecture parameters
and never needs to know where the data came from. A new algorithm or a new strategy is one new file
with a registry decorator; nothing else changes.

Contracts
---------
* ``objective(model_fn)`` may build any graph. It must call ``model_fn`` (not ``ctx.algorithm``)
  for the learner's prediction, so that darts2nd differentiates through ``w'``. It may be called
  more than once per step (e.g. by a checking mode); a strategy that records per-example losses
  keeps those of the last call. The architecture parameters get ``.grad`` from it; tensors that the
  strategy lists in ``ctx.extra_arch_step_params`` when it builds the objective (its own parameters,
  e.g. a tester's or an unrolled G') get the gradient of the same objective added to their ``.grad``
  (set when None, else accumulated; darts2nd: the direct gradient of ``L(w')``, without the
  unrolling term). A strategy whose objective holds a term for A alone (ours: DeCov) sets
  ``ctx.extra_arch_step_objective`` to the part those tensors are differentiated by instead, from the
  same forward pass (one more backward, no second forward).
* An objective that sums terms on separate batches (ours: the tester's batch + gamma * a D_val batch)
  returns them as :class:`ObjectiveTerms`: the step builds and backpropagates one term at a time
  (the same gradient, one term's graph in memory). ``ctx.extra_arch_step_objective`` is then read
  per term, as set while that term was built.
* Everything is on ``ctx.device``; nothing in the step loop calls ``.item()`` (no host syncs): losses
  are accumulated as tensors and checked for NaN once per epoch by the loop.
* Randomness: modules may use the global torch RNG (the loop saves and restores it); a strategy's
  own draws use ``ctx.generator`` (a CPU ``torch.Generator`` that the loop checkpoints). Data order
  and augmentation of the training split depend only on (seed, epoch).
* ``state_dict()`` of algorithms and strategies must hold only tensors, numbers, strings, bools,
  None and lists/tuples/dicts of them: checkpoints load with ``weights_only=True``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from searchers.splits import Batch, SplitData, evaluate_split
from wcbench.genotype import Genotype
from wcbench.space import SearchSpace

ModelFn = Callable[[Tensor], Tensor]
"""x (N, 3, H, W), normalised -> logits (N, num_classes): the supernet at some weights."""

Objective = Callable[[ModelFn], Tensor]
"""model_fn -> the scalar loss the architecture step minimises (built by the strategy); may be an
:class:`ObjectiveTerms`, whose terms the step backpropagates one at a time."""


class ObjectiveTerms:
    """An objective that is a sum of terms on separate batches (paper Eq. 4: the loss on the tester's
    data plus gamma times the D_val loss). Called, it returns the sum; the architecture step instead
    builds and backpropagates one term at a time (:func:`objective_term_gradients`): the same
    gradient, with one term's activations held instead of all of them (two supernet graphs at the
    search batch put ours-pdarts's stage-2 step past 24 GB)."""

    def __init__(self, *terms: Objective) -> None:
        self.terms = terms

    def __call__(self, model_fn: ModelFn) -> Tensor:
        total = self.terms[0](model_fn)
        for term in self.terms[1:]:
            total = total + term(model_fn)
        return total


# ================================================================================== configs


class SearchConfig(BaseModel):
    """Settings every search algorithm shares (DARTS train_search.py); algorithms subclass it.

    Preset files (``wcbench/presets/search/<algorithm>.toml``) fill it; ``--set key=value`` overrides
    any field. Unknown keys are errors.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(50, ge=1, description="search epochs (P-DARTS: per stage)")
    batch_size: int = Field(64, ge=2, description="training and validation batch size")
    lr: float = Field(0.025, gt=0, description="weight SGD initial learning rate")
    lr_min: float = Field(0.001, ge=0, description="cosine schedule floor (per epoch, DARTS)")
    momentum: float = Field(0.9, ge=0, description="weight SGD momentum")
    weight_decay: float = Field(3e-4, ge=0, description="weight SGD weight decay")
    grad_clip: float = Field(5.0, ge=0, description="weight gradient norm clip; 0 disables")
    arch_grad_clip: float = Field(
        0.0, ge=0, description="architecture gradient norm clip; 0 disables (PC-DARTS ImageNet search: 5)"
    )
    arch_lr: float = Field(3e-4, gt=0, description="architecture Adam learning rate")
    arch_betas: tuple[float, float] = Field((0.5, 0.999), description="architecture Adam betas")
    arch_weight_decay: float = Field(1e-3, ge=0, description="architecture Adam weight decay")
    alpha_init: Literal["randn", "zeros"] = Field(
        "randn", description="randn: 1e-3 * N(0, 1) (DARTS code); zeros (paper App. D.2.1)"
    )
    init_channels: int = Field(16, ge=1, description="supernet initial channels C")
    layers: int = Field(8, ge=1, description="supernet cells")
    warmup_epochs: int = Field(0, ge=0, description="first epochs with the architecture frozen")
    train_portion: float = Field(0.5, gt=0, lt=1, description="search-train share of the train split")
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap on steps per epoch (quick)")
    max_examples: int | None = Field(
        None, ge=2, description="use only the first N examples of each search half (smoke tests)"
    )
    augment: bool = Field(True, description="random crop + flip on search batches (DARTS)")
    resolution: int | None = Field(
        None, ge=8, description="search at this square size (antialiased resize); None = the dataset's"
    )
    split_seed: int | None = Field(
        None, ge=0, description="seed of the search-train/val split; None = the run's seed"
    )
    bn_recalibrate: bool = Field(
        False, description="recompute BN statistics on search-train before each validation pass (SPOS)"
    )
    eval_batch_size: int = Field(256, ge=1, description="batch size of the per-epoch validation pass")
    amp: bool = Field(False, description="bf16 autocast on CUDA (ignored on CPU; not with darts2nd fd)")
    channels_last: bool = Field(
        True, description="channels_last memory format for the supernet and batches (on CUDA only)"
    )
    network: Literal["cifar", "imagenet"] = Field(
        "cifar",
        description="supernet stem: cifar (one 3x3 conv) or imagenet (PC-DARTS: three stride-2 convs)",
    )
    stream: bool = Field(
        False, description="stream an imagefolder:<path> train split from disk (decoding in loader workers)"
    )
    image_size: int = Field(224, ge=8, description="crop size of streamed images (PC-DARTS ImageNet: 224)")
    train_fraction: float | None = Field(
        None, gt=0, lt=1, description="per-class share of the train split for W (PC-DARTS ImageNet: 0.1)"
    )
    val_fraction: float | None = Field(
        None, gt=0, lt=1, description="per-class share of the train split for A (PC-DARTS ImageNet: 0.025)"
    )
    workers: int | None = Field(
        None, ge=0, description="loader worker processes when streaming; None = wcbench's default"
    )


class StrategyConfig(BaseModel):
    """Settings of a validation strategy; each strategy subclasses it. Overridden with
    ``--set strategy.<key>=<value>``; presets in ``wcbench/presets/strategy/<name>.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ================================================================================== context


@dataclass(eq=False)
class ArchStepResult:
    """What ``arch_step`` reports: the objective's value (a 0-dim tensor on the device, detached)
    and optional extra tensors (e.g. ``hypergrad_norm``) for the strategy."""

    loss: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)


@dataclass(eq=False)
class SearchContext:
    """Everything a strategy (or an algorithm's ``arch_step``) may read during a search.

    Set up once by the loop and updated in place: ``epoch``/``step``/``train_batch``/``lr`` change per
    step; ``weight_optimizer``/``arch_optimizer`` are replaced when the algorithm rebuilds its supernet
    (``on_epoch_start`` returned True). Strategies must not step the optimisers; ``ours`` builds its
    one-step unrolled learner copy from ``algorithm.named_weight_parameters()``, ``lr``,
    ``config.momentum``/``config.weight_decay`` and the momentum buffers in ``weight_optimizer.state``
    exactly as darts2nd does (see ``searchers.darts.unrolled_weights``).
    """

    algorithm: SearchAlgorithm
    config: SearchConfig
    strategy_config: StrategyConfig
    device: torch.device
    train: SplitData  # search-train split (weights learn on it; D_tr)
    val: SplitData  # search-validation split (D_val)
    num_classes: int
    dataset: str
    seed: int
    generator: torch.Generator  # the strategy's CPU RNG, checkpointed by the loop
    preset: str = "paper"  # the preset the search was resolved from (named in hints)
    out_dir: Any = None  # pathlib.Path of the search dir (a strategy may write artefacts there)
    data_root: str | Path | None = None  # --data-root; None: $WCBENCH_DATA, else the default cache
    weight_optimizer: torch.optim.Optimizer | None = None
    arch_optimizer: torch.optim.Optimizer | None = None
    epoch: int = 0
    total_epochs: int = 0
    step: int = 0  # global step (all epochs)
    step_in_epoch: int = 0
    steps_per_epoch: int = 0
    lr: float = 0.0  # weight learning rate of this epoch (eta in DARTS Eq. 7)
    arch_active: bool = False  # whether the architecture is updated this epoch (after warm-up)
    train_batch: Batch | None = None  # the weight step's batch of this step (used by the unrolling)
    arch_epochs_total: int = 0  # epochs of the whole search in which A is updated
    extra_arch_step_params: list[Tensor] = field(default_factory=list)
    extra_arch_step_objective: Tensor | None = None  # what extra_arch_step_params follow; None: all of it
    _val_cache: tuple[Tensor, Tensor] | None = None  # (losses, predictions) of the current model

    def data_dir(self) -> Path:
        """The data root this search reads from; caches such as pretrained testers live under it."""
        from wcbench.data import resolve_data_root

        return resolve_data_root(self.data_root)

    @property
    def arch_lr(self) -> float:
        assert self.arch_optimizer is not None
        return float(self.arch_optimizer.param_groups[0]["lr"])

    def val_example_losses(self) -> Tensor:
        """Per-example cross-entropy (n,) of the current model on the whole validation split.

        No augmentation, eval mode, no grad. Cached: the loop fills the cache from its end-of-epoch
        validation pass, so reading it at the next ``on_epoch_start`` costs nothing; it is recomputed
        when the supernet was rebuilt or at the very first epoch.
        """
        return self._val_results()[0]

    def val_example_predictions(self) -> Tensor:
        """Predicted class (n,) of the current model for each validation example (as the losses)."""
        return self._val_results()[1]

    def _val_results(self) -> tuple[Tensor, Tensor]:
        if self._val_cache is None:
            self._val_cache = evaluate_split(self.algorithm, self.val, self.config.eval_batch_size)
        return self._val_cache

    def invalidate_val_losses(self) -> None:
        self._val_cache = None


# ================================================================================== algorithms


class SearchAlgorithm(nn.Module, abc.ABC):
    """A differentiable search method: the supernet, its architecture parameters A, and how A gets
    its gradient. Registered with ``@ALGORITHMS.register("<name>")``.

    The loop builds it as ``cls(config, space, num_classes, generator=g)`` (after seeding the global
    RNG, which initialises weights; ``g`` draws the architecture initialisation), then per epoch::

        rebuilt = algorithm.on_epoch_start(epoch)       # True -> loop rebuilds optimisers
        for step: if not algorithm.arch_frozen(epoch): algorithm.arch_step(...)
                  weight step on loss = algorithm.training_loss(algorithm(x), y)
                  (SGD, lr = algorithm.lr_at(epoch), clip config.grad_clip)

    Subclasses must implement ``forward``, ``arch_parameters`` and ``genotype``; everything else has
    a DARTS default. Weight parameters are all parameters that are not architecture parameters.
    The loop calls ``.to(device)`` (and ``.to(memory_format=channels_last)`` when configured) after
    construction, after ``load_search_state_dict`` and whenever ``on_epoch_start`` returned True, so a
    rebuild may create its new modules on the CPU in the default format.

    ``retrain_family`` names the evaluation table its genotypes are retrained with; its default in
    this base class is ``"darts"`` (Table 33), so a plug-in that does not set it is retrained as DARTS.
    """

    Config: ClassVar[type[SearchConfig]] = SearchConfig
    name: ClassVar[str] = ""
    retrain_family: ClassVar[str] = "darts"
    second_order: ClassVar[bool] = False  # the architecture step unrolls W' = W - eta grad itself
    """The paper's evaluation table its genotypes are retrained with (``presets/retrain/<family>.toml``:
    darts Table 33, pdarts/pcdarts Table 34, prdarts Table 35). The default is ``"darts"`` (Table 33);
    a plug-in algorithm sets its own. The search records it in ``genotype.json``."""

    def __init__(
        self,
        config: SearchConfig,
        space: SearchSpace,
        num_classes: int,
        *,
        in_channels: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.space = space
        self.num_classes = num_classes
        self.in_channels = in_channels

    # ---------------------------------------------------------------- must implement
    @abc.abstractmethod
    def forward(self, x: Tensor) -> Tensor:
        """Logits of the supernet at the current architecture (train/eval mode as set)."""

    @abc.abstractmethod
    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters A (alphas; PC-DARTS betas; PR-DARTS gate logits)."""

    @abc.abstractmethod
    def genotype(self) -> Genotype:
        """The discrete architecture derived from the current A (a valid genotype of ``space``)."""

    # ---------------------------------------------------------------- parameters
    def named_weight_parameters(self) -> dict[str, nn.Parameter]:
        """Name -> weight parameter (every parameter not in ``arch_parameters()``), in module order;
        the names are those ``torch.func.functional_call(self, ...)`` accepts."""
        arch = {id(p) for p in self.arch_parameters()}
        return {n: p for n, p in self.named_parameters() if id(p) not in arch}

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.named_weight_parameters().values())

    def arch_state(self) -> dict[str, Any]:
        """JSON-able snapshot for history.jsonl (softmaxed alphas, betas, gates, stage, ...).

        Default: ``{name: softmax(p, -1) as nested lists}`` for each architecture parameter.
        """
        arch = {id(p) for p in self.arch_parameters()}
        return {
            n: F.softmax(p.detach().float(), dim=-1).cpu().tolist()
            for n, p in self.named_parameters()
            if id(p) in arch
        }

    # ---------------------------------------------------------------- schedule hooks
    def total_epochs(self) -> int:
        """Epochs the loop runs (P-DARTS: stages * epochs per stage)."""
        return self.config.epochs

    def on_epoch_start(self, epoch: int) -> bool:
        """Called before each epoch, also when resuming. Return True if the parameter set changed
        (e.g. P-DARTS built the next stage's supernet), so the loop rebuilds both optimisers (from
        ``make_weight_optimizer``/``make_arch_optimizer``) and invalidates cached validation losses."""
        return False

    def arch_frozen(self, epoch: int) -> bool:
        """Whether the architecture is frozen in ``epoch`` (warm-up: weights only)."""
        return epoch < self.config.warmup_epochs

    def lr_at(self, epoch: int) -> float:
        """Weight learning rate of ``epoch``: cosine from lr to lr_min over ``total_epochs()``, stepped
        per epoch (DARTS: CosineAnnealingLR(T_max=epochs, eta_min=lr_min), epoch e uses cos(pi e / T))."""
        c = self.config
        t = self.total_epochs()
        return c.lr_min + (c.lr - c.lr_min) * (1 + math.cos(math.pi * epoch / t)) / 2

    # ---------------------------------------------------------------- losses
    def training_loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """The weight objective L_train on a batch's logits (cross-entropy); used by the weight step
        and by darts2nd's unrolling."""
        return F.cross_entropy(logits, y)

    def arch_regularizer(self) -> Tensor | None:
        """A term added to the strategy's objective in the architecture step (PR-DARTS path
        regulariser); depends on A only. None: no term."""
        return None

    # ---------------------------------------------------------------- optimisers
    def make_weight_optimizer(self) -> torch.optim.Optimizer:
        """SGD(lr, momentum, weight_decay) over ``weight_parameters()`` (DARTS)."""
        c = self.config
        return torch.optim.SGD(
            self.weight_parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
        )

    def make_arch_optimizer(self) -> torch.optim.Optimizer:
        """Adam(arch_lr, arch_betas, arch_weight_decay) over ``arch_parameters()`` (DARTS)."""
        c = self.config
        return torch.optim.Adam(
            self.arch_parameters(), lr=c.arch_lr, betas=tuple(c.arch_betas), weight_decay=c.arch_weight_decay
        )

    # ---------------------------------------------------------------- the architecture step
    def arch_step(
        self, train_batch: Batch | None, objective: Objective, ctx: SearchContext
    ) -> ArchStepResult:
        """One update of A minimising ``objective`` (DARTS first-order approximation, xi = 0).

        Default: ``L = objective(self) + arch_regularizer()``; the gradients of L with respect to
        the architecture parameters (and ``ctx.extra_arch_step_params``) are computed with
        ``torch.autograd.grad`` (weight gradients are never formed), one term of an
        :class:`ObjectiveTerms` at a time, and ``ctx.arch_optimizer`` steps.
        Override for other hypergradients (darts2nd: unrolled, Eq. 7-8).
        """
        arch = self.arch_parameters()
        extra = list(ctx.extra_arch_step_params)
        loss, g_arch, g_extra = objective_term_gradients(self, objective, self, arch, extra, ctx)
        self.apply_arch_grads(arch, g_arch, ctx)
        assign_grads(extra, g_extra)
        return ArchStepResult(loss=loss)

    def apply_arch_grads(
        self, arch: Sequence[nn.Parameter], grads: Sequence[Tensor | None], ctx: SearchContext
    ) -> None:
        """Set ``.grad`` of the architecture parameters, clip their norm (``arch_grad_clip``) and step
        ``ctx.arch_optimizer``."""
        assert ctx.arch_optimizer is not None
        ctx.arch_optimizer.zero_grad(set_to_none=True)
        assign_grads(arch, grads)
        if self.config.arch_grad_clip > 0:  # train_search_imagenet.py: clip_grad_norm_(arch_parameters(), 5)
            torch.nn.utils.clip_grad_norm_(arch, self.config.arch_grad_clip)
        ctx.arch_optimizer.step()

    # ---------------------------------------------------------------- checkpoints
    def search_state_dict(self) -> dict[str, Any]:
        """Everything to resume (module tensors plus any structure, e.g. a P-DARTS stage and its
        per-edge op lists). Default: ``{"module": self.state_dict()}``."""
        return {"module": self.state_dict()}

    def load_search_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``search_state_dict()``; an algorithm whose structure changes during the search
        rebuilds that structure first, then loads the tensors."""
        self.load_state_dict(state["module"])


def objective_gradients(
    total: Tensor, targets: Sequence[Tensor], extra: Sequence[Tensor], extra_objective: Tensor | None
) -> tuple[list[Tensor | None], list[Tensor | None]]:
    """(gradients of ``total`` for ``targets``, gradients for ``extra``): ``extra`` follow
    ``extra_objective`` (``ctx.extra_arch_step_objective``, same graph, kept for the second backward)
    when there is one, else ``total`` (one backward for both)."""
    n = len(targets)
    if extra_objective is None or not extra:
        grads = torch.autograd.grad(total, list(targets) + list(extra), allow_unused=True)
        return list(grads[:n]), list(grads[n:])
    g_extra = torch.autograd.grad(extra_objective, list(extra), retain_graph=True, allow_unused=True)
    return list(torch.autograd.grad(total, list(targets), allow_unused=True)), list(g_extra)


def objective_term_gradients(
    algorithm: SearchAlgorithm,
    objective: Objective,
    model_fn: ModelFn,
    targets: Sequence[Tensor],
    extra: Sequence[Tensor],
    ctx: Any,
    *,
    by_term: bool = True,
) -> tuple[Tensor, list[Tensor | None], list[Tensor | None]]:
    """(objective value, detached; gradients for ``targets``; for ``extra``) of ``objective(model_fn)``
    plus ``algorithm.arch_regularizer()``, summed over the objective's terms (:class:`ObjectiveTerms`),
    each built and backpropagated before the next is built. The regulariser is read after the last
    term's forward pass (PR-DARTS's depends on the ops it ran); ``ctx.extra_arch_step_objective`` is
    read per term, as set while that term was built (None: ``extra`` follow the term itself).
    ``by_term=False`` builds every term and backpropagates their sum once (for terms that share a
    graph, as darts2nd's exact mode through w'(A))."""
    terms = objective.terms if by_term and isinstance(objective, ObjectiveTerms) else (objective,)
    value: Tensor | None = None
    g_targets: list[Tensor | None] = [None] * len(targets)
    g_extra: list[Tensor | None] = [None] * len(extra)
    for i, term in enumerate(terms):
        ctx.extra_arch_step_objective = None
        loss = term(model_fn)
        total = loss
        if i == len(terms) - 1:
            reg = algorithm.arch_regularizer()
            total = total if reg is None else total + reg
        gt, ge = objective_gradients(total, targets, extra, getattr(ctx, "extra_arch_step_objective", None))
        g_targets = [_add_grad(a, b) for a, b in zip(g_targets, gt)]
        g_extra = [_add_grad(a, b) for a, b in zip(g_extra, ge)]
        value = loss.detach() if value is None else value + loss.detach()
    ctx.extra_arch_step_objective = None
    assert value is not None
    return value, g_targets, g_extra


def _add_grad(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    return b if a is None else a if b is None else a + b


def assign_grads(params: Sequence[Tensor], grads: Sequence[Tensor | None]) -> None:
    """``p.grad = g`` (None -> zeros); accumulates onto an existing ``.grad``."""
    for p, g in zip(params, grads):
        g = torch.zeros_like(p) if g is None else g.detach()
        if p.grad is None:
            p.grad = g
        else:
            p.grad.add_(g)


# ================================================================================== strategies


class ValidationStrategy(abc.ABC):
    """What the architecture step minimises (paper Eq. 4's outer objective; DARTS: L_val).

    Registered with ``@STRATEGIES.register("<name>")``; built as ``cls(config)``. Call order per search::

        search_overrides(algorithm, dataset, preset) # classmethod, when the config is resolved
        setup(ctx)                                   # once, also when resuming (before load_state_dict)
        per epoch: on_epoch_start(epoch, ctx)        # ctx.arch_active says whether A is updated
                   per step (if ctx.arch_active and wants_arch_step(ctx)):
                       obj = objective(ctx); result = algorithm.arch_step(ctx.train_batch, obj, ctx)
                       after_arch_step(ctx, result)
                   per step: weight step; after_weight_step(ctx)
                   on_epoch_end(ctx); epoch_stats() -> history line

    Only epochs with ``ctx.arch_active`` count for a strategy's schedule (its own counter).
    """

    Config: ClassVar[type[StrategyConfig]] = StrategyConfig
    name: ClassVar[str] = ""

    def __init__(self, config: StrategyConfig) -> None:
        self.config = config

    @classmethod
    def search_overrides(cls, algorithm: str, dataset: str, preset: str) -> dict[str, Any]:
        """Search-algorithm settings this strategy changes for ``algorithm`` (e.g. the paper's
        Appendix E values for ``ours-<algorithm>``). Applied over the algorithm's preset and under the
        user's ``--set``; unknown keys are errors. Default: none."""
        return {}

    @classmethod
    def config_search_overrides(cls, config: StrategyConfig, values: dict[str, Any]) -> dict[str, Any]:
        """Search-algorithm settings implied by this strategy's resolved ``config`` given the
        algorithm's preset ``values``; applied under the user's ``--set``. Default: none."""
        return {}

    @classmethod
    def wants_prepare(cls, config: StrategyConfig) -> bool:
        """Whether :meth:`prepare` has work for ``config`` (a stage of `wcbench run` before the search)."""
        return False

    @classmethod
    def prepare(cls, ctx: SearchContext, config: StrategyConfig) -> str:
        """Work done once per dataset and settings before any search with ``config`` (the `ours`
        tester's pretraining), cached under the data root and shared by seeds and searchers; returns
        what it did. Called by `wcbench run` when :meth:`wants_prepare` is true. Default: nothing."""
        return "nothing to prepare"

    def wants_arch_step(self, ctx: SearchContext) -> bool:
        """Whether to update A at this step of an architecture-active epoch (default: every step;
        ``ours`` under cost reduction: every 8th). When False, neither ``objective`` nor
        ``after_arch_step`` is called for the step."""
        return True

    def setup(self, ctx: SearchContext) -> None:  # noqa: B027
        """Build whatever the strategy needs (e.g. a tester on ``ctx.device``)."""

    def on_epoch_start(self, epoch: int, ctx: SearchContext) -> None:  # noqa: B027
        """Choose this epoch's validation examples (e.g. score hardness with
        ``ctx.val_example_losses()``)."""

    @abc.abstractmethod
    def objective(self, ctx: SearchContext) -> Objective:
        """The objective of this step's architecture update (draw its batch now, with ``ctx.generator``)."""

    def after_arch_step(self, ctx: SearchContext, result: ArchStepResult) -> None:  # noqa: B027
        """After A was updated (DIHCL: update hardness from the losses just seen; ``ours``: update
        the tester)."""

    def after_weight_step(self, ctx: SearchContext) -> None:  # noqa: B027
        """After the weights were updated on ``ctx.train_batch``."""

    def on_epoch_end(self, ctx: SearchContext) -> None:  # noqa: B027
        """After the epoch's last step (before validation metrics and the checkpoint)."""

    def epoch_stats(self) -> dict[str, Any]:
        """JSON-able stats for this epoch's history line. Conventional keys: ``selected_count``,
        ``selected_indices`` (dataset indices of the train split; None = all), ``selected_mean_loss``
        (mean per-example loss of the selected examples when they were selected), ``seen_mean_loss``
        (mean objective over this epoch's architecture steps)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything to resume (weights_only-loadable values)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027
        """Restore ``state_dict()`` (called after ``setup``)."""
