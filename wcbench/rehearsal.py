"""A rehearsal: every stage of a real run for N steps, timed, with a projection of the full run (issue #15).

`wcbench run ... --rehearse N` runs :func:`wcbench.pipeline.run_seed` itself (the code path of a full
run) with the step caps that the loops honour, set by :func:`rehearsal_settings`:

* search: ``max_steps_per_epoch = N`` and ``max_examples = N x batch_size`` (the search-train and
  search-validation halves), one epoch per phase (``epochs = 2, warmup_epochs = 1`` where the preset
  freezes the architecture first, so weights-only and architecture epochs are both timed; P-DARTS:
  per stage, so all three stages run at their full depth and op lists);
* `ours`: the tester's pretraining (G/D, V, the reference classifier) for N iterations each, into
  a cache inside the rehearsal run; under CR ``hyper_every = N``, so that the architecture epoch
  after an N-step warm-up epoch starts on a hypergradient step (the projection counts the preset's);
* retrain: ``epochs = 2`` (the second has drop path > 0), ``max_steps_per_epoch = N``, a validation
  slice of ``examples``;
* each scorer: its example cap (:data:`evaluators.common.EXAMPLE_CAPS`) set to ``examples``.

The user's ``--set`` wins over these caps (the tests shrink the networks that way). The loops report
seconds and peak memory per phase through :mod:`wcbench.phases`; :func:`project` multiplies seconds per
step by the step counts of the run as configured without the caps. Rehearsal runs live under
``<runs>/rehearsal/`` with ``rehearse`` in their manifest, which :func:`wcbench.results.collect_runs`
skips: nothing of a rehearsal reaches a leaderboard.
"""

from __future__ import annotations

import math
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from wcbench.errors import ConfigError
from wcbench.files import atomic_write_json
from wcbench.phases import PhaseRecord, listening

REHEARSAL_DIR = "rehearsal"
"""The runs tree of rehearsals, under the user's --runs-dir."""

ASSUMPTIONS = (
    "seconds per step (wall) are the mean over the rehearsed steps (the first step of a phase includes "
    "its warm-up: allocator, oneDNN/cuDNN plans), on this machine under its present load; the CPU "
    "seconds beside them are the process's own CPU time, which the load of other processes does not "
    "inflate",
    "search: weight steps = epochs x floor(search-train / batch) per stage; architecture steps = "
    "(epochs - warmup epochs) x ceil(steps per epoch / hyper_every) (ours CR: every 8th step; else every "
    "step); one validation pass over search-val per epoch; per-epoch strategy work as rehearsed; ours CR "
    "is rehearsed with hyper_every = N so that the architecture epoch starts on a due step, and its "
    "weight steps then carry the tester's due-step updates (G's SGD step) every step, not every 8th",
    "tester: pretraining iterations of the preset (G/D: pretrain_iters; V: aux_pretrain_iters; reference "
    "classifier: reference_iters), counted in the search cost",
    "retrain: epochs x ceil(train / batch) steps, a validation pass every valid_every epochs",
    "scorers: time linear in the number of test examples (the rehearsed slice scaled to the whole split)",
    "one device, no data-loading stalls beyond those rehearsed; 1 GPU-hour = 1 hour on this device",
)


