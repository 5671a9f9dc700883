"""The paper's reported numbers (Tables 1-23) as CSV: well-formed, and faithful to the paper's text."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest

from wcbench.errors import ConfigError
from wcbench.paper_results import BENCHMARKS, COLUMNS, load_paper_results, paper_results_dir

PAPER_CANDIDATES = [
    Path(__file__).resolve().parents[1] / "paper" / "worst-case-validation-nas.txt",
    Path("/work/shared/paper/worst-case-validation-nas.txt"),
]
PAPER = next((p for p in PAPER_CANDIDATES if p.is_file()), None)
needs_paper = pytest.mark.skipif(PAPER is None, reason="the paper's text is not on this machine")

SEARCHER_RE = re.compile(r"^((ours|spcl|dihcl)-)?(darts1st|darts2nd|pdarts|pcdarts|prdarts)$")
UNITS = {"", "%", "M", "GPU-days", "GPU-h", "MiB"}
DATASETS = {"", "cifar10", "cifar100", "imagenet"}
EVAL_DATASETS = {
    "cifar10", "cifar100", "cifar10-c", "imagenet", "imagenet-c", "imagenet-a", "imagenet-r",
    "imagenet-sketch", "stl10", "",
}  # fmt: skip


def raw_rows() -> list[dict[str, str]]:
    """Every CSV row as printed text, with the benchmark it came from."""
    rows = []
    for name, bench in BENCHMARKS.items():
        with open(paper_results_dir() / bench.csv, encoding="utf-8", newline="") as fh:
            rows += [dict(r, benchmark=name) for r in csv.DictReader(fh)]
    return rows


def cell(df, table: int, row: str, metric: str, **kw):
    sel = (df.table == table) & (df.row == row) & (df.metric == metric)
    for k, v in kw.items():
        sel &= df[k] == v
    hits = df[sel]
    assert len(hits) == 1, (table, row, metric, kw, len(hits))
    return hits.iloc[0]


# ---------------------------------------------------------------- shape


def test_every_benchmark_csv_exists_with_the_tidy_columns() -> None:
    directory = paper_results_dir()
    assert {p.name for p in directory.glob("*.csv")} == {b.csv for b in BENCHMARKS.values()}
    for bench in BENCHMARKS.values():
        with open(directory / bench.csv, encoding="utf-8", newline="") as fh:
            assert next(csv.reader(fh)) == COLUMNS, bench.csv


def test_values_are_numeric_and_labels_are_from_the_vocabulary() -> None:
    for r in raw_rows():
        float(r["value"])
        if r["std"]:
            assert float(r["std"]) >= 0
        assert r["unit"] in UNITS, r
        assert r["searcher"] == "" or SEARCHER_RE.match(r["searcher"]), r
        assert r["dataset"] in DATASETS, r
        assert r["eval_dataset"] in EVAL_DATASETS, r
        assert int(r["table"]) in BENCHMARKS[r["benchmark"]].tables, r
        assert r["row"] and r["method"] and r["metric"], r


def test_all_results_tables_are_covered() -> None:
    tables = {int(r["table"]) for r in raw_rows()}
    assert tables == set(range(1, 24)) - {24}  # Tables 1-23; 24-36 are hyperparameters


def test_each_printed_cell_appears_once() -> None:
    df = load_paper_results()
    key = ["table", "row", "method", "dataset", "metric"]
    assert not df.duplicated(key).any(), df[df.duplicated(key, keep=False)]


def test_load_paper_results_types_and_filter() -> None:
    df = load_paper_results()
    assert list(df.columns) == ["benchmark", *COLUMNS]
    assert df["value"].dtype == "float64" and df["std"].dtype == "float64" and df["table"].dtype == "int64"
    one = load_paper_results("stl10")
    assert set(one.benchmark) == {"stl10"} and set(one.table) == {17} and len(one) == 6
    assert sum(len(load_paper_results(b)) for b in BENCHMARKS) == len(df)


def test_unknown_benchmark_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="did you mean 'imagenet_c'"):
        load_paper_results("imagenet-c")


def test_cell_counts_match_the_printed_tables() -> None:
    df = load_paper_results()
    counts = df.groupby("table").size().to_dict()
    # rows x value columns, minus cells printed as "-"
    assert counts[1] == 16 * 3 and counts[2] == 16 and counts[3] == 4 and counts[4] == 9 * 7
    assert counts[5] == 35 * 3 - 5 and counts[6] == 32 * 2 and counts[9] == 12 * 5
    assert counts[23] == 30 * 5 - 10 and counts[21] == counts[22] == 12


# ---------------------------------------------------------------- hard-coded spot checks


@pytest.mark.parametrize(
    ("table", "row", "metric", "kw", "value", "std"),
    [
        (1, "Ours-darts2nd (ours)", "worst_case_error", {}, 27.01, 0.17),
        (1, "Darts2nd", "test_error", {}, 20.58, 0.44),
        (1, "Ours-prdarts (ours)", "average_case_error", {}, 14.82, 0.10),
        (2, "Ours-Pdarts", "corruption_error", {}, 18.9, 0.9),
        (3, "Ours-Pcdarts", "mce", {}, 75.4, None),
        (4, "S3", "test_error", {"method": "Ours", "dataset": "cifar100"}, 19.92, None),
        (4, "S1‡", "test_error", {"method": "SDART"}, 2.73, None),
        (5, "Ours-prdarts (ours)", "test_error", {}, 2.31, 0.02),
        (5, "*AGNAS (Sun et al., 2022)", "test_error", {}, 2.53, 0.003),
        (5, "*AmoebaNet (Real et al., 2019)", "search_cost", {}, 3150, None),
        (6, "Ours-pcdarts-imagenet (ours)", "top5_error", {}, 6.7, None),
        (9, "NCR-prdarts (ours)", "memory", {}, 20188, None),
        (9, "CR-pdarts (ours)", "test_error", {"dataset": "cifar10"}, 2.48, 0.04),
        (11, "Ours-Pcdarts", "top1_error", {}, 59.5, None),
        (14, "Scratch + Darts2nd", "test_error", {"dataset": "cifar100"}, 18.59, 0.11),
        (15, "Ours-pcdarts", "cw_accuracy", {}, 51.27, 0.09),
        (16, "PC-DARTS-ADV (Chen & Hsieh, 2020b)", "fgsm_accuracy", {}, 48.25, 0.08),
        (17, "Ours-Pcdarts-Cifar10", "accuracy", {}, 90.4, None),
        (18, "ΔDARTS⁺ (Liang et al., 2019)", "test_error", {}, 17.11, 0.43),
        (19, "Ours-DARTS1st", "params", {}, 2.6, None),
        (20, "Ours", "fid", {}, 6.01, 0.09),
        (21, "Ours-pdarts vs Pdarts", "pvalue", {}, 1.46e-6, None),
        (22, "Ours-prdarts vs Prdarts", "pvalue", {}, 7.81e-3, None),
        (23, "‡Ours-PCDARTS-ImageNet", "flops", {}, 569, None),
    ],
)
def test_spot_check_cells(table, row, metric, kw, value, std) -> None:
    c = cell(load_paper_results(), table, row, metric, **kw)
    assert c["value"] == value
    assert math.isnan(c["std"]) if std is None else c["std"] == std, c


def test_searcher_mapping() -> None:
    df = load_paper_results()
    assert cell(df, 5, "*Darts2nd (Liu et al., 2019)", "test_error").searcher == "darts2nd"
    assert cell(df, 5, "SPCL-pcdarts (Jiang et al., 2015)", "test_error").searcher == "spcl-pcdarts"
    assert cell(df, 5, "*ResNet (He et al., 2016a)", "test_error").searcher == ""
    assert cell(df, 19, "*DARTS-1st (Liu et al., 2019)", "test_error").searcher == "darts1st"
    assert cell(df, 18, "Ours-DARTS⁺", "test_error").searcher == ""  # DARTS+ is not in wcbench
    assert cell(df, 9, "NCR-darts2nd (ours)", "params").searcher == "ours-darts2nd"
    r = cell(df, 23, "*P-DARTS (CIFAR100) (Chen et al., 2019)", "top1_error")
    assert (r.searcher, r.dataset, r.eval_dataset) == ("pdarts", "cifar100", "imagenet")
    r = cell(df, 17, "Darts2nd-Cifar100", "accuracy")
    assert (r.searcher, r.dataset, r.eval_dataset) == ("darts2nd", "cifar100", "stl10")


def test_known_inconsistencies_are_flagged() -> None:
    df = load_paper_results()
    assert "swapped" in cell(df, 1, "Pdarts", "test_error").note
    assert "GPU hours" in cell(df, 9, "Darts2nd", "search_cost").note
    assert cell(df, 9, "Darts2nd", "search_cost").unit == "GPU-h"
    assert "caption lost" in cell(df, 22, "Ours-pdarts vs Pdarts", "pvalue").note


# ---------------------------------------------------------------- against the paper's text


def _normalise(line: str) -> str:
    t = re.sub(r"\\textbf\{([^}]*)\}", r"\1", line)
    t = t.replace("$", "").replace("{\\pm}", "±").replace("\\pm\\!", "±").replace("\\pm", "±")
    t = t.replace("\\beta", "β").replace("\\times", "×").replace("\\Delta", "Δ")
    t = re.sub(r"\s*±\s*", "±", t)
    return re.sub(r"\s+", " ", t)


def _key(text: str) -> str:
    return re.sub(r"[\s*†‡Δ⁻⁺\[\]–{}^]", "", text).lower()


@pytest.fixture(scope="module")
def paper_lines() -> list[str]:
    assert PAPER is not None
    return PAPER.read_text(encoding="utf-8").splitlines()


def _window(lines: list[str], table: int, span: int = 45) -> list[str]:
    anchor = 21 if table == 22 else table  # Table 22's caption was lost; it follows Table 21
    idx = [i for i, ln in enumerate(lines) if ln.startswith(f"Table {anchor}:")]
    assert idx, table
    return [_normalise(lines[j]) for i in idx for j in range(max(0, i - span), min(len(lines), i + span))]


@needs_paper
def test_every_cell_is_printed_near_its_table_beside_its_row(paper_lines) -> None:
    missing = []
    for r in raw_rows():
        table = int(r["table"])
        value = re.escape(r["value"]) + (r"±" + re.escape(r["std"]) if r["std"] else "")
        number = re.compile(rf"(?<![\d.]){value}(?![\d])")
        keys = [r["row"]] if table == 4 else r["row"].split(" vs ") if table in (21, 22) else [r["method"]]
        keys = [_key(k) for k in keys]
        if not any(
            number.search(ln) and all(k in _key(ln) for k in keys) for ln in _window(paper_lines, table)
        ):
            missing.append((table, r["row"], r["metric"], r["value"], r["std"]))
    assert not missing, missing[:10]


@needs_paper
def test_table4_columns_line_up_with_the_printed_header(paper_lines) -> None:
    header = next(i for i, ln in enumerate(paper_lines) if ln.startswith("Data\tSpace\tDARTS"))
    methods = paper_lines[header].split("\t")[2:]
    body = [ln.split("\t") for ln in paper_lines[header + 1 : header + 10]]
    df = load_paper_results("search_spaces_s1_s4")
    for i, parts in enumerate(body):
        dataset = "cifar10" if i < 5 else "cifar100"
        space = parts[1].replace(" ", "").replace("[†]", "†").replace("[‡]", "‡")
        for method, printed in zip(methods, parts[2:], strict=True):
            assert cell(df, 4, space, "test_error", method=method, dataset=dataset)["value"] == float(printed)


@needs_paper
def test_paper_prints_the_spot_checked_strings(paper_lines) -> None:
    text = "\n".join(paper_lines)
    printed_strings = [
        "27.01 ±0.17",
        "$2.53 {\\pm}.003$",
        "CR-prdarts (ours)\t16.13 ± 0.02",
        "Ours-prdarts\tPrdarts\t6.58e-3",
        "‡Ours-PCDARTS-ImageNet\t23.5\t6.7\t5.2\t3.7\t569",
        "Ours-Pcdarts-Cifar10\t90.4",
    ]
    for printed in printed_strings:
        assert printed in text, printed
