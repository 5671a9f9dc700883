"""A run: search -> genotype -> retrain -> scores, per seed (README "Runs on disk").

`wcbench run` calls :func:`run`. Each stage is the function of :mod:`wcbench.stages` that the
single-stage commands call too; this module plans the seeds and keeps their books. Each seed is one
run directory ``<runs>/<dataset>/<searcher>/seed-<n>/``; its stages are recorded in the manifest,
every file is written atomically, and the whole seed runs under the run directory's file lock, so two
processes (two shells, a SLURM array) never corrupt or lose a result: the second waits, then finds
the work done. Rerunning a command skips finished stages and resumes interrupted ones (the search
and the retrain resume from their own checkpoints).

Data flows one way: cli -> pipeline -> stages -> (searchers | evaluators) -> wcbench core.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wcbench.config import default_dataset, is_cpu_preset, split_settings
from wcbench.errors import ConfigError
from wcbench.registry import SCORERS, split_searcher_name
from wcbench.runs import RunDir, dataset_dir, searcher_dir

DEFAULT_SCORERS: dict[str, tuple[str, ...]] = {
    "cifar10": ("clean", "cifar-c", "attacks", "stl10", "cost"),  # Tables 2, 5, 15, 17, 9
    "cifar100": ("clean", "worst-case", "cost"),  # Tables 1, 5
    "imagenet": ("clean", "imagenet-c", "imagenet-a", "imagenet-r", "imagenet-sketch", "cost"),  # 3, 6, 10-12
    "digits": ("clean", "worst-case", "attacks", "cost"),  # the embedded quick benchmark
}
"""What the paper reports per search dataset; other datasets get `clean` and `cost`."""

QUICK_SCORER_SETTINGS: dict[str, dict[str, Any]] = {"attacks": {"num_examples": 100}}
"""With a CPU preset (`quick`, `smoke`), scorer settings under the user's `--set` (the CPU runs attack a
fixed random 100 test images with every attack instead of the whole split)."""


def default_scorers(dataset: str) -> tuple[str, ...]:
    return DEFAULT_SCORERS.get(dataset.partition(":")[0], ("clean", "cost"))


def run_dir(plan: RunPlan, seed: int) -> RunDir:
    return RunDir(plan.runs_dir, dataset_dir(plan.dataset), searcher_dir(plan.searcher, plan.space), seed)


#: Most seeds one `wcbench run` plans (the paper uses 10), and the largest seed (numpy's generators
#: take seeds below 2**32): `--seeds 1-1000000000` must not allocate a billion run plans.
MAX_SEEDS = 1000
MAX_SEED = 2**31 - 1


def parse_seeds(text: str | Sequence[int]) -> list[int]:
    """`1-10`, `1,3,5`, `0` or a list -> sorted unique seeds (at most :data:`MAX_SEEDS`, each in
    0..:data:`MAX_SEED`)."""
    shown = text if not isinstance(text, str) or len(text) <= 40 else text[:40] + "..."
    if not isinstance(text, str):
        seeds = {int(s) for s in text}
    else:
        seeds = set()
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            try:
                if len(part) > 40:  # int() of thousands of digits is slow, and no seed is that long
                    raise ValueError
                a, b = (int(lo), int(hi)) if sep else (int(part), int(part))
                if b < a:
                    raise ValueError
            except ValueError:
                raise ConfigError(f"bad --seeds {shown!r}: use 1-10, 1,3,5 or 0") from None
            if b > MAX_SEED:
                raise ConfigError(f"bad --seeds {shown!r}: seeds go from 0 to {MAX_SEED}")
            if b - a + 1 + len(seeds) > MAX_SEEDS:
                raise ConfigError(
                    f"--seeds {shown!r} asks for more than {MAX_SEEDS} seeds; give fewer (the paper uses 10)"
                )
            seeds.update(range(a, b + 1))
    if not seeds:
        raise ConfigError(f"bad --seeds {shown!r}: no seed given")
    if len(seeds) > MAX_SEEDS or not all(0 <= s <= MAX_SEED for s in seeds):
        raise ConfigError(f"--seeds: give at most {MAX_SEEDS} seeds, each from 0 to {MAX_SEED}")
    return sorted(seeds)


@dataclass
class RunPlan:
    """Everything `wcbench run` resolved: one searcher, one dataset, several seeds."""

    searcher: str
    dataset: str
    preset: str
    seeds: list[int]
    scorers: list[str]
    runs_dir: Path
    space: str = "darts"
    overrides: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    data_root: str | None = None
    download: bool = False
    progress: bool = True
    log: str | None = None  # training-curve loggers (wcbench.tracking); None: $WCBENCH_LOG
    rehearse: int | None = None
    """Steps per stage of a rehearsal (:mod:`wcbench.rehearsal`); None for a real run."""
    force: list[str] = field(default_factory=list)
    """`--force`: stages to redo although finished (:func:`expand_force`); not part of the config."""

    def config(self) -> dict[str, Any]:
        d = asdict(self)
        d["runs_dir"] = str(self.runs_dir)
        d.pop("force")
        return d


def make_plan(
    searcher: str,
    dataset: str | None,
    preset: str,
    seeds: str | Sequence[int],
    scorers: str | Sequence[str] | None,
    runs_dir: str | Path,
    space: str = "darts",
    overrides: dict[str, Any] | None = None,
    **kw: Any,
) -> RunPlan:
    """Resolve defaults (the paper's dataset, its scorers) and check every name before any work."""
    split_searcher_name(searcher)  # unknown searcher: one-line error with did-you-mean
    if dataset is None:
        dataset = default_dataset(preset)
    if scorers is None or scorers == "":
        names = list(default_scorers(dataset))
    elif isinstance(scorers, str):
        names = [s.strip() for s in scorers.split(",") if s.strip()]
    else:
        names = list(scorers)
    if not names:
        raise ConfigError(
            f"--scorers {scorers!r} names no scorer: give e.g. --scorers clean,cost, or leave it out for "
            f"the paper's scorers of the dataset"
        )
    for name in names:
        SCORERS.get(name)
    from wcbench.space import get_space

    get_space(space)
    from wcbench.tracking import log_backends

    log_backends(kw.get("log"))  # an unknown or missing logger fails before any work
    values = dict(overrides or {})
    split_settings(values, None, names)  # every key names its stage
    plan = RunPlan(searcher, dataset, preset, parse_seeds(seeds), names, Path(runs_dir), space, values, **kw)
    expand_force(plan.force, plan)  # an unknown --force name: one-line error before any work
    return plan


def stage_settings(plan: RunPlan) -> dict[str, dict[str, Any]]:
    """Per-stage settings (``search``, ``retrain``, each scorer): the user's `--set`, over the quick
    preset's scorer settings."""
    stage = split_settings(plan.overrides, None, plan.scorers)
    if is_cpu_preset(plan.preset):
        for name, settings in QUICK_SCORER_SETTINGS.items():
            if name in stage:
                stage[name] = {**settings, **stage[name]}
    return stage


def _writable_root(path: Path) -> Path:
    """The nearest existing folder at or above ``path``: where the runs tree would be created."""
    p = path.absolute()
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def preflight(plan: RunPlan) -> dict[str, Any]:
    """Resolve every setting of every stage and check every input before anything is written
    (`wcbench run --dry-run`): the search and strategy configs, the retrain table and its settings,
    each scorer's settings, the search dataset's train and test splits on disk, and that the runs
    tree can be written. Raises the same one-line errors the stages would; creates nothing.
    Returns what the run would do, per stage."""
    import os

    from evaluators.common import get_scorer, resolve_params
    from evaluators.retrain import algorithm_family, load_retrain_config
    from searchers.spec import resolve_search
    from wcbench.data import get_dataset
    from wcbench.errors import DatasetError

    stage = stage_settings(plan)
    spec = resolve_search(
        plan.searcher, plan.dataset, plan.preset, plan.seeds[0], plan.space, stage["search"]
    )
    family = algorithm_family(spec.algorithm, plan.dataset)
    retrain_cfg = load_retrain_config(family, plan.preset, plan.dataset.partition(":")[0], stage["retrain"])
    scorer_params = {n: resolve_params(get_scorer(n), stage[n]).model_dump(mode="json") for n in plan.scorers}
    data: dict[str, Any] = {}
    for split in ("train", "test"):
        try:
            ds = get_dataset(plan.dataset, split, plan.data_root, download=False)
            data[split] = {"examples": len(ds), "classes": ds.num_classes}
        except DatasetError:
            if not plan.download:
                raise
            data[split] = "missing: --download fetches it"
    root = _writable_root(plan.runs_dir)
    try:  # os.access says yes to root on a read-only mount; the mount's flag does not
        read_only = bool(os.statvfs(root).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        read_only = False
    if not root.is_dir() or read_only or not os.access(root, os.W_OK | os.X_OK):
        raise ConfigError(
            f"--runs-dir {plan.runs_dir}: {root} is not a writable folder; choose another --runs-dir"
        )
    return {
        "searcher": plan.searcher,
        "dataset": plan.dataset,
        "preset": plan.preset,
        "seeds": plan.seeds,
        "run_dirs": [str(run_dir(plan, s).path) for s in plan.seeds],
        "search": {
            "algorithm": spec.algorithm,
            "strategy": spec.strategy,
            "config": spec.algorithm_config.model_dump(mode="json"),
            "strategy_config": spec.strategy_config.model_dump(mode="json"),
        },
        "retrain": {"family": family, "config": retrain_cfg.model_dump(mode="json")},
        "scorers": scorer_params,
        "data": data,
    }


FORCEABLE_STAGES = ("search", "retrain", "score")
"""What `--force` names besides a scorer: a stage, redone with what depends on it."""


def resolve_stages(plan: RunPlan, seed: int) -> dict[str, dict[str, Any]]:
    """Every stage's resolved settings for ``seed``, keyed as the manifest's stages (``search``,
    ``retrain``, ``score:<name>``): what a finished stage records and a rerun is compared with.
    Resolving them all checks every setting before the first stage runs."""
    from evaluators.common import get_scorer, resolve_params
    from evaluators.retrain import algorithm_family, load_retrain_config
    from searchers.spec import resolve_search

    stage = stage_settings(plan)
    spec = resolve_search(plan.searcher, plan.dataset, plan.preset, seed, plan.space, stage["search"])
    family = algorithm_family(spec.algorithm, plan.dataset)
    retrain_cfg = load_retrain_config(family, plan.preset, plan.dataset.partition(":")[0], stage["retrain"])
    out: dict[str, dict[str, Any]] = {
        "search": spec.to_dict(),
        "retrain": {"family": family, **retrain_cfg.model_dump(mode="json")},
    }
    for name in plan.scorers:
        out[f"score:{name}"] = resolve_params(get_scorer(name), stage[name]).model_dump(mode="json")
    return out


def _flat(d: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}"))
    return out


def _setting_key(stage: str, flat_key: str) -> str:
    """``search.algorithm_config.epochs`` -> ``search.epochs``, as `--set` names it."""
    head, _, rest = flat_key.partition(".")
    if stage == "search":
        rest = rest.replace("algorithm_config.", "", 1) if rest.startswith("algorithm_config.") else rest
        rest = (
            "strategy." + rest.removeprefix("strategy_config.")
            if rest.startswith("strategy_config.")
            else rest
        )
        return f"search.{rest}"
    return f"{stage.removeprefix('score:')}.{rest}" if rest else head


def settings_diff(stage: str, recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``["retrain.epochs: 8 -> 1", ...]``: the settings of ``stage`` that differ, as `--set` keys."""
    a, b = _flat(dict(recorded), "x"), _flat(dict(current), "x")
    diffs = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            diffs.append(
                f"{_setting_key(stage, key)}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}"
            )
    return diffs


def expand_force(force: Sequence[str], plan: RunPlan) -> set[str]:
    """`--force` names -> the manifest stages to redo: ``search`` (and everything after it),
    ``retrain`` (and every score), ``score`` (every scorer of the plan) or a scorer's name."""
    stages: set[str] = set()
    for name in force:
        name = name.strip()
        if name == "search":
            stages |= {"search", "retrain", "score"}
        elif name == "retrain":
            stages |= {"retrain", "score"}
        elif name == "score":
            stages.add("score")
        elif name in plan.scorers:
            stages.add(f"score:{name}")
        else:
            raise ConfigError(
                f"--force {name!r}: name a stage (search, retrain, score) or one of this run's scorers "
                f"({', '.join(plan.scorers)})"
            )
    if "score" in stages:
        stages.discard("score")
        stages |= {f"score:{n}" for n in plan.scorers}
    return stages


def _stage_overrides(plan: RunPlan, stage: str) -> dict[str, Any]:
    head = stage.removeprefix("score:")
    return {k: v for k, v in plan.overrides.items() if k.partition(".")[0] == head}


def _produced_config(rd: RunDir, plan: RunPlan, seed: int) -> dict[str, Any]:
    """The run's ``config`` as the files beside the manifest were made: this plan, with the scorers
    and `--set` overrides of the stages on record (scores of earlier commands included)."""
    stages = rd.read_manifest().get("stages", {})
    done = {k: v for k, v in stages.items() if isinstance(v, dict) and v.get("status") == "done"}
    overrides: dict[str, Any] = {}
    for record in done.values():
        overrides.update(record.get("overrides") or {})
    scorers = [k.removeprefix("score:") for k in done if k.startswith("score:")]
    return {**plan.config(), "seed": seed, "scorers": scorers, "overrides": overrides}


def run_seed(plan: RunPlan, seed: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """One seed: search, retrain on the search dataset, then each scorer; returns the manifest.

    A finished stage is skipped when its recorded settings equal this plan's; when they differ the
    run stops with a :class:`ConfigError` naming the keys, unless ``plan.force`` names the stage (it
    is then redone from scratch, with the stages after it). The manifest's ``config`` only ever
    describes the files beside it; ``attempts`` lists every invocation and its outcome.
    """
    import shutil

    from evaluators.common import ScoreContext
    from wcbench.devices import release_memory, resolve_device
    from wcbench.errors import Interrupted
    from wcbench.stages import retrain_stage, score_stage, search_stage, tester_stage, tester_wanted

    stage = stage_settings(plan)
    resolved = resolve_stages(plan, seed)
    forced = expand_force(plan.force, plan)
    rd = run_dir(plan, seed)
    retrain_dir = rd.retrain_dir(dataset_dir(plan.dataset))
    with rd.lock():
        attempt = {"preset": plan.preset, "scorers": plan.scorers, "overrides": plan.overrides}
        before = rd.read_manifest()
        rd.write_manifest(
            {**plan.config(), "seed": seed}, "running", {**attempt, "force": sorted(plan.force)}
        )
        recorded = before.get("stages", {}) if isinstance(before.get("stages"), dict) else {}
        differing = []
        for key, settings in resolved.items():
            rec = recorded.get(key)
            if key in forced or not isinstance(rec, dict) or rec.get("status") != "done":
                continue
            if isinstance(rec.get("settings"), dict):
                diff = settings_diff(key, rec["settings"], settings)
                if diff:
                    differing.append((key, diff))
        if differing:
            key, diff = differing[0]
            name = key.removeprefix("score:")
            shown = "; ".join(diff[:4]) + (f"; and {len(diff) - 4} more" if len(diff) > 4 else "")
            message = (
                f"{rd.path}: its finished {name} stage was made with other settings ({shown}); rerun "
                f"with --force {name} to redo it (and what depends on it), or use another --runs-dir"
            )
            rd.end_attempt(f"refused: {message}", restore=before)
            raise ConfigError(message)

        def start(key: str) -> None:
            release_memory(resolve_device(plan.device))  # the last stage's freed heap goes back first
            rd.stage_start(key, settings=resolved[key], overrides=_stage_overrides(plan, key))

        def finish(key: str, **extra: Any) -> None:
            rd.stage_end(key, **extra)
            rd.record_config(_produced_config(rd, plan, seed))

        try:
            redo_after = False  # a stage that ran makes the ones after it stale
            if "search" in forced and rd.search_dir.exists():
                shutil.rmtree(rd.search_dir)
            if "search" in forced or not (
                rd.stage_done("search") and (rd.search_dir / "genotype.json").exists()
            ):
                where = dict(preset=plan.preset, seed=seed, space=plan.space, settings=stage["search"])
                if not rd.stage_done("tester") and tester_wanted(plan.searcher, plan.dataset, **where):
                    rd.stage_start("tester")
                    t0 = time.perf_counter()
                    note = tester_stage(
                        plan.searcher,
                        plan.dataset,
                        **where,
                        device=plan.device,
                        data_root=plan.data_root,
                        download=plan.download,
                    )
                    log(f"seed {seed}: tester {note}")
                    rd.stage_end("tester", note=note, seconds=round(time.perf_counter() - t0, 2))
                start("search")
                t0 = time.perf_counter()
                genotype = search_stage(
                    plan.searcher,
                    plan.dataset,
                    rd.search_dir,
                    preset=plan.preset,
                    seed=seed,
                    space=plan.space,
                    settings=stage["search"],
                    device=plan.device,
                    progress=plan.progress,
                    data_root=plan.data_root,
                    download=plan.download,
                    log=plan.log,
                )
                finish("search", genotype_hash=genotype.hash(), seconds=round(time.perf_counter() - t0, 2))
                redo_after = "search" in forced or bool(recorded.get("retrain"))
            else:
                log(f"seed {seed}: search done, skipped")
            if redo_after or "retrain" in forced:
                if retrain_dir.exists():
                    shutil.rmtree(retrain_dir)
                rd.drop_stage("retrain")
            if not (rd.stage_done("retrain") and (retrain_dir / "model.pt").exists()):
                start("retrain")
                t0 = time.perf_counter()
                retrained = retrain_stage(
                    rd.search_dir,  # its genotype.json, with the retrain family the search recorded
                    plan.dataset,
                    retrain_dir,
                    preset=plan.preset,
                    seed=seed,
                    settings=stage["retrain"],
                    data_root=plan.data_root,
                    download=plan.download,
                    device=plan.device,
                    progress=None if plan.progress else False,  # bars on a terminal only, as the search
                    log=plan.log,
                )
                finish("retrain", family=retrained.family, seconds=round(time.perf_counter() - t0, 2))
                redo_after = (
                    redo_after or "retrain" in forced or any(k.startswith("score:") for k in recorded)
                )
            else:
                log(f"seed {seed}: retrain done, skipped")
            if redo_after:  # scores of the previous network: redo the plan's, drop the others
                for key in [k for k in rd.read_manifest().get("stages", {}) if k.startswith("score:")]:
                    name = key.removeprefix("score:")
                    rd.score_path(name).unlink(missing_ok=True)
                    rd.drop_stage(key)
                    if name not in plan.scorers:
                        log(f"seed {seed}: score {name} removed (it scored the previous network)")
                rd.record_config(_produced_config(rd, plan, seed))
            ctx = None
            for name in plan.scorers:
                key = f"score:{name}"
                if key not in forced and rd.stage_done(key) and rd.score_path(name).exists():
                    log(f"seed {seed}: score {name} done, skipped")
                    continue
                if name == "worst-case":
                    ensure_worst_case_subset(plan, log)
                if ctx is None:  # one context (one loaded network) for every scorer of the seed
                    ctx = ScoreContext.from_model_dir(
                        retrain_dir,
                        scores_dir=rd.scores_dir,
                        data_root=plan.data_root,
                        download=plan.download,
                        device=plan.device,
                        seed=seed,
                        progress=plan.progress,
                    )
                start(key)
                score_stage(ctx, [name], stage)
                finish(key)
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt | Interrupted)
            status = "interrupted" if interrupted else "failed"
            rd.mark_running_stages(status)
            rd.end_attempt(status, error=None if interrupted else f"{type(exc).__name__}: {exc}")
            raise
        return rd.end_attempt("done", error=None)


def ensure_worst_case_subset(plan: RunPlan, log: Callable[[str], None] = print) -> None:
    """Build the dataset's worst-case subset once (Table 1; README "Data") if none is stored, so
    every method and seed is scored on the same images. A file lock keeps concurrent runs from
    building it twice. CIFAR-100 keeps the paper's 20 per class; other datasets 20% of each class's
    test images (at most 20), as 20 of CIFAR-100's 100 per class."""
    import filelock

    from evaluators.worst_case import build_worst_case_subset, default_subset_path
    from wcbench.data import get_dataset

    path = default_subset_path(plan.dataset, plan.data_root)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(path) + ".lock"):
        if path.exists():
            return
        test = get_dataset(plan.dataset, "test", plan.data_root, plan.download)
        per_class = 20 if plan.dataset == "cifar100" else max(1, min(20, len(test) // test.num_classes // 5))
        committee = "quick" if is_cpu_preset(plan.preset) else "paper"
        log(
            f"building the worst-case subset of {plan.dataset} ({per_class} per class, {committee} committee)"
        )
        build_worst_case_subset(
            plan.dataset,
            per_class=per_class,
            committee=committee,
            data_root=plan.data_root,
            download=plan.download,
            device=plan.device,
        )


def run_job(plan: RunPlan, seed: int) -> str:
    """A picklable job for submitit: run one seed, return its run directory."""
    run_seed(plan, seed, log=lambda _msg: None)
    return str(run_dir(plan, seed).path)


@dataclass
class SlurmOptions:
    """Resources of each array task (submitit's `slurm_*` parameters)."""

    partition: str | None = None
    gpus: int = 1
    cpus: int = 8
    time_min: int = 24 * 60
    mem_gb: int | None = None


def run(
    plan: RunPlan,
    executor: str = "local",
    slurm: SlurmOptions | None = None,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Run every seed: one after another (`local`), or as a submitit job array (`slurm`, or
    `submitit-local`, submitit's local executor, which runs the same job code in subprocesses)."""
    if executor == "local":
        for seed in plan.seeds:
            log(f"[{plan.searcher} on {plan.dataset}, seed {seed}] search -> retrain -> score")
            run_seed(plan, seed, log)
        return [str(run_dir(plan, s).path) for s in plan.seeds]
    if executor not in ("slurm", "submitit-local"):
        raise ConfigError(f"unknown --executor {executor!r}; choose local, slurm or submitit-local")
    import submitit

    folder = plan.runs_dir / ".submitit" / "%j"
    if executor == "slurm":
        ex: Any = submitit.AutoExecutor(folder=folder, cluster="slurm")
        opts = slurm or SlurmOptions()
        params: dict[str, Any] = {
            "timeout_min": opts.time_min,
            "gpus_per_node": opts.gpus,
            "cpus_per_task": opts.cpus,
            "name": f"wcbench-{plan.searcher}",
        }
        if opts.partition:
            params["slurm_partition"] = opts.partition
        if opts.mem_gb:
            params["mem_gb"] = opts.mem_gb
        ex.update_parameters(**params)
    else:
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=(slurm or SlurmOptions()).time_min)
    plan_for_jobs = RunPlan(**{**asdict(plan), "progress": False})
    jobs = ex.map_array(run_job, [plan_for_jobs] * len(plan.seeds), plan.seeds)
    log(f"submitted {len(jobs)} job(s): {', '.join(j.job_id for j in jobs)}")
    return [job.result() for job in jobs]
