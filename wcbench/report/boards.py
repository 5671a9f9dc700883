"""The paper's benchmarks as board specifications: which scorer's metric each column reads.

A column names a (scorer, metric) pair that the scorer declares (:mod:`wcbench.metrics`); its label,
unit and direction come from that declaration, and the board adds only what is the benchmark's:
which eval datasets and search space feed it, and which of the paper's numbers sit beside it.
A scorer that no benchmark of the paper reads reaches the ``other_scorers`` board by declaring its
metrics (:func:`other_scorers_spec`), so a new scorer never edits :data:`BOARDS`.

Conventions (documented here because :mod:`wcbench.pipeline` writes the runs):

- **Search spaces.** A run searched in a RobustDARTS space lives under a searcher directory with a
  ``+<space>`` suffix (:func:`wcbench.runs.searcher_dir`): ``runs/cifar10/darts2nd+s1/seed-0``.
  Without a suffix the space is the manifest's ``config.space`` (or ``space``) when present, else
  ``darts``. Only the S1-S4 board (paper Table 4) and the search-cost board show runs outside the
  DARTS space.
- **Units.** Reproduced ``params`` counts (unit ``params``) and ``macs`` (unit ``MACs``) are shown in
  millions, search cost in GPU-days (``GPU-h`` / 24; CPU searches in their own CPU-days column), memory in MiB
  (the cost scorer's ``MB`` is read as MiB). The paper's Table 9 search costs are printed with a
  "GPU hours" caption but equal the GPU-day figures of Table 5 (``wcbench/leaderboards/paper/README.md``):
  they are shown as GPU-days with that note.
- **Datasets the paper does not use** (the embedded ``digits``, ``fashion-mnist``, ...) appear on the
  boards whose scorers they went through (clean, worst-case, corruption, attacks, cost) as sanity
  rows; no reported number is matched to them, and titles and labels name the dataset that was
  evaluated (``Worst-case subset of digits``), never the paper's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from wcbench.errors import ConfigError
from wcbench.metrics import MetricSpec, declared_metrics, metric_spec
from wcbench.runs import DEFAULT_SPACE

__all__ = [
    "BOARDS",
    "DISPLAY_UNITS",
    "OTHER_BOARD",
    "PAPER_DATASETS",
    "BoardSpec",
    "Column",
    "board_names",
    "check_benchmark",
    "norm_dataset",
    "other_scorers_spec",
]


def norm_dataset(name: str | None) -> str:
    """Dataset names compared loosely: ``CIFAR10-C``, ``cifar10_c`` and ``cifar10c`` are one name."""
    return re.sub(r"[-_\s]", "", str(name or "").lower())


#: Datasets of the paper. A column's eval filter is strict for these; other datasets (the embedded
#: ones) pass where the column accepts them (``Column.accept_other``).
PAPER_DATASETS = frozenset(
    norm_dataset(d)
    for d in (
        "cifar10",
        "cifar100",
        "cifar10-c",
        "cifar100-c",
        "imagenet",
        "imagenet-c",
        "imagenet-a",
        "imagenet-r",
        "imagenet-sketch",
        "stl10",
    )
)

#: The unit a board shows for a unit scorers write (values are converted, see ``build``).
DISPLAY_UNITS = {"params": "M", "MACs": "M", "GPU-h": "GPU-days", "CPU-h": "CPU-days", "MB": "MiB"}


def _split_datasets(eval_datasets: Iterable[str]) -> tuple[bool, list[str]]:
    """(any of the paper's datasets?, the other datasets, sorted)."""
    names = {str(e) for e in eval_datasets}
    paper = any(norm_dataset(e) in PAPER_DATASETS for e in names)
    return paper, sorted(e for e in names if norm_dataset(e) not in PAPER_DATASETS)


# --------------------------------------------------------------------------------------------------
# columns and boards


@dataclass(frozen=True)
class Column:
    """One column of a board: a metric a scorer declares, which scores feed it, the paper's match.

    ``title`` formats the label from the declaration's (``{label}``) and the dataset the column shows
    (``{dataset}``: ``dataset`` for the paper's runs, the evaluated dataset for others).
    """

    scorer: str
    metric: str
    key: str = ""  # the column's name in the board's files; default: the metric
    title: str = "{label}"
    dataset: str | None = None  # the paper's dataset that ``{dataset}`` names
    also: tuple[str, ...] = ()  # more scorers writing the metric, after ``scorer`` (search_cost)
    eval_datasets: tuple[str, ...] | None = None  # the score's dataset; None: any
    accept_other: bool = False  # datasets the paper does not use pass the eval filter (sanity runs)
    space: str | None = None  # only runs in this search space (Table 4's S1-S4 columns)
    paper_metric: str | None = None
    paper_tables: tuple[int, ...] = ()  # in order of preference for the "reported" value of a row
    paper_eval: tuple[str, ...] | None = None  # the paper row's eval_dataset; None: any
    paper_space: str | None = None  # Table 4: the space parsed from the paper's row label

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.metric)

    @property
    def scorers(self) -> tuple[str, ...]:
        """The scorers whose ``metric`` feeds the column, in order of preference."""
        return (self.scorer, *self.also)

    @property
    def declaration(self) -> MetricSpec:
        """What ``scorer`` declares about ``metric`` (a :class:`RegistryError` when it declares nothing)."""
        return metric_spec(self.scorer, self.metric)

    @property
    def direction(self) -> str:
        return self.declaration.direction

    @property
    def unit(self) -> str:
        """The unit shown: the declared one, or its display unit (``params`` -> ``M``)."""
        unit = self.declaration.unit
        return DISPLAY_UNITS.get(unit, unit)

    @property
    def arrow(self) -> str:
        return "↓" if self.direction == "lower" else "↑"

    def text_for(self, eval_datasets: Iterable[str] = ()) -> str:
        """The label without its unit, naming the datasets of ``eval_datasets`` the paper does not use."""
        shown = self.dataset or ""
        if self.dataset is not None:
            paper, others = _split_datasets(eval_datasets)
            if others:
                shown = "/".join(([self.dataset] if paper else []) + others)
        return self.title.format(label=self.declaration.label, dataset=shown).strip()

    def label_for(self, eval_datasets: Iterable[str] = ()) -> str:
        """:meth:`text_for` with the unit: ``PGD-10 acc. digits (%)``."""
        return f"{self.text_for(eval_datasets)} ({self.unit})"

    @property
    def text(self) -> str:
        """The label of the paper's runs, without the unit."""
        return self.text_for()

    @property
    def label(self) -> str:
        """The label of the paper's runs: ``PGD-10 acc. CIFAR-10 (%)``."""
        return self.label_for()

    def accepts_eval(self, eval_dataset: str) -> bool:
        if self.eval_datasets is None:
            return True
        e = norm_dataset(eval_dataset)
        if e in {norm_dataset(d) for d in self.eval_datasets}:
            return True
        return self.accept_other and e not in PAPER_DATASETS


