"""Leaderboards from a run tree written in the on-disk layout (README "Runs on disk"; paper App. B.7).

Each test writes ``runs/<dataset>/<searcher>/seed-<n>/scores/<scorer>.json`` files as the scorers do and
checks what the board says: rows with mean, std and n per column, the matched-baseline t-test with
scipy's p-value (Welch by default), Holm over the board's comparisons, the best per column, and the
paper's numbers labelled as reported (Table 1 etc.).
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from wcbench.errors import ConfigError, RegistryError
from wcbench.metrics import declared_metrics
from wcbench.report import (
    BOARDS,
    OTHER_BOARD,
    BoardSpec,
    Column,
    annotate_runs,
    board_to_dict,
    build_board,
    build_boards,
    check_benchmark,
    compare_runs,
    format_p,
    to_csv,
    to_html,
    to_json,
    to_markdown,
    to_table,
    write_boards,
)
from wcbench.results import collect_runs
from wcbench.runs import split_searcher_dir

# seed -> worst-case, average-case, all (%); three seeds: fewer is no test (wcbench.report.fairness)
OURS = {1: (27.9, 16.0, 18.3), 2: (28.4, 16.3, 18.6), 3: (28.0, 16.1, 18.2)}
BASE = {1: (29.0, 17.1, 19.4), 2: (29.8, 17.2, 19.8), 3: (29.3, 16.9, 19.5)}


def write_score(
    root: Path,
    dataset: str,
    searcher: str,
    seed: int,
    scorer: str,
    metrics: dict[str, float],
    unit: str = "%",
    eval_dataset: str | None = None,
) -> Path:
    """One ``scores/<scorer>.json`` as the scorers write it (metrics with value and unit)."""
    path = root / dataset / searcher / f"seed-{seed}" / "scores" / f"{scorer}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "scorer": scorer,
        "metrics": {k: {"value": v, "unit": unit} for k, v in metrics.items()},
        "dataset": eval_dataset or dataset,
        "seed": seed,
        "genotype_hash": f"{searcher}-{seed}",
    }
    path.write_text(json.dumps(record))
    return path


def write_worst_case(root: Path, searcher: str, per_seed: dict[int, tuple[float, float, float]]) -> None:
    for seed, (wc, ac, al) in per_seed.items():
        write_score(
            root,
            "cifar100",
            searcher,
            seed,
            "worst-case",
            {"worst_case_error": wc, "average_case_error": ac, "all_error": al},
        )
        write_score(root, "cifar100", searcher, seed, "clean", {"top1_error": al, "top5_error": al / 4})


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """ours-pdarts and pdarts on CIFAR-100, seeds 1-3, worst-case and clean scores."""
    root = tmp_path / "runs"
    write_worst_case(root, "ours-pdarts", OURS)
    write_worst_case(root, "pdarts", BASE)
    return root


def col(values: dict[int, tuple[float, ...]], i: int) -> list[float]:
    return [v[i] for _, v in sorted(values.items())]


def md_row(markdown: str, first_cell: str) -> list[str]:
    """The cells of the first Markdown table row whose first cell is ``first_cell``."""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in\n{markdown}")


# --------------------------------------------------------------------------------------------------
# rows, n, and scipy's p-value


def test_board_rows_have_mean_std_n_and_welch_p_equal_to_scipy(runs: Path) -> None:
    board = build_board(collect_runs(runs), "worst_case_cifar100")
    assert [r.searcher for r in board.rows] == ["pdarts", "ours-pdarts"]  # baseline first, as Table 1
    ours = board.rows[1]
    cell = ours.cells["worst_case"]
    assert cell.n == 3 and cell.seeds == [1, 2, 3]
    assert cell.mean == pytest.approx(np.mean(col(OURS, 0)))
    assert cell.std == pytest.approx(np.std(col(OURS, 0), ddof=1))

    expected = stats.ttest_ind(col(OURS, 0), col(BASE, 0), equal_var=False)
    comp = board.row_comparison(ours)
    assert comp is not None and comp.baseline == "pdarts"
    assert comp.result.pvalue == expected.pvalue  # exactly scipy's
    assert comp.result.statistic == expected.statistic
    assert comp.result.n_a == comp.result.n_b == 3
    assert ours.baseline == "pdarts" and board.rows[0].baseline is None


def test_markdown_prints_n_and_the_formatted_scipy_p(runs: Path) -> None:
    md = to_markdown(build_board(collect_runs(runs), "worst_case_cifar100"))
    p = stats.ttest_ind(col(OURS, 0), col(BASE, 0), equal_var=False).pvalue
    ours, base = md_row(md, "ours-pdarts"), md_row(md, "pdarts")
    header = md_row(md, "searcher")
    assert ours[header.index("n")] == base[header.index("n")] == "3"
    assert ours[header.index("p (Welch, worst-case error)")] == f"{p:.3g}"
    assert ours[header.index("baseline")] == "pdarts"
    assert format_p(p) == f"{p:.3g}" and format_p(math.nan) == "—"


def test_json_and_csv_carry_scipys_p_unrounded(runs: Path) -> None:
    board = build_board(collect_runs(runs), "worst_case_cifar100")
    expected = stats.ttest_ind(col(OURS, 1), col(BASE, 1), equal_var=False).pvalue
    data = json.loads(to_json(board))
    (avg,) = [c for c in data["comparisons"] if c["column"] == "average_case"]
    assert avg["pvalue"] == expected and avg["n_a"] == 3 and avg["n_b"] == 3
    rows = list(csv.DictReader(io.StringIO(to_csv(board))))
    (test_row,) = [r for r in rows if r["kind"] == "test" and r["column"] == "average_case"]
    assert float(test_row["pvalue"]) == expected
    runs_rows = [r for r in rows if r["kind"] == "run" and r["column"] == "worst_case"]
    assert {r["searcher"]: r["n"] for r in runs_rows} == {"pdarts": "3", "ours-pdarts": "3"}
    assert any(r["kind"] == "reported" and r["table"] == "1" for r in rows)


# --------------------------------------------------------------------------------------------------
# Holm, best per column, effect size


def test_holm_runs_over_all_comparisons_of_the_board(runs: Path) -> None:
    board = build_board(collect_runs(runs), "worst_case_cifar100")
    assert len(board.comparisons) == 3  # one matched pair x three columns
    raw = {
        c: stats.ttest_ind(col(OURS, i), col(BASE, i), equal_var=False).pvalue
        for i, c in enumerate(("worst_case", "average_case", "all"))
    }
    order = sorted(raw, key=raw.get)  # Holm by hand: m=3, factors 3, 2, 1, running maximum
    expected, running = {}, 0.0
    for rank, key in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * raw[key]))
        expected[key] = running
    for comp in board.comparisons:
        assert comp.result.pvalue == raw[comp.column]
        assert comp.result.p_holm == pytest.approx(expected[comp.column], rel=1e-12)
        assert comp.reject == (raw[comp.column] <= 0.05 / (3 - order.index(comp.column)))
    d = board.row_comparison(board.rows[1]).result.cohens_d
    a, b = col(OURS, 0), col(BASE, 0)
    pooled = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    assert d == pytest.approx((np.mean(a) - np.mean(b)) / pooled)


def test_best_per_column_follows_the_direction(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_worst_case(root, "ours-pdarts", OURS)
    write_worst_case(root, "pdarts", BASE)
    for searcher, accs in (("ours-pdarts", (88.0, 89.0)), ("pdarts", (86.0, 87.0))):
        for seed, acc in zip((1, 2), accs):
            write_score(root, "cifar10", searcher, seed, "stl10", {"stl10_acc": acc}, eval_dataset="stl10")
    df = collect_runs(root)
    errors = build_board(df, "worst_case_cifar100")  # lower is better
    assert [r.cells["worst_case"].best for r in errors.rows] == [False, True]
    acc = build_board(df, "stl10")  # higher is better
    assert {r.searcher: r.cells["accuracy"].best for r in acc.rows} == {"ours-pdarts": True, "pdarts": False}
    md = to_markdown(errors)
    assert "**28.10 ± 0.26**" in md_row(md, "ours-pdarts")  # bold = best
    assert "**" not in " ".join(md_row(md, "pdarts"))


def test_ours_is_also_compared_with_spcl_and_dihcl(runs: Path) -> None:
    write_worst_case(
        runs, "spcl-pdarts", {1: (28.8, 16.9, 19.0), 2: (29.1, 17.0, 19.3), 3: (28.7, 16.7, 19.2)}
    )
    write_worst_case(
        runs, "dihcl-pdarts", {1: (28.9, 16.8, 19.1), 2: (29.0, 17.3, 19.5), 3: (29.2, 17.0, 19.0)}
    )
    board = build_board(collect_runs(runs), "worst_case_cifar100")
    assert [r.searcher for r in board.rows] == ["pdarts", "spcl-pdarts", "dihcl-pdarts", "ours-pdarts"]
    pairs = {(c.searcher, c.baseline) for c in board.comparisons}
    assert pairs == {
        ("spcl-pdarts", "pdarts"),
        ("dihcl-pdarts", "pdarts"),
        ("ours-pdarts", "pdarts"),
        ("ours-pdarts", "spcl-pdarts"),
        ("ours-pdarts", "dihcl-pdarts"),
    }
    assert len(board.comparisons) == 15  # five pairs x three columns: one Holm family
    assert all(c.result.p_holm >= c.result.pvalue for c in board.comparisons)


# --------------------------------------------------------------------------------------------------
# degenerate input and the other tests


def test_a_single_seed_row_shows_the_message_not_a_crash(runs: Path) -> None:
    write_worst_case(runs, "spcl-pdarts", {1: (28.0, 16.0, 18.0)})
    board = build_board(collect_runs(runs), "worst_case_cifar100")
    spcl = next(r for r in board.rows if r.searcher == "spcl-pdarts")
    comp = board.row_comparison(spcl)
    assert comp is not None and comp.result.degenerate and math.isnan(comp.result.pvalue)
    assert "n = 1 seed(s) on one side" in comp.result.message
    md = to_markdown(board)
    row = md_row(md, "spcl-pdarts")
    assert row[2] == "1" and any(c.startswith("n/a: n = 1 seed(s) on one side: a t-test needs") for c in row)
    assert "**28.00**" in row  # mean of one seed, no std (and the best mean: bold)
    data = json.loads(to_json(board))  # no NaN in the JSON
    degenerate = [c for c in data["comparisons"] if c["searcher"] == "spcl-pdarts"]
    assert degenerate and all(c["pvalue"] is None and c["message"] for c in degenerate)
    # the Holm family is the defined tests only
    ours = board.row_comparison(board.rows[-1])
    assert ours.result.p_holm >= ours.result.pvalue


def test_paired_and_one_sample_tests(runs: Path) -> None:
    df = collect_runs(runs)
    paired = build_board(df, "worst_case_cifar100", test="paired")
    res = paired.row_comparison(paired.rows[1]).result
    assert res.pvalue == stats.ttest_rel(col(OURS, 0), col(BASE, 0)).pvalue
    one = build_board(df, "worst_case_cifar100", test="one-sample")
    res = one.row_comparison(one.rows[1]).result
    assert res.pvalue == stats.ttest_1samp(col(OURS, 0), popmean=np.mean(col(BASE, 0))).pvalue
    assert "p (one-sample, worst-case error)" in to_markdown(one)


def test_paired_test_with_different_seeds_says_so(runs: Path) -> None:
    write_worst_case(runs, "pdarts", {4: (30.0, 17.0, 19.0)})  # pdarts now has seeds 1-4
    board = build_board(collect_runs(runs), "worst_case_cifar100", test="paired")
    res = board.row_comparison(board.rows[1]).result
    assert res.degenerate and "same seeds" in res.message and "1,2,3,4" in res.message


def test_bad_options_raise_config_errors(runs: Path) -> None:
    df = collect_runs(runs)
    with pytest.raises(ConfigError, match="known: worst_case_cifar100, cifar10c"):
        build_board(df, "worst_case")
    with pytest.raises(ConfigError, match="unknown test"):
        build_board(df, "worst_case_cifar100", test="student")
    with pytest.raises(ConfigError, match="alpha"):
        build_board(df, "worst_case_cifar100", alpha=1.5)


# --------------------------------------------------------------------------------------------------
# the paper's numbers


def test_paper_numbers_are_shown_beside_and_labelled_as_reported(runs: Path) -> None:
    board = build_board(collect_runs(runs), "worst_case_cifar100")
    base = board.rows[0]
    (rep,) = base.reported["worst_case"]
    assert (rep.table, rep.value, rep.std) == (1, 27.93, 0.36)  # Table 1, "Pdarts", as printed
    md = to_markdown(board)
    header = md_row(md, "searcher")
    assert (
        md_row(md, "pdarts")[header.index("reported in the paper (worst-case error)")] == "27.93 ± 0.36 (T1)"
    )
    assert "### Reported in the paper (Table 1): numbers as printed, not reproduced here" in md
    paper_row = md_row(md, "1")  # first row of the reported table: Darts2nd
    assert paper_row[1] == "Darts2nd" and "30.07 ± 0.36" in paper_row
    assert "swapped" in md  # the README's warning about Table 1's Pdarts/Pcdarts rows travels along
    # reported numbers never enter the statistics
    assert {c.searcher for c in board.comparisons} == {"ours-pdarts"}


def test_empty_runs_still_show_the_paper(tmp_path: Path) -> None:
    boards = build_boards(collect_runs(tmp_path / "nothing"))
    assert [b.name for b in boards] == list(BOARDS)
    for b in boards:
        assert not b.rows and not b.runs_found and b.paper, b.name
    md = to_markdown(boards[0])
    assert "No runs found under runs" in md and "30.07 ± 0.36" in md


def test_search_cost_is_in_gpu_days_and_table_9_is_labelled(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for seed, hours in ((1, 12.0), (2, 36.0)):
        write_score(root, "cifar10", "pdarts", seed, "cost", {"search_gpu_hours": hours}, unit="GPU-h")
        write_score(root, "cifar10", "pdarts", seed, "cost2", {"params": 3.4e6 + seed}, unit="params")
    for seed in (1, 2):  # a CPU run: history-based cost
        hist = root / "digits" / "pdarts" / f"seed-{seed}" / "search" / "history.jsonl"
        hist.parent.mkdir(parents=True)
        hist.write_text(json.dumps({"epoch": 0, "wall_time_s": 1800.0 * seed}) + "\n")
    board = build_board(collect_runs(root), "search_cost")
    gpu = next(r for r in board.rows if r.dataset == "cifar10")
    assert gpu.cells["search_cost"].values == [0.5, 1.5] and gpu.cells["search_cost"].unit == "GPU-days"
    cpu = next(r for r in board.rows if r.dataset == "digits")
    # a unit is the unit of the device that ran, and a column mixes no units: CPU searches have their own
    assert "search_cost" not in cpu.cells and "search_cost_cpu" not in gpu.cells
    assert cpu.cells["search_cost_cpu"].unit == "CPU-days" == board.column("search_cost_cpu").unit
    assert cpu.cells["search_cost_cpu"].values == pytest.approx([0.5 / 24, 1.0 / 24])
    labels = {c.key: c.label for c in board.spec.columns}
    assert labels["search_cost"].endswith("(GPU-days)") and labels["search_cost_cpu"].endswith("(CPU-days)")
    # Table 9's costs (caption: GPU hours) are GPU-days, as the CSV README explains
    (t9,) = [p for p in board.paper if p.table == 9 and p.row == "Pdarts"]
    assert t9.cells["search_cost"].value == 0.3 and t9.cells["search_cost"].unit == "GPU-days"
    assert "caption says GPU hours" in t9.note
    assert gpu.reported["search_cost"][0].table == 9


def test_units_params_in_millions(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for seed in (1, 2):
        write_score(root, "cifar10", "pdarts", seed, "cost", {"params": 3_400_000.0 + seed}, unit="params")
        write_score(root, "cifar10", "pdarts", seed, "clean", {"top1_error": 2.5 + seed / 10})
    board = build_board(collect_runs(root), "cifar_overall")
    (row,) = board.rows
    assert row.cells["params"].unit == "M" and row.cells["params"].mean == pytest.approx(3.4000015)
    assert [v.table for v in row.reported["top1_error"]] == [5]  # *Pdarts, Table 5, CIFAR-10
    assert row.reported["top1_error"][0].value == 2.54


# --------------------------------------------------------------------------------------------------
# which runs feed which board


def test_search_space_convention_puts_s1_runs_on_table_4_only(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for searcher, errs in (("darts2nd+s1", (4.5, 4.7, 4.4)), ("ours-darts2nd+s1", (3.0, 3.2, 3.3))):
        for seed, err in zip((1, 2, 3), errs):
            write_score(root, "cifar10", searcher, seed, "clean", {"top1_error": err})
    # a run whose manifest names the space instead of the directory
    for seed, err in zip((1, 2), (5.5, 5.9)):
        write_score(root, "cifar10", "darts1st", seed, "clean", {"top1_error": err})
        (root / "cifar10" / "darts1st" / f"seed-{seed}" / "manifest.json").write_text(
            json.dumps({"config": {"space": "s2"}})
        )
    assert split_searcher_dir("darts2nd+s1") == ("darts2nd", "s1")
    assert split_searcher_dir("pdarts") == ("pdarts", None)
    df = collect_runs(root)
    assert set(annotate_runs(df)["space"]) == {"s1", "s2"}
    board = build_board(df, "search_spaces_s1_s4")
    rows = {r.searcher: r for r in board.rows}
    assert set(rows) == {"darts1st", "darts2nd", "ours-darts2nd"}
    assert set(rows["darts2nd"].cells) == {"s1"} and set(rows["darts1st"].cells) == {"s2"}
    (comp,) = board.comparisons
    assert (comp.searcher, comp.baseline, comp.column) == ("ours-darts2nd", "darts2nd", "s1")
    assert comp.result.pvalue == stats.ttest_ind([3.0, 3.2, 3.3], [4.5, 4.7, 4.4], equal_var=False).pvalue
    # Table 4 names methods, not searchers: Ours on S1 (CIFAR-10, two settings) is shown beside
    assert [v.value for v in rows["ours-darts2nd"].reported["s1"]] == [3.08, 2.55]
    assert not build_board(df, "cifar_overall").rows  # S1-S4 runs stay off the DARTS-space boards


def test_eval_datasets_route_scores_to_their_boards(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for seed in (1, 2):
        write_score(
            root, "imagenet", "pcdarts", seed, "imagenet-r", {"top1_error": 60.0 + seed}, "%", "imagenet-r"
        )
        write_score(root, "imagenet", "pcdarts", seed, "clean", {"top1_error": 25.0 + seed}, "%", "imagenet")
        write_score(root, "digits", "pcdarts", seed, "worst-case", {"worst_case_error": 10.0 + seed})
    df = collect_runs(root)
    ars = build_board(df, "imagenet_a_r_sketch")
    assert ars.rows[0].cells["imagenet_r"].mean == 61.5 and "imagenet_a" not in ars.rows[0].cells
    assert ars.rows[0].reported["imagenet_r"][0].value == 62.3  # Table 11, Pcdarts
    inet = build_board(df, "imagenet")
    assert inet.rows[0].cells["top1_error"].mean == 26.5
    assert not build_board(df, "cifar_overall").rows  # ImageNet scores are not CIFAR numbers
    # a dataset the paper does not use: a sanity row, no reported number matched
    wc = build_board(df, "worst_case_cifar100")
    (digits,) = wc.rows
    assert digits.dataset == "digits" and not digits.reported
    assert "sanity runs" in to_markdown(wc)


def test_metric_names_the_scorers_write_are_read_too(tmp_path: Path) -> None:
    """Columns read the names scorers write: the attacks scorer's ``pgd10_acc``, the cost scorer's
    ``latency_bs1_ms``."""
    root = tmp_path / "runs"
    for seed, (pgd, lat) in enumerate(((51.0, 3.0), (53.0, 3.4)), start=1):
        write_score(root, "cifar10", "ours-pcdarts", seed, "attacks", {"pgd10_acc": pgd, "clean_acc": 90.0})
        write_score(root, "cifar10", "ours-pcdarts", seed, "cost", {"latency_bs1_ms": lat}, unit="ms")
    df = collect_runs(root)
    (row,) = build_board(df, "attacks").rows
    assert row.cells["pgd10_cifar10"].mean == 52.0 and row.cells["clean_cifar10"].mean == 90.0
    assert row.reported["pgd10_cifar10"][0].value == 59.07  # Table 15, Ours-pcdarts
    (cost,) = build_board(df, "search_cost").rows
    assert cost.cells["latency_b1"].mean == pytest.approx(3.2)


# --------------------------------------------------------------------------------------------------
# renderers and files


def test_html_is_one_self_contained_page_with_plots(runs: Path) -> None:
    boards = build_boards(collect_runs(runs), ["worst_case_cifar100", "stl10"])
    page = to_html(boards)
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 2
    assert "<script" not in page and "<link" not in page and "<img" not in page  # nothing to fetch
    assert not re.search(r'(src|href)="(https?:|//)', page)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # the inline SVGs do not share ids
    assert "reported in the paper" in page and 'class="reported"' in page
    assert "ours-pdarts" in page and "27.93 ± 0.36 (T1)" in page


def test_terminal_table_renders(runs: Path) -> None:
    from rich.console import Console

    console = Console(record=True, width=250)
    console.print(to_table(build_board(collect_runs(runs), "worst_case_cifar100")))
    text = console.export_text()
    assert "ours-pdarts" in text and "Reported in the paper (Table 1)" in text


def test_write_boards_writes_atomically_under_leaderboards(runs: Path, tmp_path: Path) -> None:
    boards = build_boards(collect_runs(runs), ["worst_case_cifar100", "cifar10c"])
    out = tmp_path / "leaderboards"
    written = write_boards(boards, out, ["md", "json", "html"])
    assert sorted(p.relative_to(out).as_posix() for p in written) == [
        "generated/cifar10c.json",
        "generated/cifar10c.md",
        "generated/worst_case_cifar100.json",
        "generated/worst_case_cifar100.md",
        "index.html",
    ]
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp files left
    assert json.loads((out / "generated" / "worst_case_cifar100.json").read_text()) == board_to_dict(
        boards[0]
    )
    with pytest.raises(ConfigError, match="unknown format"):
        write_boards(boards, out, ["pdf"])


# --------------------------------------------------------------------------------------------------
# metrics declared on scorers, and boards that name the dataset evaluated


def undeclared_columns(specs: list[BoardSpec], declared: dict) -> list[str]:
    """``board.column: scorer/metric`` for every column source that no registered scorer declares."""
    return [
        f"{spec.name}.{col.key}: {scorer}/{col.metric}"
        for spec in specs
        for col in spec.columns
        for scorer in col.scorers
        if col.metric not in declared.get(scorer, {})
    ]


def test_every_board_column_names_a_metric_its_scorer_declares() -> None:
    declared = declared_metrics()
    assert undeclared_columns(list(BOARDS.values()), declared) == []
    for spec in BOARDS.values():  # label, unit and direction come from the declaration
        for col in spec.columns:
            assert col.direction in ("lower", "higher") and col.label.endswith(f"({col.unit})")
    # the walk fails on a column naming a metric no scorer declares (the old board-side names)
    stale = BoardSpec("stale", "Stale", (15,), (Column("attacks", "robust_accuracy_pgd10"),), None)
    assert undeclared_columns([stale], declared) == [
        "stale.robust_accuracy_pgd10: attacks/robust_accuracy_pgd10"
    ]
    with pytest.raises(RegistryError, match="declares no metric 'robust_accuracy_pgd10'"):
        _ = stale.columns[0].label


def test_labels_units_and_directions_come_from_the_declarations() -> None:
    cost = BOARDS["search_cost"]
    latency = next(c for c in cost.columns if c.key == "latency_b1")
    assert (latency.scorer, latency.metric, latency.label) == ("cost", "latency_bs1_ms", "latency b=1 (ms)")
    params = next(c for c in cost.columns if c.key == "params")
    assert params.label == "params (M)" and params.direction == "lower"  # declared "params", shown in M
    pgd = next(c for c in BOARDS["attacks"].columns if c.key == "pgd10_cifar10")
    assert (pgd.metric, pgd.label, pgd.direction) == ("pgd10_acc", "PGD-10 acc. CIFAR-10 (%)", "higher")
    stl = BOARDS["stl10"].columns[0]
    assert (stl.scorer, stl.metric, stl.label) == ("stl10", "stl10_acc", "STL-10 accuracy (%)")
    overall = BOARDS["cifar_overall"].columns[0]
    assert (overall.key, overall.metric) == ("top1_error", "top1_error")  # the name compare takes


def write_digits(root: Path) -> None:
    """The main job's scores: ours-pdarts and pdarts searched and scored on digits, two seeds."""
    for searcher, shift in (("ours-pdarts", 0.0), ("pdarts", 1.0)):
        for seed in (1, 2):
            wc = {"worst_case_error": 30 + shift + seed, "average_case_error": 9.0, "all_error": 10 + seed}
            write_score(root, "digits", searcher, seed, "worst-case", wc)
            write_score(root, "digits", searcher, seed, "clean", {"top1_error": 5.0 + shift + seed})
            acc = {"clean_acc": 95.0, "pgd10_acc": 40.0 + seed}
            write_score(root, "digits", searcher, seed, "attacks", acc)


