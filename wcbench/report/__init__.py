"""Leaderboards: wcbench's own runs, per benchmark of the paper, with the paper's numbers beside them.

One module per job, each importing only those above it:

- :mod:`~wcbench.report.boards`: the paper's benchmarks as board specifications (columns name the
  (scorer, metric) pairs scorers declare, :mod:`wcbench.metrics`);
- :mod:`~wcbench.report.build`: boards computed from the run tree (statistics, the paper's numbers);
- :mod:`~wcbench.report.grids`: a board as grids of formatted text;
- :mod:`~wcbench.report.html`: the static HTML page with plots;
- :mod:`~wcbench.report.render`: Markdown, terminal, CSV and JSON, and writing the files;
- :mod:`~wcbench.report.compare`: ``wcbench compare``.
"""

from wcbench.report.boards import (
    BOARDS,
    OTHER_BOARD,
    BoardSpec,
    Column,
    board_names,
    check_benchmark,
    other_scorers_spec,
)
from wcbench.report.build import (
    Board,
    Cell,
    Comparison,
    PaperRow,
    PaperValue,
    Row,
    annotate_runs,
    build_board,
    build_boards,
    compare_cells,
)
from wcbench.report.compare import CompareReport, MetricComparison, compare_runs
from wcbench.report.grids import TEST_DESCRIPTIONS, format_p, format_value
from wcbench.report.html import to_html
from wcbench.report.render import (
    FORMATS,
    board_to_dict,
    to_csv,
    to_json,
    to_markdown,
    to_table,
    write_boards,
)

__all__ = [
    "BOARDS",
    "FORMATS",
    "OTHER_BOARD",
    "TEST_DESCRIPTIONS",
    "Board",
    "BoardSpec",
    "Cell",
    "Column",
    "CompareReport",
    "Comparison",
    "MetricComparison",
    "PaperRow",
    "PaperValue",
    "Row",
    "annotate_runs",
    "board_names",
    "board_to_dict",
    "build_board",
    "build_boards",
    "check_benchmark",
    "compare_cells",
    "compare_runs",
    "format_p",
    "format_value",
    "other_scorers_spec",
    "to_csv",
    "to_html",
    "to_json",
    "to_markdown",
    "to_table",
    "write_boards",
]
