"""The stages of a run, one function each: search, retrain, score, and the tester's pretraining.

`wcbench run` (:func:`wcbench.pipeline.run_seed`, per seed) and the single-stage commands (`search`,
`retrain`, `score`, `evaluate`, `tester pretrain`) call these same functions. They take resolved,
typed inputs (names, paths, the stage's settings as split by :func:`wcbench.config.split_settings`),
print nothing (logging and progress bars only) and return what the stage made.

Data flows one way: cli -> pipeline / stages -> (searchers | evaluators) -> wcbench core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wcbench.errors import ConfigError
from wcbench.genotype import Genotype, load_genotype
from wcbench.tracking import log_backends

if TYPE_CHECKING:
    import torch

    from evaluators.common import ScoreContext
    from evaluators.retrain import RetrainResult

TESTER_ALGORITHM = {"gan": "darts2nd", "augment": "pdarts"}
"""Whose `ours` preset sizes a tester by default: an algorithm that `ours` searches with that tester
(the GAN with DARTS, the augmentation policy with the others; see `searchers.strategies.ours`)."""


def search_stage(
    searcher: str,
    dataset: str | None,
    out_dir: str | Path,
    *,
    preset: str = "paper",
    seed: int = 0,
    space: str = "darts",
    settings: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    data_root: str | Path | None = None,
    download: bool = False,
    log: str | None = None,
) -> Genotype:
    """Search ``<strategy>-<algorithm>`` into ``out_dir`` (resuming) and return the genotype.

    ``settings``: the algorithm's settings and ``strategy.<key>`` ones for the validation strategy;
    ``dataset`` None: :func:`wcbench.config.default_dataset`. ``genotype.json`` records the
    algorithm's ``retrain_family`` beside the genotype. ``log``: training-curve loggers
    (:mod:`wcbench.tracking`, e.g. ``tensorboard``; None: ``$WCBENCH_LOG``).
    """
    log_backends(log)  # an unknown or missing logger: one line, before torch loads
    from searchers.loop import run_search

    return run_search(
        searcher,
        dataset,
        preset,
        seed,
        space,
        out_dir,
        dict(settings or {}),
        device,
        progress,
        data_root,
        download,
        log=log,
    )


@dataclass
class Retrained:
    """What the retrain stage did: the evaluation table it followed and the retrain's result."""

    family: str
    result: RetrainResult


def retrain_stage(
    genotype: str | Path,
    dataset: str,
    out_dir: str | Path,
    *,
    preset: str = "paper",
    family: str | None = None,
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
    settings_as_typed: Sequence[str] | None = None,
    data_root: str | None = None,
    download: bool = False,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    log: str | None = None,
) -> Retrained:
    """Retrain ``genotype`` (a published name, genotype file, search directory or DARTS string) from
    scratch on ``dataset`` into ``out_dir``, resuming from its checkpoint (paper Appendix D.2).

    The preset is ``presets/retrain/<family>.toml`` (Tables 33-36): ``family`` if given, else the
    one the search recorded in ``genotype.json`` or the published name's
    (:func:`evaluators.retrain.family_for`); ``settings`` override it. ``retrain.json`` records the
    settings, or, when given, ``settings_as_typed``: the `--set` strings as the user typed them.
    ``log``: training-curve loggers (:mod:`wcbench.tracking`; None: ``$WCBENCH_LOG``).
    """
    log_backends(log)  # an unknown or missing logger: one line, before torch loads
    from evaluators.retrain import family_for, load_retrain_config, retrain

    g = load_genotype(genotype)
    fam = family or family_for(genotype, dataset)
    values = dict(settings or {})
    config = load_retrain_config(fam, preset, dataset.partition(":")[0], values)
    recorded: Any = values if settings_as_typed is None else list(settings_as_typed)
    result = retrain(
        g,
        dataset,
        out_dir,
        config,
        seed=seed,
        data_root=data_root,
        download=download,
        device=device,
        progress=progress,
        preset={"family": fam, "preset": preset, "overrides": recorded},
        genotype_source=str(genotype),
        log=log,
    )
    return Retrained(fam, result)


