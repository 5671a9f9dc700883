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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from searchers.supernet import MixedOp, MixedOpFactory, Supernet, derive_genotype, init_alphas
from wcbench.genotype import Genotype
from wcbench.seeding import derive_seed
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


Batch = tuple[Tensor, Tensor]
"""(x, y): a normalised image batch and its int64 labels, on the device."""


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


# ================================================================================== data


def _epoch_seed(seed: int, epoch: int, salt: str) -> int:
    return derive_seed(salt, seed, epoch)


class SplitData:
    """One half of the search split, resident on the device, addressable by position.

    ``images`` uint8 (n, 3, H, W) and ``labels`` int64 (n,) live on ``device``; ``dataset_indices``
    (CPU int64, (n,)) maps a position 0..n-1 to the example's index in the dataset's train split
    (what the history reports as "which examples"). ``batch(positions, generator)`` returns a
    normalised float batch, augmented as DARTS's search queues are (zero-padded random crop 4 and
    horizontal flip, random numbers drawn on the CPU ``generator`` so a batch is the same on any
    device); ``eval_batches`` yields unaugmented batches in order.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        dataset_indices: Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device,
        augment: bool = True,
        crop_padding: int = 4,
        channels_last: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.dataset_indices = dataset_indices.to("cpu", torch.int64)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.augment = augment
        self.crop_padding = crop_padding
        self.channels_last = channels_last

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(
        self, positions: Tensor, generator: torch.Generator | None = None, augment: bool | None = None
    ) -> Batch:
        """Examples at ``positions`` (CPU or device int64): ``(x, y)`` on the device."""
        from wcbench.data.loaders import random_crop, random_flip

        augment = self.augment if augment is None else augment
        pos = positions.to(self.device)
        x = self.images.index_select(0, pos).float().div_(255.0)
        if augment:
            b = int(positions.numel())
            span = 2 * self.crop_padding + 1
            dy = torch.randint(span, (b,), generator=generator)
            dx = torch.randint(span, (b,), generator=generator)
            flip = torch.rand(b, generator=generator) < 0.5
            if self.crop_padding:
                x = random_crop(x, dy.to(self.device), dx.to(self.device), self.crop_padding)
            x = random_flip(x, flip.to(self.device))
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels.index_select(0, pos)

    def raw(self, positions: Tensor) -> Batch:
        """Unaugmented [0, 1] images and labels at ``positions`` (what a tester starts from)."""
        p = positions.to(self.images.device)
        return self.images.index_select(0, p).float() / 255, self.labels.index_select(0, p)

    def epoch_batches(
        self, batch_size: int, seed: int, epoch: int, drop_last: bool = True
    ) -> Iterator[tuple[Tensor, Batch]]:
        """(positions, (x, y)) of one training epoch: a permutation and augmentation drawn from a
        generator seeded by (seed, epoch) only, so a resumed run sees the same batches. A last
        partial batch is dropped (``drop_last``) so batch norm never sees a batch of one."""
        g = torch.Generator().manual_seed(_epoch_seed(seed, epoch, "search-train"))
        n = len(self)
        order = torch.randperm(n, generator=g)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for start in range(0, stop, batch_size):
            pos = order[start : start + batch_size]
            yield pos, self.batch(pos, generator=g)

    def eval_batches(self, batch_size: int) -> Iterator[tuple[Tensor, Batch]]:
        """(positions, (x, y)) over the whole split in order, without augmentation."""
        n = len(self)
        for start in range(0, n, batch_size):
            pos = torch.arange(start, min(n, start + batch_size))
            yield pos, self.batch(pos, augment=False)


class IndexStream:
    """Endless batches of positions drawn from ``pool``: a fresh permutation (from ``generator``)
    each pass, consumed ``batch_size`` at a time; a pass's tail shorter than a batch is skipped, so
    every batch has ``min(batch_size, len(pool))`` distinct examples. ``weights`` (optional, same
    length as ``pool``) are carried along for weighted objectives."""

    def __init__(
        self, pool: Tensor, batch_size: int, generator: torch.Generator, weights: Tensor | None = None
    ) -> None:
        if pool.numel() == 0:
            raise ValueError("IndexStream needs a non-empty pool")
        self.pool = pool.to("cpu", torch.int64)
        self.weights = None if weights is None else weights.to("cpu")
        self.batch_size = min(int(batch_size), int(self.pool.numel()))
        self.generator = generator
        self._order = torch.empty(0, dtype=torch.int64)

    def next(self) -> tuple[Tensor, Tensor | None]:
        """(positions, weights or None) of the next batch."""
        if self._order.numel() < self.batch_size:
            self._order = torch.randperm(self.pool.numel(), generator=self.generator)
        take, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
        return self.pool[take], None if self.weights is None else self.weights[take]

    def state_dict(self) -> dict[str, Any]:
        return {"order": self._order.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._order = state["order"].to("cpu", torch.int64)


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


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, data: SplitData, batch_size: int) -> None:
    """Recompute every BatchNorm's running statistics as the plain average over one unaugmented pass
    of ``data`` in train mode, as one-shot supernets are evaluated (SPOS, Guo et al., ECCV 2020): a
    supernet whose weights move fast has running averages that lag its batch statistics, and in
    few steps (a small dataset) its eval-mode accuracy stays near chance while it fits the data.
    The global RNG (dropout on skip connections) is left as it was."""
    norm = nn.modules.batchnorm._BatchNorm
    bns = [m for m in model.modules() if isinstance(m, norm) and m.track_running_stats]
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    with torch.random.fork_rng(devices=[data.device] if data.device.type == "cuda" else []):
        for _, (x, _) in data.eval_batches(batch_size):
            model(x)
    model.train(was_training)
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum


@torch.no_grad()
def evaluate_split(model: nn.Module, data: SplitData, batch_size: int) -> tuple[Tensor, Tensor]:
    """(per-example CE losses (n,), predicted classes (n,)) in eval mode, no grad, on the device."""
    was_training = model.training
    model.eval()
    losses, preds = [], []
    for _, (x, y) in data.eval_batches(batch_size):
        logits = model(x).float()
        losses.append(F.cross_entropy(logits, y, reduction="none"))
        preds.append(logits.argmax(1))
    model.train(was_training)
    return torch.cat(losses), torch.cat(preds)


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
) -> tuple[Tensor, list[Tensor | None], list[Tensor | None]]:
    """(objective value, detached; gradients for ``targets``; for ``extra``) of ``objective(model_fn)``
    plus ``algorithm.arch_regularizer()``, summed over the objective's terms (:class:`ObjectiveTerms`),
    each built and backpropagated before the next is built. The regulariser is read after the last
    term's forward pass (PR-DARTS's depends on the ops it ran); ``ctx.extra_arch_step_objective`` is
    read per term, as set while that term was built (None: ``extra`` follow the term itself)."""
    terms = objective.terms if isinstance(objective, ObjectiveTerms) else (objective,)
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


class DartsSupernetAlgorithm(SearchAlgorithm):
    """The DARTS supernet with softmax-mixed alphas: the base of darts1st/darts2nd and of P-DARTS,
    PC-DARTS and PR-DARTS (which override the hooks below).

    Architecture parameters: ``alphas_normal``, ``alphas_reduce`` of shape (14, ops per edge), init
    ``1e-3 * randn`` (DARTS) or zeros (``alpha_init``). Mixing weights ``softmax(alpha, -1)`` (DARTS
    Eq. 2); ``none`` is never computed (``MixedOp``). Hooks:

    * ``mixed_op_factory()`` -> the ``MixedOp`` class to use (PC-DARTS: partial channels; P-DARTS:
      skip dropout);
    * ``mixing_weights()`` -> (weights_normal, weights_reduce); ``edge_weights()`` -> (edge_normal,
      edge_reduce) or (None, None) (PC-DARTS: per-node softmax of betas);
    * ``edge_primitives()`` -> per-edge op lists (P-DARTS: the shrunk lists of the current stage);
    * ``num_layers()`` -> cells of the current supernet (P-DARTS: 5/11/17);
    * ``build_supernet()`` builds ``self.supernet`` from them (call it again to rebuild);
    * ``genotype()`` -> ``derive_genotype`` on ``genotype_weights()`` (PC-DARTS: alpha * beta).

    ``__init__`` calls ``build_supernet()`` and then creates the alphas with the widths of
    ``edge_primitives()``, so a subclass sets whatever state those hooks read (a P-DARTS stage, a
    PC-DARTS K) *before* calling ``super().__init__``, and adds further architecture parameters
    (betas) after it, listing them in ``arch_parameters()``. To rebuild (P-DARTS stage change):
    update the state, ``self.supernet = self.build_supernet()``, assign fresh ``nn.Parameter``
    alphas, and return True from ``on_epoch_start``.
    """

    def __init__(
        self,
        config: SearchConfig,
        space: SearchSpace,
        num_classes: int,
        *,
        in_channels: int = 3,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(config, space, num_classes, in_channels=in_channels, generator=generator)
        self.supernet: Supernet = self.build_supernet()
        n_normal = len(self.edge_primitives()[0][0])
        n_reduce = len(self.edge_primitives()[1][0])
        self.alphas_normal = nn.Parameter(self._init_alpha(n_normal, generator))
        self.alphas_reduce = nn.Parameter(self._init_alpha(n_reduce, generator))

    def _init_alpha(self, num_ops: int, generator: torch.Generator | None) -> Tensor:
        a = init_alphas(num_ops, generator)
        return torch.zeros_like(a) if self.config.alpha_init == "zeros" else a

    # hooks
    def mixed_op_factory(self) -> MixedOpFactory:
        return MixedOp

    def edge_primitives(self) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
        return self.space.normal, self.space.reduce

    def num_layers(self) -> int:
        return self.config.layers

    def build_supernet(self) -> Supernet:
        normal, reduce = self.edge_primitives()
        return Supernet(
            self.config.init_channels,
            self.num_classes,
            self.num_layers(),
            self.space,
            mixed_op=self.mixed_op_factory(),
            in_channels=self.in_channels,
            edge_primitives_normal=normal,
            edge_primitives_reduce=reduce,
            stem=self.config.network,
        )

    def mixing_weights(self) -> tuple[Tensor, Tensor]:
        return F.softmax(self.alphas_normal, dim=-1), F.softmax(self.alphas_reduce, dim=-1)

    def edge_weights(self) -> tuple[Tensor | None, Tensor | None]:
        return None, None

    def genotype_weights(self) -> tuple[Tensor, Tensor]:
        return self.mixing_weights()

    # SearchAlgorithm
    def forward(self, x: Tensor) -> Tensor:
        wn, wr = self.mixing_weights()
        en, er = self.edge_weights()
        return self.supernet(x, wn, wr, en, er)

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas_normal, self.alphas_reduce]

    def genotype(self) -> Genotype:
        wn, wr = self.genotype_weights()
        normal, reduce = self.edge_primitives()
        return derive_genotype(wn, wr, self.space, normal, reduce)

    def arch_state(self) -> dict[str, Any]:
        wn, wr = self.mixing_weights()
        normal, reduce = self.edge_primitives()
        return {
            "alphas_normal": wn.detach().float().cpu().tolist(),
            "alphas_reduce": wr.detach().float().cpu().tolist(),
            "ops_normal": [list(p) for p in normal],
            "ops_reduce": [list(p) for p in reduce],
        }


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
