"""The summary `wcbench run` prints at its end: this run's rows of every leaderboard it appears on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from wcbench.cli.app import console


def print_run_summary(runs_dir: Path, plan: Any) -> None:
    """One line per (board, column) with this searcher's mean +- std over seeds, n, and the t-test
    against its matched baseline where that baseline has runs (`wcbench leaderboard` has the rest)."""
    from wcbench.report import build_boards, format_p, format_value
    from wcbench.results import collect_runs
    from wcbench.runs import dataset_dir

    df = collect_runs(runs_dir)
    table = Table(title=f"{plan.searcher} on {plan.dataset}: leaderboard rows ({runs_dir})")
    for col in ("board", "column", "mean ± std", "n", "vs baseline", "p", "Holm p"):
        table.add_column(col, justify="right" if col in ("mean ± std", "n", "p", "Holm p") else "left")
    for board in build_boards(df, runs_dir=runs_dir) if not df.empty else []:
        rows = [
            r for r in board.rows if r.searcher == plan.searcher and r.dataset == dataset_dir(plan.dataset)
        ]
        for row in rows:
            for col in board.spec.columns:
                cell = row.cells.get(col.key)
                if cell is None or cell.n == 0:
                    continue
                test = next(
                    (
                        c
                        for c in board.comparisons
                        if c.column == col.key
                        and (c.dataset, c.searcher, c.space) == (row.dataset, row.searcher, row.space)
                    ),
                    None,
                )
                mean_std = (
                    f"{format_value(cell.mean)} ± {format_value(cell.std)}"
                    if cell.n > 1
                    else format_value(cell.mean)
                )
                table.add_row(
                    board.row_title(row),
                    f"{board.label(col, row)} {col.arrow}",
                    f"{mean_std} {cell.unit}",
                    str(cell.n),
                    test.baseline if test else "-",
                    format_p(test.result.pvalue) if test else "-",
                    format_p(test.result.p_holm) if test and test.result.p_holm is not None else "-",
                )
    if table.row_count:
        console.print(table)
        console.print("`wcbench leaderboard` shows every board with the paper's reported numbers beside.")
    else:
        console.print(f"no scores for {plan.searcher} on {plan.dataset} under {runs_dir}")


def print_search_summary(run_dirs: list[str]) -> None:
    """What each seed's search did, from its history: the supernet's accuracy on the search-validation
    half (first and last epoch), and for a tester (the paper's method) how the tester was initialised
    and the reference classifier's accuracy on the generated validation data (Fig. 1), with the
    curves and sample grids it drew."""
    from wcbench.files import read_jsonl

    table = Table(title="search: supernet and tester, per seed")
    table.caption = (
        "accuracies: first → last search epoch; reference: Fig. 1's classifier on the tester's data"
    )
    for col in ("run", "supernet val acc", "reference acc.", "tester"):
        table.add_column(col)
    drawn: list[str] = []
    for d in run_dirs:
        history = Path(d) / "search" / "history.jsonl"
        if not history.exists():
            continue
        records = [r for r in read_jsonl(history) if isinstance(r, dict)]
        if not records:
            continue

        def pct(value: Any) -> str:
            return "-" if not isinstance(value, int | float) else f"{100 * value:.1f}%"

        first, last = records[0], records[-1]
        strat = [r.get("strategy") if isinstance(r.get("strategy"), dict) else {} for r in records]
        ref = [s.get("reference_accuracy") for s in strat]
        ref_text = f"{pct(ref[0])} → {pct(ref[-1])}" if any(r is not None for r in ref) else "-"
        table.add_row(
            Path(d).name,
            f"{pct(first.get('val_acc'))} → {pct(last.get('val_acc'))}",
            ref_text,
            _tester_init(strat[-1].get("tester_init")),
        )
        curves = Path(d) / "search" / "tester" / "curves.png"
        if curves.exists():
            drawn.append(str(curves.parent))
    if table.row_count:
        console.print(table)
    for folder in drawn:
        console.print(f"tester curves and sample grids: {folder}", markup=False)


def _tester_init(note: Any) -> str:
    """``pretrained`` / ``untrained (tester_init=scratch)`` from the history's ``tester_init`` note."""
    if not isinstance(note, str) or not note:
        return "-"
    return "untrained (tester_init=scratch)" if note.startswith("scratch") else "pretrained"


def run_record(plan: Any, dirs: list[str]) -> dict[str, Any]:
    """What `wcbench run --json` prints: per seed its folder, status, each stage's status and the
    scores (``{scorer: {metric: value}}``), all read back from the files the run wrote."""
    from wcbench.files import read_json
    from wcbench.runs import RunDir

    runs = []
    for d in dirs:
        rd = RunDir.from_path(d)
        manifest = rd.read_manifest()
        scores: dict[str, dict[str, Any]] = {}
        for path in sorted(rd.scores_dir.glob("*.json")) if rd.scores_dir.is_dir() else []:
            record = read_json(path)
            scores[path.stem] = {k: m.get("value") for k, m in record.get("metrics", {}).items()}
        runs.append(
            {
                "seed": rd.seed,
                "dir": str(rd.path),
                "status": manifest.get("status"),
                "stages": {k: v.get("status") for k, v in manifest.get("stages", {}).items()},
                "scores": scores,
            }
        )
    return {
        "searcher": plan.searcher,
        "dataset": plan.dataset,
        "space": plan.space,
        "runs_dir": str(plan.runs_dir),
        "runs": runs,
    }