def model_score_context(
    model_dir: str | Path,
    *,
    scores_dir: str | Path | None = None,
    data_root: str | None = None,
    download: bool = False,
    device: str | torch.device | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> ScoreContext:
    """What every scorer scores: the retrained model in ``model_dir`` (a `wcbench retrain` output,
    ``retrain.json`` + ``model.pt``). Scores go to ``scores_dir``, else ``<run>/scores`` for a run's
    ``retrain/<dataset>`` directory, else ``model_dir/scores``; ``seed`` None: the retrain's."""
    from evaluators.common import ScoreContext

    return ScoreContext.from_model_dir(
        model_dir,
        scores_dir=scores_dir,
        data_root=data_root,
        download=download,
        device=device,
        seed=seed,
        progress=progress,
    )


def genotype_score_context(
    genotype: str | Path,
    dataset: str,
    *,
    preset: str = "paper",
    family: str | None = None,
    scores_dir: Path | None = None,
    data_root: str | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ScoreContext:
    """What weight-free scorers (cost) score without a retrain: ``genotype``'s network as its
    retrain preset sizes it for ``dataset``. Scores go to ``scores_dir``, else ``<run>/scores`` when
    the genotype lies in a run directory, else ``./scores``. (A retrained model's context is
    :meth:`evaluators.common.ScoreContext.from_model_dir`.)"""
    from evaluators.common import ScoreContext, find_run_dir
    from evaluators.retrain import family_for, load_retrain_config

    g = load_genotype(genotype)
    fam = family or family_for(genotype, dataset)
    cfg = load_retrain_config(fam, preset, dataset.partition(":")[0])
    path = Path(genotype)
    run_dir = find_run_dir(path) if path.exists() else None
    target = scores_dir or ((run_dir / "scores") if run_dir is not None else Path("scores"))
    return ScoreContext.from_genotype(
        g,
        dataset,
        cfg.model_dump(mode="json"),
        scores_dir=target,
        run_dir=run_dir,
        data_root=data_root,
        device=device,
        seed=seed,
        progress=progress,
    )


def score_stage(
    context: ScoreContext, scorers: Sequence[str], settings: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Run each scorer on ``context`` with its settings (``settings[name]``, as
    :func:`wcbench.config.split_settings` gives them); writes ``<scores_dir>/<scorer>.json`` and
    returns the score records in order."""
    from evaluators.common import score

    return [score(context, name, settings.get(name, {})) for name in scorers]


def tester_wanted(
    searcher: str,
    dataset: str | None,
    *,
    preset: str = "paper",
    seed: int = 0,
    space: str = "darts",
    settings: Mapping[str, Any] | None = None,
) -> bool:
    """Whether the search's strategy has a stage to run before it (:func:`tester_stage`)."""
    from searchers.spec import resolve_search
    from wcbench.registry import STRATEGIES

    spec = resolve_search(searcher, dataset, preset, seed, space, dict(settings or {}))
    return bool(STRATEGIES.get(spec.strategy).wants_prepare(spec.strategy_config))


def tester_stage(
    searcher: str,
    dataset: str | None,
    *,
    preset: str = "paper",
    seed: int = 0,
    space: str = "darts",
    settings: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    data_root: str | Path | None = None,
    download: bool = False,
) -> str:
    """The stage before a search whose strategy prepares something once per dataset (``ours``: the
    tester's pretraining, paper Sec. 3.3 and Appendix A.1), with the search's own resolved settings, so
    the search finds it in the data root's cache. Locked against concurrent writers and shared by seeds
    and searchers with the same key. Returns what it did."""
    from searchers.loop import search_context
    from searchers.spec import resolve_search
    from wcbench.registry import STRATEGIES

    spec = resolve_search(searcher, dataset, preset, seed, space, dict(settings or {}))
    ctx = search_context(spec, device, data_root=data_root, download=download)
    return STRATEGIES.get(spec.strategy).prepare(ctx, spec.strategy_config)


def tester_pretrain_stage(
    dataset: str,
    tester: str = "gan",
    *,
    preset: str = "paper",
    algorithm: str | None = None,
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
    data_root: str | Path | None = None,
    device: str | torch.device | None = None,
) -> str:
    """Pretrain the `ours` strategy's tester (``gan``: the FQ-GAN and the auxiliary model; ``augment``:
    the augmentation policy's) on the search-train half of ``dataset`` for ``seed`` and cache it under
    the data root, where an ``ours-<algorithm>`` search with the same settings starts from it (paper
    Sec. 3.3, Appendix A.1). ``settings``: the strategy's (``pretrain_iters``, ``generator``, ...),
    sized by ``algorithm``'s `ours` preset (default :data:`TESTER_ALGORITHM`). Returns where the tester
    came from (``cache <path>`` or ``pretrained now, cache <path>``)."""
    from searchers.loop import search_context
    from searchers.spec import resolve_search
    from searchers.strategies.ours import pretrain_tester_cache

    if tester not in TESTER_ALGORITHM:
        raise ConfigError(f"unknown --tester {tester!r}; choose gan or augment")
    values = {f"strategy.{k}": v for k, v in (settings or {}).items()}
    values.update({"strategy.tester": tester, "strategy.tester_init": "pretrain"})
    searcher = f"ours-{algorithm or TESTER_ALGORITHM[tester]}"
    spec = resolve_search(searcher, dataset, preset, seed, "darts", values)
    ctx = search_context(spec, device, data_root=data_root)
    return pretrain_tester_cache(ctx, spec.strategy_config)


# --------------------------------------------------------------------------------------------------
# models from outside wcbench (timm, torchvision, RobustBench, module:function, nn.Module objects)

EXTERNAL_FILE = "external.json"


def external_run_dir(runs_dir: str | Path, label: str, dataset: str, seed: int = 0) -> Path:
    """Where an external model's scores go: ``<runs>/<dataset>/external-<slug>/seed-<n>/``, a run
    directory of its own that `wcbench leaderboard` shows beside the searched architectures."""
    from wcbench.runs import dataset_dir

    return Path(runs_dir) / dataset_dir(dataset) / label / f"seed-{seed}"


def _dataset_classes(dataset: str, data_root: str | None) -> int | None:
    """How many classes ``dataset`` has, without loading its images (None: unknown)."""
    from wcbench.data import DATASET_INFO, resolve_data_root

    key, _, arg = dataset.partition(":")
    info = DATASET_INFO.get(key)
    if info is not None and info.num_classes is not None:
        return int(info.num_classes)
    if key == "imagefolder" and arg:
        path = Path(arg).expanduser()
        if not path.exists():
            path = resolve_data_root(data_root) / arg
        for split in ("train", "test"):
            if (path / split).is_dir():
                return sum(1 for p in (path / split).iterdir() if p.is_dir())
    return None


def external_model(
    model: Any,
    *,
    dataset: str | None = None,
    weights: str | Path | None = None,
    model_dir: str | Path | None = None,
    num_classes: int | None = None,
    input_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    data_root: str | None = None,
) -> Any:
    """An :class:`wcbench.models.ExternalModel` from a spec string, an ``nn.Module`` (or a
    ``(module, declarations)`` tuple) or an ExternalModel. timm and torchvision heads are sized to
    ``dataset``'s classes unless ``num_classes`` says otherwise."""
    from wcbench import models

    if isinstance(model, models.ExternalModel):
        return models.override(model, input_size=input_size, mean=mean, std=std)
    if isinstance(model, str):
        kind = model.partition(":")[0]
        if num_classes is None and kind in ("timm", "torchvision") and dataset is not None:
            num_classes = _dataset_classes(dataset, data_root)
        return models.load_model_spec(
            model,
            weights,
            model_dir=model_dir,
            num_classes=num_classes,
            input_size=input_size,
            mean=mean,
            std=std,
        )
    opts = models.LoadOptions(str(weights) if weights else None, None, num_classes)
    ext = models.from_module(model, "object", None, opts)
    return models.override(ext, input_size=input_size, mean=mean, std=std)


def external_score_context(
    model: Any,
    dataset: str | None = None,
    *,
    weights: str | Path | None = None,
    model_dir: str | Path | None = None,
    num_classes: int | None = None,
    input_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    name: str | None = None,
    runs_dir: str | Path = "runs",
    scores_dir: str | Path | None = None,
    data_root: str | None = None,
    download: bool = False,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ScoreContext:
    """The context scoring an external model (see :func:`external_model`) on ``dataset`` (default: a
    RobustBench model's own). Scores go to ``scores_dir``, else to :func:`external_run_dir`, whose
    ``external.json`` records the model; ``name`` replaces an object's label (``external-<name>``)."""
    from evaluators.common import ScoreContext
    from wcbench import robustbench
    from wcbench.files import atomic_write_json

    if dataset is None and isinstance(model, str) and model.startswith("robustbench:"):
        dataset = robustbench.parse_name(model.partition(":")[2])[0]
    if dataset is None:
        raise ConfigError("an external model needs the dataset to score it on: --dataset cifar10|digits|...")
    ext = external_model(
        model,
        dataset=dataset,
        weights=weights,
        model_dir=model_dir,
        num_classes=num_classes,
        input_size=input_size,
        mean=mean,
        std=std,
        data_root=data_root,
    )
    if name is not None:
        ext.name = name
    run = external_run_dir(runs_dir, ext.label, dataset, seed) if scores_dir is None else None
    ctx = ScoreContext.from_external(
        ext,
        dataset,
        scores_dir=Path(scores_dir) if scores_dir is not None else run / "scores",  # type: ignore[operator]
        run_dir=run,
        data_root=data_root,
        download=download,
        device=device,
        seed=seed,
        progress=progress,
    )
    if run is not None:
        atomic_write_json(run / EXTERNAL_FILE, {**ext.describe(), "dataset": dataset, "seed": seed})
    return ctx


def score_model(
    model: Any,
    scorers: str | Sequence[str],
    dataset: str | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    **context: Any,
) -> dict[str, dict[str, Any]]:
    """Score ``model`` with ``scorers`` and return ``{scorer: score record}`` (also written to disk).

    ``model``: an ``nn.Module`` (or ``(module, declarations)`` tuple), a spec (``timm:resnet18``,
    ``torchvision:resnet18``, ``robustbench:cifar10/Linf/Standard``, ``package.module:function``) or a
    retrain directory. ``settings``: scorer settings as `--set` takes them (``{"max_examples": 50,
    "attacks.num_examples": 8}``). ``context``: :func:`external_score_context`'s keywords (weights,
    model_dir, input_size, runs_dir, data_root, device, seed, ...).
    """
    from evaluators.common import ScoreContext
    from wcbench.config import split_settings
    from wcbench.registry import SCORERS

    names = [s.strip() for s in scorers.split(",")] if isinstance(scorers, str) else list(scorers)
    for n in names:
        SCORERS.get(n)
    routed = split_settings(dict(settings or {}), "score", names)
    if isinstance(model, str | Path) and Path(model).is_dir():
        allowed = ("scores_dir", "data_root", "download", "device", "seed", "progress")
        ctx = ScoreContext.from_model_dir(model, **{k: v for k, v in context.items() if k in allowed})
    else:
        ctx = external_score_context(model, dataset, **context)
    return {rec["scorer"]: rec for rec in score_stage(ctx, names, routed)}
