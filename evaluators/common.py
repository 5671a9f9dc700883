"""What every scorer shares: the scorer interface, the logits-only wrapper, score files, model loading.

A scorer is a class registered by name in :data:`wcbench.registry.SCORERS`::

    @SCORERS.register("clean")
    class CleanScorer(Scorer):
        '''Top-1 / top-5 error on the test split.'''
        name = "clean"
        version = "1"
        Params = CleanParams          # a pydantic model: the scorer's settings, all written into the score

        def run(self, ctx: ScoreContext, params: CleanParams) -> ScoreResult: ...

:func:`score` resolves the parameters (defaults, then ``--set`` overrides), times ``run`` and writes
``scores/<scorer>.json`` atomically (:func:`write_score`). A :class:`ScoreContext` describes what is
scored: a retrained model directory (``retrain.json`` + ``model.pt``, see :mod:`evaluators.retrain`),
a model from outside wcbench (:class:`wcbench.models.ExternalModel`: timm, torchvision, RobustBench,
``module:function`` or an ``nn.Module``; :meth:`ScoreContext.from_external`), or, for scorers that
need no weights (``cost``), a genotype and a dataset alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

import wcbench
from wcbench.checkpoints import load_checkpoint
from wcbench.config import resolve_config
from wcbench.data import Normalize
from wcbench.devices import resolve_device
from wcbench.errors import CheckpointError, ConfigError
from wcbench.files import atomic_write_json, read_json
from wcbench.genotype import Genotype
from wcbench.phases import phase

if TYPE_CHECKING:
    from wcbench.models import ExternalModel

RETRAIN_FILE = "retrain.json"
MODEL_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.jsonl"

UNITS = ("%", "params", "MACs", "ms", "MB", "GPU-h", "CPU-h", "L2", "s")


# --------------------------------------------------------------------------------------------------
# small helpers


def dataset_key(name: str) -> str:
    """A short directory-safe name: ``imagefolder:/x/cifar10-jpeg`` -> ``imagefolder-cifar10-jpeg``."""
    key, sep, arg = str(name).partition(":")
    if sep:
        key = f"{key}-{Path(arg.rstrip('/')).name or 'root'}"
    return re.sub(r"[^A-Za-z0-9_.+=\-]", "_", key).strip("._") or "dataset"


class LogitsOnly(nn.Module):
    """``net`` with an optional input normalisation in front, returning the logits alone.

    DARTS networks return ``(logits, logits_aux)``; torchattacks, AutoAttack and RobustBench want one
    (N, C) tensor. With ``mean``/``std`` given the wrapper takes images in [0, 1] (what attacks
    perturb) and normalises them itself, so an attack's epsilon is on the pixel scale.
    """

    def __init__(
        self, net: nn.Module, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
    ):
        super().__init__()
        self.net = net
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        self.norm = Normalize(mean, std) if mean is not None and std is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm is not None:
            x = self.norm(x)
        out = self.net(x)
        return out[0] if isinstance(out, tuple | list) else out


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """Number of examples whose label is among the top-k logits, for each k (k capped at #classes)."""
    maxk = min(max(ks), logits.shape[1])
    pred = logits.topk(maxk, dim=1).indices
    hit = pred.eq(labels.view(-1, 1))
    return [int(hit[:, : min(k, maxk)].any(dim=1).sum().item()) for k in ks]


# --------------------------------------------------------------------------------------------------
# retrained models on disk


def find_run_dir(path: Path) -> Path | None:
    """The ``runs/<dataset>/<searcher>/seed-<n>`` directory that ``path`` lies in, if any."""
    p = Path(path).resolve()
    for candidate in (p, *p.parents):
        if re.fullmatch(r"seed-(-?\d+)", candidate.name):
            return candidate
    return None


def scores_dir_for(model_dir: Path) -> Path:
    """Where scores go: ``<run>/scores`` for a ``<run>/retrain/<dataset>`` directory, else ``DIR/scores``."""
    model_dir = Path(model_dir)
    if model_dir.parent.name == "retrain":
        return model_dir.parent.parent / "scores"
    return model_dir / "scores"


def read_retrain_record(model_dir: Path) -> dict[str, Any]:
    """``retrain.json`` of a retrain directory, checked; a missing one is a one-line error."""
    path = Path(model_dir) / RETRAIN_FILE
    if not path.is_file():
        raise ConfigError(
            f"{model_dir} is not a retrained model (no {RETRAIN_FILE}); run `wcbench retrain --genotype G "
            f"--dataset D --out {model_dir}` first"
        )
    record = read_json(path)
    if not isinstance(record, dict) or not {"genotype", "config", "dataset", "num_classes"} <= set(record):
        raise CheckpointError(
            f"{path} lacks genotype/config/dataset/num_classes; delete the directory and retrain"
        )
    return record


def build_from_record(record: Mapping[str, Any]) -> nn.Module:
    """The network a ``retrain.json`` describes (untrained); an external model's record
    (:meth:`ScoreContext.network_record`) loads that model again."""
    from wcbench.networks import build_network

    if "external" in record:
        from wcbench.models import rebuild

        ext = record["external"]
        return ext if isinstance(ext, nn.Module) else rebuild(ext)

    cfg = record["config"]
    genotype = Genotype.from_dict(record["genotype"])
    return build_network(
        genotype,
        cfg.get("network", "cifar"),
        int(cfg["init_channels"]),
        int(cfg["layers"]),
        int(record["num_classes"]),
        auxiliary=float(cfg.get("auxiliary_weight", 0.0)) > 0,
    )


def load_trained_network(model_dir: Path, device: torch.device | str = "cpu") -> nn.Module:
    """The retrained network of ``model_dir`` (``model.pt`` loaded with weights_only=True), in eval mode."""
    model_dir = Path(model_dir)
    record = read_retrain_record(model_dir)
    weights = model_dir / MODEL_FILE
    if not weights.is_file():
        raise ConfigError(
            f"{model_dir} has no {MODEL_FILE}: its retrain has not finished; rerun the same "
            f"`wcbench retrain` "
            f"command to resume it"
        )
    net = build_from_record(record)
    state = load_checkpoint(weights, map_location="cpu")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"{weights} does not fit the network in {RETRAIN_FILE} ({first})") from exc
    return net.to(device).eval()