def rehearsal_settings(plan: Any, n: int, examples: int) -> dict[str, Any]:
    """The `--set` settings (stage-prefixed) that cap every stage of ``plan`` at ``n`` steps and each
    scorer at ``examples`` test examples; the plan's own settings are laid over them."""
    from evaluators.common import EXAMPLE_CAPS, get_scorer
    from searchers.spec import resolve_search
    from wcbench.pipeline import stage_settings

    if n < 1:
        raise ConfigError(f"--rehearse {n}: give the number of steps per stage, 1 or more")
    stage = stage_settings(plan)
    spec = resolve_search(
        plan.searcher, plan.dataset, plan.preset, plan.seeds[0], plan.space, stage["search"]
    )
    cfg = spec.algorithm_config
    caps: dict[str, Any] = {
        "search.max_steps_per_epoch": n,
        "search.max_examples": n * cfg.batch_size,
        "search.epochs": 2 if cfg.warmup_epochs > 0 else 1,
        "search.warmup_epochs": 1 if cfg.warmup_epochs > 0 else 0,
        "retrain.epochs": 2,
        "retrain.max_steps_per_epoch": n,
        "retrain.max_valid_examples": examples,
    }
    strategy_fields = type(spec.strategy_config).model_fields
    for key in ("pretrain_iters", "aux_pretrain_iters", "reference_iters", "probe_iters"):
        if key in strategy_fields and getattr(spec.strategy_config, key) > 0:
            caps[f"search.strategy.{key}"] = n
    if "hyper_every" in strategy_fields:
        # ours CR: a hypergradient step every `hyper_every` global steps. A real run's warm-up epochs are
        # a multiple of it (P-DARTS: 10 x 260 = 8 x 325 steps), so its architecture epochs start on a
        # due step; the rehearsal's N-step warm-up epoch is not, unless the period is N.
        caps["search.strategy.hyper_every"] = n
    if "tester_init" in strategy_fields:  # rehearse the pretraining, into the rehearsal's own cache
        caps["search.strategy.tester_init"] = "pretrain"
        caps["search.strategy.cache_dir"] = str(rehearsal_run_dir(plan).path / "testers")
    for name in plan.scorers:
        fields = get_scorer(name).Params.model_fields
        cap = next((f for f in EXAMPLE_CAPS if f in fields), None)
        if cap is not None:
            caps[f"{name}.{cap}"] = examples
    return {**caps, **plan.overrides}


def rehearsal_plan(plan: Any, n: int, examples: int) -> Any:
    """``plan`` as its rehearsal: the capped settings, one seed, the rehearsal runs tree."""
    return replace(
        plan,
        seeds=plan.seeds[:1],
        runs_dir=plan.runs_dir / REHEARSAL_DIR,
        overrides=rehearsal_settings(plan, n, examples),
        rehearse=n,
    )


def rehearsal_run_dir(plan: Any) -> Any:
    from wcbench.pipeline import run_dir

    return run_dir(replace(plan, runs_dir=plan.runs_dir / REHEARSAL_DIR), plan.seeds[0])


# ================================================================================== projection


def _full_counts(plan: Any) -> dict[str, Any]:
    """The step counts of the run as configured (the preset and the user's --set, no caps)."""
    from evaluators.retrain import algorithm_family, load_retrain_config
    from searchers.spec import resolve_search
    from wcbench.data import get_dataset, search_split
    from wcbench.pipeline import stage_settings

    stage = stage_settings(plan)
    seed = plan.seeds[0]
    spec = resolve_search(plan.searcher, plan.dataset, plan.preset, seed, plan.space, stage["search"])
    cfg = spec.algorithm_config
    n_train = len(get_dataset(plan.dataset, "train", plan.data_root))
    train_idx, val_idx = search_split(n_train, seed, cfg.train_portion)
    n_tr, n_val = len(train_idx), len(val_idx)
    if cfg.max_examples is not None:
        n_tr, n_val = min(n_tr, cfg.max_examples), min(n_val, cfg.max_examples)
    steps = n_tr // cfg.batch_size
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    family = algorithm_family(spec.algorithm, plan.dataset)
    try:
        rcfg = load_retrain_config(family, plan.preset, plan.dataset.partition(":")[0], stage["retrain"])
    except ConfigError:  # the retrain's settings are what failed: its rows go without a projection
        rcfg = None
    return {
        "search_config": cfg,
        "strategy_config": spec.strategy_config,
        "search_steps_per_epoch": steps,
        "search_val_examples": n_val,
        "retrain_config": rcfg,
        "retrain_train_examples": n_train
        if rcfg is None or rcfg.max_train_examples is None
        else rcfg.max_train_examples,
    }