@dataclass(frozen=True)
class BoardSpec:
    """A benchmark of the paper: title, paper tables, columns, and the paper-CSV key."""

    name: str
    title: str
    tables: tuple[int, ...]
    columns: tuple[Column, ...]
    paper_benchmark: str | None  # key of wcbench.paper_results.BENCHMARKS; None: not in the paper
    description: str = ""
    primary: int | None = 0  # the column whose test is shown in each row; None: tests table only
    spaces: tuple[str, ...] | None = (DEFAULT_SPACE,)  # row spaces; None: any (rows keyed by space)
    other_title: str | None = None  # the title for runs on datasets the paper does not use ({datasets})

    @property
    def table_ref(self) -> str:
        t = self.tables
        if not t:
            return ""
        return f"Table {t[0]}" if len(t) == 1 else "Tables " + ", ".join(str(x) for x in t)

    def title_for(self, eval_datasets: Iterable[str] = ()) -> str:
        """The title naming the datasets evaluated: the paper's title for the paper's datasets,
        ``other_title`` for the others (both, joined, when a board holds both)."""
        paper, others = _split_datasets(eval_datasets)
        if self.other_title is None or not others:
            return self.title
        other = self.other_title.format(datasets=" and ".join(others))
        return f"{self.title}; {other}" if paper else other

    def heading_for(self, eval_datasets: Iterable[str] = ()) -> str:
        """``Worst-case CIFAR-100 (paper Table 1)``; a board outside the paper says so."""
        ref = f"paper {self.table_ref}" if self.tables else "not in the paper"
        return f"{self.title_for(eval_datasets)} ({ref})"


_CLEAN = "clean"
_CIFAR = ("cifar10", "cifar100")


def _attack(name: str, ev: str, table: int, paper: str | None) -> Column:
    """An attacks-scorer column (``<name>_acc``) on CIFAR-10 (Table 15) or ImageNet (Table 16)."""
    return Column(
        "attacks",
        f"{name}_acc",
        key=f"{name}_{ev}",
        title="{label} {dataset}",
        dataset="CIFAR-10" if ev == "cifar10" else "ImageNet",
        eval_datasets=(ev,),
        accept_other=ev == "cifar10",
        paper_metric=paper,
        paper_tables=(table,) if paper else (),
        paper_eval=(ev,),
    )