def test_a_digits_run_is_not_labelled_cifar(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_digits(root)
    boards = {b.name: b for b in build_boards(collect_runs(root))}
    wc = boards["worst_case_cifar100"]
    assert wc.title == "Worst-case subset of digits"
    md = to_markdown(wc)
    assert md.startswith("## Worst-case subset of digits (paper Table 1)")
    # the paper's numbers keep their dataset, and say which it is
    assert "### Reported in the paper (Table 1, Worst-case CIFAR-100)" in md
    attacks = to_markdown(boards["attacks"])
    header = md_row(attacks, "searcher")
    assert "PGD-10 acc. digits (%) ↑" in header and "p (Welch, PGD-10 acc. digits)" in header
    assert [h for h in header if "CIFAR" in h] == ["reported in the paper (PGD-10 acc. CIFAR-10)"]
    tests = [r for r in attacks.splitlines() if r.startswith("| ours-pdarts | pdarts | digits")]
    assert len(tests) == 2 and all("acc. digits (%)" in r and "CIFAR" not in r for r in tests)
    assert "PGD-10 acc. CIFAR-10 (%)" in attacks.split("### Reported in the paper")[1]
    assert boards["cifar_overall"].title == "Test error on digits"
    data = json.loads(to_json(boards["attacks"]))
    pgd = next(c for c in data["columns"] if c["key"] == "pgd10_cifar10")
    assert pgd["label"] == "PGD-10 acc. digits (%)" and pgd["metric"] == "pgd10_acc"
    # a board holding both names both
    write_worst_case(root, "ours-pdarts", OURS)
    mixed = build_board(collect_runs(root), "worst_case_cifar100")
    assert mixed.title == "Worst-case CIFAR-100; Worst-case subset of digits"
    row = next(r for r in mixed.rows if r.dataset == "cifar100")
    assert mixed.row_title(row) == "Worst-case CIFAR-100"
    # with the paper's dataset only, nothing changes
    only = build_board(collect_runs(tmp_path / "none"), "attacks")
    assert only.title == "Adversarial attacks"
    assert only.label(only.column("pgd10_cifar10")) == "PGD-10 acc. CIFAR-10 (%)"


def readme_scorer() -> str:
    """The scorer of the README's "Adding a scorer in one file", as written there."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Adding a scorer in one file", 1)[1]
    return section.split("```python", 1)[1].split("```", 1)[0]


@pytest.fixture
def new_scorer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The README's scorer as a module of its own, registered for this test only."""
    from wcbench.registry import SCORERS

    SCORERS.names()  # the built-in scorers first
    monkeypatch.setattr(SCORERS, "_items", dict(SCORERS._items))
    (tmp_path / "my_scorer.py").write_text(readme_scorer())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_scorer", raising=False)
    module = importlib.import_module("my_scorer")
    yield module.OverconfidenceScorer
    sys.modules.pop("my_scorer", None)


def test_a_new_scorer_reaches_a_board_and_compare_by_declaring(new_scorer, tmp_path: Path) -> None:
    name = new_scorer.name
    assert name not in {s for spec in BOARDS.values() for c in spec.columns for s in c.scorers}
    (metric,) = declared_metrics()[name]
    root = tmp_path / "runs"
    for searcher, errs in (("ours-pdarts", (1.0, 1.5, 1.25)), ("pdarts", (3.0, 3.5, 3.25))):
        for seed, err in zip((1, 2, 3), errs):
            write_score(root, "cifar10", searcher, seed, name, {metric: err})
    df = collect_runs(root)
    boards = build_boards(df)
    assert [b.name for b in boards] == [*BOARDS, OTHER_BOARD]  # shown because it has scores
    other = boards[-1]
    key = f"{name}.{metric}"
    assert [r.searcher for r in other.rows] == ["pdarts", "ours-pdarts"]
    assert other.rows[1].cells[key].mean == 1.25 and other.rows[1].cells[key].best  # lower is better
    (comp,) = other.comparisons
    assert comp.result.pvalue == stats.ttest_ind([1.0, 1.5, 1.25], [3.0, 3.5, 3.25], equal_var=False).pvalue
    md = to_markdown(other)
    assert md.startswith("## Other scorers (not in the paper)")
    assert "overconfidence: overconfident error (%) ↓" in md
    rep = compare_runs(df, "ours-pdarts", "pdarts", [metric])
    assert rep.metrics[0].direction == "lower" and "(better)" in rep.verdict(rep.metrics[0])
    assert check_benchmark(OTHER_BOARD).columns[-1].key == key


def test_the_readme_scorer_writes_what_it_declares(new_scorer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the README's scorer on a stub model: it writes exactly the metric it declares."""
    import torch

    x = torch.eye(4).repeat(2, 1)  # 8 "images" of 4 pixels; the model's logits are the pixels
    y = torch.tensor([0, 1, 2, 3, 1, 1, 1, 1])  # the last three are wrong, with confidence e/(e+3)=0.48
    identity = torch.nn.Linear(4, 4, bias=False)
    identity.weight.data = torch.eye(4)

    class Ctx:
        device, dataset = torch.device("cpu"), "digits"

        def network(self) -> torch.nn.Module:
            return identity

    monkeypatch.setattr(sys.modules["my_scorer"], "eval_loader", lambda ctx, split, bs: ([(x, y)], len(y)))
    scorer = new_scorer()
    strict = scorer.run(Ctx(), new_scorer.Params(threshold=0.9))
    loose = scorer.run(Ctx(), new_scorer.Params(threshold=0.1))
    assert set(strict.metrics) == {m.name for m in new_scorer.metrics}
    assert strict.metrics["overconfident_error"]["value"] == 0.0
    assert loose.metrics["overconfident_error"]["value"] == 100.0 * 3 / 8


def test_benchmark_names_in_the_readme_resolve_with_hyphens_or_underscores():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    named = re.findall(r"--benchmark ([A-Za-z0-9_-]+)", readme)
    assert named
    for name in named:
        assert check_benchmark(name).name == name.replace("-", "_")
    assert check_benchmark("worst-case-cifar100") is check_benchmark("worst_case_cifar100")
