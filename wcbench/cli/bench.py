"""`wcbench bench`: search, data and scoring costs, and the slowdown under load, as ratios measured in
one run."""

from __future__ import annotations

from rich.table import Table

from wcbench.bench import PARTS, POLICY_ENV
from wcbench.cli.app import app, console
from wcbench.cli.options import option

POLICIES = tuple(POLICY_ENV)


@app.command("bench")
def bench_cmd(
    as_json: bool = option("--json", False),
    steps: int = option("--steps", 8, "", min=2),
    searchers: str = option("--searchers", "darts1st,darts2nd,pdarts,pcdarts,prdarts"),
    parts: str = option("--parts", ",".join(PARTS), f"Of {', '.join(PARTS)}."),
    load_procs: int | None = option("--load-procs", None, "", min=0),
    wait_policies: str = option(
        "--wait-policies",
        "",
        "default: torch's own, before wcbench set PASSIVE; empty: this process's policy only.",
    ),
    load_searcher: str = option("--load-searcher", "darts2nd"),
) -> None:
    """Measure each searcher against darts2nd, ours CR/NCR, the device loader, scoring throughput, and
    the same search steps idle vs beside a competing load (slowdown vs fair share)."""
    from wcbench.bench import dumps, load_summary, run_bench
    from wcbench.errors import ConfigError
    from wcbench.registry import split_searcher_name

    names = tuple(s.strip() for s in searchers.split(",") if s.strip())
    for n in names:
        split_searcher_name(n)
    split_searcher_name(load_searcher)
    chosen = tuple(p.strip() for p in parts.split(",") if p.strip())
    policies = tuple(p.strip().lower() for p in wait_policies.split(",") if p.strip())
    for value, allowed, flag in ((chosen, PARTS, "--parts"), (policies, POLICIES, "--wait-policies")):
        bad = [v for v in value if v not in allowed]
        if bad:
            raise ConfigError(f"{flag}: unknown {', '.join(bad)}; choose from {', '.join(allowed)}")
    result = run_bench(
        steps,
        names,
        log=(lambda _m: None) if as_json else console.print,
        parts=chosen,
        load_procs=load_procs,
        wait_policies=policies or None,
        load_searcher=load_searcher,
    )
    if as_json:
        print(dumps(result))
        return
    c = result["cpus"]
    console.print(f"threads {c['threads']} ({c['threads_source']}), DataLoader workers {c['workers']}, "
                  f"OMP_WAIT_POLICY {c['wait_policy']} ({c['wait_policy_source']}), "
                  f"allowed CPUs {c['allowed_cpus']}")  # fmt: skip
    for line in load_summary(result.get("load")):
        console.print(line)
    if {"search", "ours"} & set(chosen):
        table = Table(title="search step cost (smoke preset, 1 thread each)")
        for col in ("searcher", "s/step", "peak MB", "time vs darts2nd", "memory vs darts2nd"):
            table.add_column(col, justify="left" if col == "searcher" else "right")
        for name, rec in {**result["search"], **result["ours"]}.items():
            if "error" in rec:
                table.add_row(name, "-", "-", "-", rec["error"][:40])
                continue
            table.add_row(name, f"{rec['s_per_step']:.3f}", f"{rec['peak_memory_mb']:.0f}",
                          f"{rec.get('time_vs_darts2nd', float('nan')):.2f}x",
                          f"{rec.get('memory_vs_darts2nd', float('nan')):.2f}x")  # fmt: skip
        console.print(table)
    if "loader" in result:
        ld = result["loader"]
        console.print(f"device loader {ld['device_loader_images_per_s']:.0f} img/s vs PIL DataLoader "
                      f"{ld['pil_dataloader_images_per_s']:.0f} img/s: {ld['ratio']:.1f}x")  # fmt: skip
    if "scoring" in result:
        sc = result["scoring"]
        console.print(f"scoring batched {sc['batched_images_per_s']:.0f} img/s vs one at a time "
                      f"{sc['single_images_per_s']:.0f} img/s: {sc['ratio']:.1f}x")  # fmt: skip