# fmt: off
#: The boards, one per benchmark of the paper, in the paper's order.
BOARDS: dict[str, BoardSpec] = {b.name: b for b in (
    BoardSpec(
        "worst_case_cifar100", "Worst-case CIFAR-100", (1,),
        (
            Column("worst-case", "worst_case_error", key="worst_case", eval_datasets=("cifar100",),
                   accept_other=True, paper_metric="worst_case_error", paper_tables=(1,)),
            Column("worst-case", "average_case_error", key="average_case", eval_datasets=("cifar100",),
                   accept_other=True, paper_metric="average_case_error", paper_tables=(1,)),
            Column("worst-case", "all_error", key="all", eval_datasets=("cifar100",), accept_other=True,
                   paper_metric="test_error", paper_tables=(1,)),
        ),
        "worst_case_cifar100",
        "Error on the 2,000 worst-case, the 8,000 other and all 10,000 CIFAR-100 test images.",
        other_title="Worst-case subset of {datasets}",
    ),
    BoardSpec(
        "cifar10c", "CIFAR-10-C", (2,),
        (
            Column("cifar-c", "mean_corruption_error", key="corruption_error",
                   eval_datasets=("cifar10-c", "cifar10"), accept_other=True, paper_metric="corruption_error",
                   paper_tables=(2,)),
        ),
        "cifar10c",
        "Average error over the 15 corruptions x 5 severities of CIFAR-10-C; searched on CIFAR-10.",
        other_title="{datasets}",
    ),
    BoardSpec(
        "imagenet_c", "ImageNet-C", (3,),
        (
            Column("imagenet-c", "mce", eval_datasets=("imagenet-c", "imagenet"), paper_metric="mce",
                   paper_tables=(3,)),
            Column("imagenet-c", "mean_error", eval_datasets=("imagenet-c", "imagenet")),
        ),
        "imagenet_c",
        "Mean corruption error (AlexNet-normalised) on ImageNet-C; searched on ImageNet.",
    ),
    BoardSpec(
        "search_spaces_s1_s4", "RobustDARTS spaces S1-S4", (4,),
        tuple(
            Column(_CLEAN, "top1_error", key=f"s{i}", title=f"S{i} {{label}}", eval_datasets=_CIFAR,
                   accept_other=True, space=f"s{i}", paper_metric="test_error", paper_tables=(4,),
                   paper_space=f"s{i}")
            for i in range(1, 5)
        ),
        "search_spaces_s1_s4",
        "Test error of architectures searched in the RobustDARTS spaces S1-S4 (performance collapse). "
        "Runs of space s<k> live in searcher directories with a +s<k> suffix (darts2nd+s1).",
        primary=None,
        spaces=None,
    ),
    BoardSpec(
        "cifar_overall", "CIFAR-10 and CIFAR-100", (5, 18, 19),
        (
            Column(_CLEAN, "top1_error", eval_datasets=_CIFAR, accept_other=True, paper_metric="test_error",
                   paper_tables=(5, 18, 19)),
            Column("cost", "params", paper_metric="params", paper_tables=(5, 18, 19)),
        ),
        "cifar_overall",
        "Test error on the whole test set and parameters of the evaluation network.",
        other_title="Test error on {datasets}",
    ),
    BoardSpec(
        "imagenet", "ImageNet", (6, 23),
        (
            Column(_CLEAN, "top1_error", eval_datasets=("imagenet",), paper_metric="top1_error",
                   paper_tables=(6, 23)),
            Column(_CLEAN, "top5_error", eval_datasets=("imagenet",), paper_metric="top5_error",
                   paper_tables=(6, 23)),
            Column("cost", "params", eval_datasets=("imagenet",), paper_metric="params", paper_tables=(23,)),
            Column("cost", "macs", eval_datasets=("imagenet",), paper_metric="flops", paper_tables=(23,)),
        ),
        "imagenet",
        "Top-1/top-5 error of the mobile-setting network on ImageNet; the paper's FLOPs column is "
        "multiply-adds from unstated counters.",
    ),
    BoardSpec(
        "imagenet_a_r_sketch", "ImageNet-A, ImageNet-R, ImageNet-Sketch", (10, 11, 12),
        (
            Column("imagenet-a", "top1_accuracy", key="imagenet_a", title="ImageNet-A {label}",
                   eval_datasets=("imagenet-a",), paper_metric="accuracy", paper_tables=(10,),
                   paper_eval=("imagenet-a",)),
            Column("imagenet-r", "top1_error", key="imagenet_r", title="ImageNet-R {label}",
                   eval_datasets=("imagenet-r",), paper_metric="top1_error", paper_tables=(11,),
                   paper_eval=("imagenet-r",)),
            Column("imagenet-sketch", "top1_accuracy", key="imagenet_sketch", title="ImageNet-Sketch {label}",
                   eval_datasets=("imagenet-sketch",), paper_metric="accuracy", paper_tables=(12,),
                   paper_eval=("imagenet-sketch",)),
        ),
        "imagenet_a_r_sketch",
        "ImageNet-A and -Sketch as accuracy, ImageNet-R as top-1 error, as the paper reports them.",
    ),
    BoardSpec(
        "attacks", "Adversarial attacks", (15, 16),
        (
            _attack("clean", "cifar10", 15, None),
            _attack("pgd10", "cifar10", 15, "pgd10_accuracy"),
            _attack("pgd20", "cifar10", 15, "pgd20_accuracy"),
            _attack("pgd100", "cifar10", 15, "pgd100_accuracy"),
            _attack("fgsm", "cifar10", 15, "fgsm_accuracy"),
            _attack("cw", "cifar10", 15, "cw_accuracy"),
            _attack("pgd100", "imagenet", 16, "pgd100_accuracy"),
            _attack("fgsm", "imagenet", 16, "fgsm_accuracy"),
            _attack("cw", "imagenet", 16, "cw_accuracy"),
        ),
        "attacks",
        "Accuracy under PGD(10/20/100), FGSM and C&W on CIFAR-10 (Table 15) and ImageNet (Table 16); "
        "the attack parameters are in each score file.",
        primary=1,
    ),
    BoardSpec(
        "stl10", "STL-10 transfer", (17,),
        (
            Column("stl10", "stl10_acc", key="accuracy", eval_datasets=("stl10",), paper_metric="accuracy",
                   paper_tables=(17,), paper_eval=("stl10",)),
        ),
        "stl10",
        "Architectures searched on CIFAR-10/100, retrained from scratch on STL-10's train split.",
    ),
    BoardSpec(
        "search_cost", "Search cost and memory", (9,),
        (
            Column("cost", "search_gpu_hours", key="search_cost", also=("search_cost",),
                   paper_metric="search_cost", paper_tables=(9, 5, 18, 19, 23)),
            Column("cost", "search_cpu_hours", key="search_cost_cpu", also=("search_cost",)),
            Column("cost", "peak_train_memory_mb", key="memory", paper_metric="memory", paper_tables=(9,)),
            Column("cost", "params", paper_metric="params", paper_tables=(9, 5, 18, 19, 23)),
            Column("cost", "latency_bs1_ms", key="latency_b1"),
            Column("cost", "latency_bs256_ms", key="latency_b256"),
        ),
        "search_cost",
        "Search cost (GPU-days: the paper's Table 9 caption says GPU hours, but its numbers equal the "
        "GPU-day figures of Table 5) and peak training memory; searches on CPU have their own column, in "
        "CPU-days: a column never mixes devices.",
        spaces=None,
    ),
)}
# fmt: on

