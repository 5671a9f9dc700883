"""`wcbench bench`: search, data and scoring costs as ratios measured in one run."""

from __future__ import annotations

import typer
from rich.table import Table

from wcbench.cli.app import app, console


@app.command("bench")
def bench_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print the measurements as JSON."),
    steps: int = typer.Option(8, "--steps", min=2, help="Search steps measured per searcher."),
    searchers: str = typer.Option(
        "darts1st,darts2nd,pdarts,pcdarts,prdarts", "--searchers", help="Comma-separated base searchers."
    ),
) -> None:
    """Measure each searcher against darts2nd, ours CR/NCR, the device loader and scoring throughput."""
    from wcbench.bench import dumps, run_bench
    from wcbench.registry import split_searcher_name

    names = tuple(s.strip() for s in searchers.split(",") if s.strip())
    for n in names:
        split_searcher_name(n)
    result = run_bench(steps, names, log=(lambda _m: None) if as_json else console.print)
    if as_json:
        print(dumps(result))
        return
    table = Table(title="search step cost (quick preset, 1 thread each)")
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
    ld, sc = result["loader"], result["scoring"]
    console.print(f"device loader {ld['device_loader_images_per_s']:.0f} img/s vs PIL DataLoader "
                  f"{ld['pil_dataloader_images_per_s']:.0f} img/s: {ld['ratio']:.1f}x")  # fmt: skip
    console.print(f"scoring batched {sc['batched_images_per_s']:.0f} img/s vs one at a time "
                  f"{sc['single_images_per_s']:.0f} img/s: {sc['ratio']:.1f}x")  # fmt: skip