def _split_size(plan: Any, split: str) -> int | None:
    from wcbench.data import get_dataset
    from wcbench.errors import DatasetError

    try:
        return len(get_dataset(plan.dataset, split, plan.data_root))
    except DatasetError:
        return None


def _row(record: PhaseRecord, part: str, full: float | None, assumption: str) -> dict[str, Any]:
    seconds, count, cpu = record.parts[part]
    per = seconds / count if count else None
    return {
        "phase": record.name,
        "kind": record.kind,
        "part": part,
        "count": int(count),
        "seconds": round(seconds, 6),
        "seconds_per_unit": None if per is None else round(per, 6),
        "cpu_seconds_per_unit": round(cpu / count, 6) if count else None,
        "full_count": None if full is None else round(full, 3),
        "projected_seconds": None if (per is None or full is None) else round(per * full, 3),
        "peak_memory_mb": round(record.peak_memory_mb, 1),
        "memory_source": record.memory_source,
        "assumption": assumption,
    }


def project(records: list[PhaseRecord], plan: Any, valid_split: str | None = None) -> list[dict[str, Any]]:
    """One row per timed part of each phase: seconds per unit, the full run's count of that unit
    (:data:`ASSUMPTIONS`), and their product."""
    full = _full_counts(plan)
    scfg, strat, rcfg = full["search_config"], full["strategy_config"], full["retrain_config"]
    steps = full["search_steps_per_epoch"]
    epochs, arch_epochs = scfg.epochs, max(scfg.epochs - scfg.warmup_epochs, 0)
    test_n = _split_size(plan, "test")
    valid_n = _split_size(plan, valid_split) if valid_split else None
    retrain_steps = 0
    if rcfg is not None:
        if valid_n is not None and rcfg.max_valid_examples is not None:
            valid_n = min(valid_n, rcfg.max_valid_examples)
        retrain_steps = math.ceil(full["retrain_train_examples"] / rcfg.batch_size)
        if rcfg.max_steps_per_epoch:
            retrain_steps = min(retrain_steps, rcfg.max_steps_per_epoch)
    rows: list[dict[str, Any]] = []
    for rec in records:
        for part in rec.parts:
            n_full: float | None = None
            note = ""
            if rec.kind == "tester":
                n_full = float(getattr(strat, rec.info["setting"]))
                note = f"{rec.info['setting']} = {n_full:g}"
            elif rec.kind == "search":
                every = int(getattr(strat, "arch_step_period", 1))  # the preset's, not N
                n_full, note = {
                    "weight step": (epochs * steps, f"{epochs} epochs x {steps} steps"),
                    "arch step": (
                        arch_epochs * math.ceil(steps / every),
                        f"{arch_epochs} epochs x ceil({steps} / {every}) steps",
                    ),
                    "validation example": (
                        epochs * full["search_val_examples"],
                        f"{epochs} epochs x {full['search_val_examples']} search-val examples",
                    ),
                    "epoch end": (epochs, f"{epochs} epochs"),
                }.get(part, (None, ""))
            elif rec.kind == "retrain" and rcfg is not None:
                if part == "train step":
                    n_full = rcfg.epochs * retrain_steps
                    note = f"{rcfg.epochs} epochs x {retrain_steps} steps"
                elif part == "validation example" and valid_n is not None:
                    passes = math.ceil(rcfg.epochs / rcfg.valid_every)
                    n_full, note = passes * valid_n, f"{passes} passes x {valid_n} examples"
            elif rec.kind == "score" and part == "run":
                cap = rec.info.get("setting")
                scored = rec.parts.get("example", [0, 0])[1]
                sliced = rec.info.get("cap_value")
                if cap is None or sliced is None or test_n is None:
                    n_full, note = 1.0, "as rehearsed (no example cap)"
                else:
                    sliced = min(int(sliced), test_n)
                    n_full, note = test_n / max(sliced, 1), f"x {test_n} / {sliced} test examples"
                if scored == 0:
                    note += "; scored no examples"
            if rec.kind == "score" and part == "example":
                continue  # the scorer's count, read above
            rows.append(_row(rec, part, n_full, note))
    return rows


def totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Projected hours: search (tester pretraining + search), retrain, scorers."""
    out = {"search_hours": 0.0, "retrain_hours": 0.0, "score_hours": 0.0}
    for row in rows:
        s = row["projected_seconds"] or 0.0
        key = {"tester": "search_hours", "search": "search_hours", "retrain": "retrain_hours"}.get(
            row["kind"], "score_hours"
        )
        out[key] += s / 3600.0
    return {k: round(v, 4) for k, v in out.items()}


def paper_table9(searcher: str, cost_reduction: bool | None) -> dict[str, Any]:
    """The paper's Table 9 search cost (GPU-h as printed; the caption says hours, the baselines' values
    equal Table 5's GPU-days) and search memory (MiB) of ``searcher`` (ours: CR or NCR row)."""
    from wcbench.paper_results import load_paper_results

    df = load_paper_results("search_cost")
    df = df[(df["table"] == 9) & (df["searcher"] == searcher)]
    if searcher.startswith("ours-") and cost_reduction is not None:
        df = df[df["row"].str.startswith("CR-" if cost_reduction else "NCR-")]
    out: dict[str, Any] = {}
    for _, r in df.iterrows():
        if r["metric"] in ("search_cost", "memory"):
            out[str(r["metric"])] = {"value": float(r["value"]), "unit": str(r["unit"]), "row": str(r["row"])}
    return out


# ================================================================================== the rehearsal


def rehearse(plan: Any, n: int, examples: int = 64, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Rehearse ``plan`` (its first seed) for ``n`` steps per stage; writes and returns
    ``rehearsal.json`` (per-phase rows, totals, the paper's Table 9 figures, assumptions). When a stage
    fails, the phases timed up to it are written, with ``error``, before the error is raised."""
    import torch

    from wcbench.devices import resolve_device
    from wcbench.pipeline import run_seed

    rplan = rehearsal_plan(plan, n, examples)
    rd = rehearsal_run_dir(plan)
    if rd.path.exists():  # a rehearsal starts afresh: its run dir holds nothing but rehearsals
        shutil.rmtree(rd.path)
    log(f"rehearsing {plan.searcher} on {plan.dataset} ({plan.preset} preset): {n} step(s) per stage")
    t0 = time.perf_counter()
    error: BaseException | None = None
    with listening() as phases:
        try:
            run_seed(rplan, rplan.seeds[0], log)
        except Exception as exc:  # noqa: BLE001 - the phases up to the failure are reported, then it re-raises
            error = exc
    wall = time.perf_counter() - t0
    records = list(phases.records.values())
    from wcbench.files import read_json

    retrain_json = next(rd.path.glob("retrain/*/retrain.json"), None)
    valid_split = read_json(retrain_json).get("valid_split") if retrain_json else None
    rows = project(records, plan, valid_split)
    full = _full_counts(plan)
    strat = full["strategy_config"]
    cr = getattr(strat, "cost_reduction", None) if plan.searcher.startswith("ours-") else None
    dev = resolve_device(plan.device)
    report = {
        "searcher": plan.searcher,
        "dataset": plan.dataset,
        "preset": plan.preset,
        "seed": plan.seeds[0],
        "steps": n,
        "score_examples": examples,
        "cost_reduction": cr,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor(),
        "threads": torch.get_num_threads(),
        "wall_seconds": round(wall, 2),
        "error": None if error is None else f"{type(error).__name__}: {' '.join(str(error).split())}",
        "settings": rplan.overrides,
        "phases": [r.to_dict() for r in records],
        "rows": rows,
        "totals": totals(rows),
        "paper_table9": paper_table9(plan.searcher, cr),
        "assumptions": list(ASSUMPTIONS),
        "run_dir": str(rd.path),
        "plan": {**asdict(plan), "runs_dir": str(plan.runs_dir)},
    }
    atomic_write_json(rd.path / "rehearsal.json", report)
    if error is not None:  # the stage that failed (out of memory, a bug) is the rehearsal's finding
        raise error
    return report