# --------------------------------------------------------------------------------------------------
# the scorer interface


@dataclass
class ScoreContext:
    """What a scorer scores, and where: a retrained model, an external model, or a genotype alone
    (weight-free scorers). ``mean``/``std`` are always the scored data's normalisation (what
    :func:`eval_loader` applies); an external model is fed through :class:`wcbench.models.FeedAs`."""

    genotype: Genotype | None
    dataset: str
    config: dict[str, Any]
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    image_size: int
    scores_dir: Path
    model_dir: Path | None = None
    run_dir: Path | None = None
    seed: int = 0
    data_root: str | None = None
    download: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: bool = True
    external: ExternalModel | None = None
    _net: nn.Module | None = field(default=None, repr=False)

    @classmethod
    def from_model_dir(
        cls,
        model_dir: str | Path,
        *,
        scores_dir: str | Path | None = None,
        data_root: str | None = None,
        download: bool = False,
        device: str | torch.device | None = None,
        seed: int | None = None,
        progress: bool = True,
    ) -> ScoreContext:
        model_dir = Path(model_dir)
        record = read_retrain_record(model_dir)
        return cls(
            genotype=Genotype.from_dict(record["genotype"]),
            dataset=str(record["dataset"]),
            config=dict(record["config"]),
            num_classes=int(record["num_classes"]),
            mean=tuple(record.get("mean", (0.5, 0.5, 0.5))),  # type: ignore[arg-type]
            std=tuple(record.get("std", (0.5, 0.5, 0.5))),  # type: ignore[arg-type]
            image_size=int(record.get("image_size", 32)),
            scores_dir=Path(scores_dir) if scores_dir else scores_dir_for(model_dir),
            model_dir=model_dir,
            run_dir=_run_dir_of(model_dir, record),
            seed=int(record.get("seed", 0)) if seed is None else int(seed),
            data_root=data_root if data_root is not None else record.get("data_root"),
            download=download,
            device=resolve_device(device),
            progress=progress,
        )

    @classmethod
    def from_genotype(
        cls,
        genotype: Genotype,
        dataset: str,
        config: Mapping[str, Any],
        *,
        scores_dir: str | Path,
        run_dir: Path | None = None,
        data_root: str | None = None,
        device: str | torch.device | None = None,
        seed: int = 0,
        progress: bool = True,
    ) -> ScoreContext:
        """A weight-free context: the network ``config`` describes for ``dataset``, never trained."""
        from wcbench.networks import PAPER_SETTINGS

        if dataset in PAPER_SETTINGS:  # the paper's evaluation network, as `wcbench genotype show` builds it
            s = PAPER_SETTINGS[dataset]
            config = {**config, "network": s["kind"], "init_channels": s["c"], "layers": s["layers"]}
            num_classes, size = int(s["num_classes"]), int(s["input"][1])
            mean = std = (0.5, 0.5, 0.5)
        else:
            from wcbench.data import DATASET_INFO

            key = dataset.partition(":")[0]
            info = DATASET_INFO.get(key)
            if info is None or info.num_classes is None:
                raise ConfigError(
                    f"cannot size the network for dataset {dataset!r} without its data; retrain it and pass "
                    f"--model DIR, or use --dataset cifar10|cifar100|imagenet"
                )
            num_classes = int(info.num_classes)
            size = int(config.get("image_size") or info.image_size or 32)
            mean, std = tuple(info.mean or (0.5,) * 3), tuple(info.std or (0.5,) * 3)
        return cls(
            genotype=genotype,
            dataset=dataset,
            config=dict(config),
            num_classes=num_classes,
            mean=mean,  # type: ignore[arg-type]
            std=std,  # type: ignore[arg-type]
            image_size=size,
            scores_dir=Path(scores_dir),
            model_dir=None,
            run_dir=run_dir,
            seed=seed,
            data_root=data_root,
            device=resolve_device(device),
            progress=progress,
        )

    @classmethod
    def from_external(
        cls,
        model: ExternalModel,
        dataset: str,
        *,
        scores_dir: str | Path,
        run_dir: Path | None = None,
        data_root: str | None = None,
        download: bool = False,
        device: str | torch.device | None = None,
        seed: int = 0,
        progress: bool = True,
    ) -> ScoreContext:
        """A context scoring ``model`` on ``dataset``: the data's own normalisation and classes, the
        model's resolution (the data's when it declares none); its outputs must match the classes."""
        from wcbench.data import DATASET_INFO, IMAGENET_MEAN, IMAGENET_STD, get_dataset
        from wcbench.models import output_count

        key = dataset.partition(":")[0]
        info = DATASET_INFO.get(key)
        size = model.input_size or (info.image_size if info is not None else None)
        network = "imagenet" if (size or 32) >= 128 else "cifar"
        config = {
            "network": network,
            "image_size": size,
            "stream": network == "imagenet" and dataset.startswith("imagefolder:"),
            "external": model.describe(),
        }
        if config["stream"]:
            mean, std, num_classes = IMAGENET_MEAN, IMAGENET_STD, model.num_classes
        elif info is not None and info.mean is not None and info.num_classes is not None:
            mean, std, num_classes = info.mean, info.std, info.num_classes
        elif key == "imagenet":  # ImageNet-1k by name: its -C/-A/-R/-Sketch scorers read their own folders
            mean, std, num_classes = IMAGENET_MEAN, IMAGENET_STD, 1000
            size = size or 224
        else:
            test = get_dataset(dataset, "test", data_root, download, image_size=size)
            mean, std, num_classes = test.mean, test.std, len(test.classes)
            size = size or int(test.images.shape[-1])
            config["image_size"] = size
        if size is None:
            raise ConfigError(f"cannot tell the input size for {dataset!r}: pass --input-size N")
        outputs = output_count(model.module, size)
        if num_classes is not None and outputs != num_classes:
            raise ConfigError(
                f"{model.spec} has {outputs} outputs but {dataset!r} has {num_classes} classes: pass "
                f"--num-classes {num_classes} (timm/torchvision) or score it on its own dataset"
            )
        model.num_classes = outputs
        return cls(
            genotype=None,
            dataset=dataset,
            config=config,
            num_classes=outputs,
            mean=tuple(mean),  # type: ignore[arg-type]
            std=tuple(std),  # type: ignore[arg-type]
            image_size=int(size),
            scores_dir=Path(scores_dir),
            model_dir=None,
            run_dir=run_dir,
            seed=seed,
            data_root=data_root,
            download=download,
            device=resolve_device(device),
            progress=progress,
            external=model,
        )

    # what scorers use
    @property
    def has_weights(self) -> bool:
        return self.model_dir is not None or self.external is not None

    def network_record(self) -> dict[str, Any]:
        """What :func:`build_from_record` rebuilds the scored network from (picklable)."""
        if self.external is not None:
            ext: Any = self.external.spec_args or self.external.module
            return {"external": ext, "config": self.config, "num_classes": self.num_classes}
        if self.genotype is None:
            raise ConfigError("this context has neither a genotype nor an external model")
        return {"genotype": self.genotype.to_dict(), "config": self.config, "num_classes": self.num_classes}

    def build_untrained(self) -> nn.Module:
        """A fresh network of the scored architecture (for cost measurements); an external model's own
        module (copied), with its weights."""
        if self.external is not None:
            import copy

            return copy.deepcopy(self.external.module).cpu()
        return build_from_record(self.network_record())

    def network(self) -> nn.Module:
        """The trained network, on ``device``, in eval mode (loaded once). An external model comes
        behind :class:`wcbench.models.FeedAs`: it takes what scorers feed every network."""
        if self.external is not None:
            if self._net is None:
                from wcbench.models import FeedAs

                ext = self.external
                self._net = FeedAs(ext.module, self.mean, self.std, ext.mean, ext.std, self.image_size)
                self._net = self._net.to(self.device)
            return self._net.eval()
        if self.model_dir is None:
            raise ConfigError(
                "this scorer needs trained weights: pass --model DIR (a `wcbench retrain` output)"
            )
        if self._net is None:
            self._net = load_trained_network(self.model_dir, self.device)
        return self._net.eval()

    def input_size(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    @property
    def identity(self) -> dict[str, Any]:
        """What the score file says was scored: the genotype hash, or the external model."""
        if self.external is not None:
            return {"genotype_hash": None, "model": self.external.describe()}
        return {"genotype_hash": self.genotype.hash() if self.genotype is not None else None}

    def stream(self) -> bool:
        """Whether the model was trained on a streamed ImageNet-style folder (not an in-memory array)."""
        return bool(self.config.get("stream"))

    def load_split(self, split: str, dataset: str | None = None) -> Any:
        """An in-memory split (:class:`wcbench.data.ArrayDataset`) of the model's dataset (or ``dataset``)."""
        from wcbench.data import get_dataset

        name = dataset or self.dataset
        size = self.config.get("image_size") if name.startswith("imagefolder:") else None
        return get_dataset(name, split, self.data_root, self.download, image_size=size)


def _run_dir_of(model_dir: Path, record: Mapping[str, Any]) -> Path | None:
    run = find_run_dir(model_dir)
    if run is not None:
        return run
    source = record.get("genotype_source")
    if isinstance(source, str) and source and Path(source).exists():
        return find_run_dir(Path(source))
    return None


def metric(value: float | int | None, unit: str, **extra: Any) -> dict[str, Any]:
    """One metric entry: ``{"value": float, "unit": unit, ...}`` (None -> NaN-free null)."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; use one of {UNITS}")
    return {"value": None if value is None else float(value), "unit": unit, **extra}


@dataclass
class ScoreResult:
    """What ``Scorer.run`` returns; :func:`score` adds the bookkeeping and writes the file."""

    metrics: dict[str, dict[str, Any]]
    dataset: str
    split: str
    num_examples: int
    details: dict[str, Any] = field(default_factory=dict)  # resolved settings worth recording (attack params)
    extra: dict[str, Any] = field(default_factory=dict)  # other top-level fields of the score file


class Scorer:
    """Base class of scorers; subclasses set ``name``, ``version``, ``Params`` and implement ``run``."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    needs_weights: ClassVar[bool] = True

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def run(self, ctx: ScoreContext, params: Any) -> ScoreResult:  # pragma: no cover - interface
        raise NotImplementedError


def get_scorer(name: str) -> Scorer:
    from wcbench.registry import SCORERS

    obj = SCORERS.get(name)
    return obj() if isinstance(obj, type) else obj


def resolve_params(scorer: Scorer, overrides: Mapping[str, Any] | None = None) -> BaseModel:
    return resolve_config(scorer.Params, {}, dict(overrides or {}))


def write_score(
    scores_dir: Path,
    scorer: Scorer,
    params: BaseModel,
    result: ScoreResult,
    ctx: ScoreContext,
    duration_s: float,
) -> dict[str, Any]:
    """Write ``scores_dir/<scorer>.json`` atomically and return the record."""
    record = {
        "scorer": scorer.name,
        "scorer_version": scorer.version,
        "scorer_doc": (type(scorer).__doc__ or "").strip().splitlines()[0] if type(scorer).__doc__ else "",
        "params": {**params.model_dump(mode="json"), **result.details},
        "metrics": result.metrics,
        "dataset": result.dataset,
        "split": result.split,
        "num_examples": int(result.num_examples),
        "seed": int(ctx.seed),
        **ctx.identity,
        "model_dir": str(ctx.model_dir) if ctx.model_dir is not None else None,
        "trained_on": ctx.dataset,
        "duration_s": round(float(duration_s), 3),
        "device": str(ctx.device),
        "torch_version": torch.__version__,
        "wcbench_version": wcbench.__version__,
        **result.extra,
    }
    atomic_write_json(Path(scores_dir) / f"{scorer.name}.json", record)
    return record


EXAMPLE_CAPS = ("max_examples", "num_examples")
"""The settings by which a scorer takes a fixed slice of its test data (a rehearsal sets them)."""


def score(ctx: ScoreContext, name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run scorer ``name`` on ``ctx`` with ``overrides`` and write its score file; returns the record."""
    scorer = get_scorer(name)
    params = resolve_params(scorer, overrides)
    if scorer.needs_weights and not ctx.has_weights:
        raise ConfigError(
            f"scorer {name!r} needs trained weights: pass --model DIR (a `wcbench retrain` output) or a "
            f"model spec (timm:<arch>, torchvision:<arch>, robustbench:..., module:function), or use "
            f"`wcbench evaluate`"
        )
    torch.manual_seed(ctx.seed)
    start = time.perf_counter()
    cap = next((f for f in EXAMPLE_CAPS if f in type(params).model_fields), None)
    cap_value = None if cap is None else getattr(params, cap)
    with phase(f"score: {name}", "score", ctx.device, setting=cap, cap_value=cap_value) as clock:
        with clock.part("run"):
            result = scorer.run(ctx, params)
        clock.count("example", int(result.num_examples))
    return write_score(ctx.scores_dir, scorer, params, result, ctx, time.perf_counter() - start)


# --------------------------------------------------------------------------------------------------
# evaluation data


class _Unnormalized:
    """Wrap a loader of normalised images (the streamed ImageNet loader) to yield [0, 1] images."""

    def __init__(self, loader: Any, mean: Sequence[float], std: Sequence[float]) -> None:
        self.loader, self.mean, self.std = loader, mean, std

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Any:
        for x, y in self.loader:
            m = torch.as_tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1)
            s = torch.as_tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
            yield (x * s + m).clamp_(0.0, 1.0), y


def eval_loader(
    ctx: ScoreContext,
    split: str,
    batch_size: int,
    *,
    normalize: bool = True,
    max_examples: int | None = None,
    dataset: str | None = None,
) -> tuple[Any, int]:
    """(loader, number of examples) over ``split`` of the model's dataset, without augmentation.

    ``normalize=False`` gives images in [0, 1] (what attacks perturb). ``max_examples`` takes a fixed
    random subset (seeded by the context's seed), the same for every scorer and run.
    """
    name = dataset or ctx.dataset
    if ctx.stream() and dataset is None:
        from torch.utils.data import Subset

        from wcbench.data import IMAGENET_MEAN, IMAGENET_STD, imagefolder_loader

        root = name.partition(":")[2]
        loader = imagefolder_loader(
            root, split, batch_size, False, int(ctx.config.get("workers", 8)), ctx.image_size
        )
        n = len(loader.dataset)
        if max_examples is not None and max_examples < n:
            g = torch.Generator().manual_seed(ctx.seed)
            idx = torch.randperm(n, generator=g)[:max_examples].sort().values.tolist()
            loader = torch.utils.data.DataLoader(
                Subset(loader.dataset, idx),
                batch_size=batch_size,
                shuffle=False,
                num_workers=loader.num_workers,
            )
            n = len(idx)
        return (loader if normalize else _Unnormalized(loader, IMAGENET_MEAN, IMAGENET_STD)), n
    from wcbench.data import DeviceLoader

    ds = ctx.load_split(split, dataset)
    if max_examples is not None and max_examples < len(ds):
        g = torch.Generator().manual_seed(ctx.seed)
        ds = ds.subset(torch.randperm(len(ds), generator=g)[:max_examples].sort().values)
    loader = DeviceLoader(
        ds, batch_size, shuffle=False, augment=False, device=ctx.device, seed=ctx.seed, normalize=normalize
    )
    return loader, len(ds)