#: The board of the scorers no benchmark of the paper reads (built from their declarations).
OTHER_BOARD = "other_scorers"


def other_scorers_spec(declared: Mapping[str, Mapping[str, MetricSpec]] | None = None) -> BoardSpec:
    """The ``other_scorers`` board: one column per declared metric of every registered scorer that no
    board of :data:`BOARDS` reads (``autoattack``, and any new scorer), in scorer order."""
    table = declared_metrics() if declared is None else declared
    used = {s for spec in BOARDS.values() for c in spec.columns for s in c.scorers}
    columns = tuple(
        Column(scorer, name, key=f"{scorer}.{name}", title=f"{scorer}: {{label}}")
        for scorer in sorted(table)
        if scorer not in used
        for name in table[scorer]
    )
    return BoardSpec(
        OTHER_BOARD,
        "Other scorers",
        (),
        columns,
        None,
        "Metrics of the registered scorers that no benchmark of the paper reads; a scorer reaches this "
        "board by declaring its metrics. No number of the paper is matched to them.",
        primary=None,
        spaces=None,
    )


def board_names() -> list[str]:
    """Every board: the paper's (:data:`BOARDS`, in the paper's order), then ``other_scorers``."""
    return [*BOARDS, OTHER_BOARD]


def check_benchmark(name: str) -> BoardSpec:
    """The spec of board ``name`` (``worst-case-cifar100`` and ``worst_case_cifar100`` alike); an unknown
    name raises :class:`ConfigError` listing the known ones."""
    name = name.replace("-", "_")
    if name in BOARDS:
        return BOARDS[name]
    if name == OTHER_BOARD:
        return other_scorers_spec()
    import difflib

    close = difflib.get_close_matches(name, board_names(), n=1)
    maybe = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"unknown benchmark {name!r}{maybe}; known: {', '.join(board_names())}")
