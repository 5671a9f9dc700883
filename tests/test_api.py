"""The Python API (issue #12, item 3): `import wcbench` exposes search, retrain, score, run,
collect_runs and board; the README's notebook session runs as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import wcbench
from wcbench.errors import ConfigError, RegistryError

ROOT = Path(__file__).resolve().parents[1]


def readme_session() -> str:
    """The first ```python block of the README's "Python API" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_api_is_typed_documented_and_lazy() -> None:
    import inspect

    for name in wcbench.API:
        fn = getattr(wcbench, name)
        assert fn.__doc__ and fn.__module__ == "wcbench.api", name
        sig = inspect.signature(fn)
        assert sig.return_annotation is not inspect.Signature.empty, name
        assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values()), name
    assert name in dir(wcbench)
    with pytest.raises(AttributeError):
        wcbench.no_such_function  # noqa: B018
    code = "import sys, wcbench; print('torch' in sys.modules, 'wcbench.api' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_readme_session_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(readme_session(), "README.md", "exec"), namespace)  # our own README, not user input
    printed = capsys.readouterr()

    runs = namespace["runs"]
    assert isinstance(runs, pd.DataFrame)
    tidy = ["dataset", "searcher", "space", "seed", "scorer", "metric", "value", "unit"]
    assert list(runs.columns[:8]) == tidy
    clean = runs[(runs.scorer == "clean") & (runs.metric == "top1_error")]
    assert list(clean.seed) == [1] and set(clean.searcher) == {"darts1st"} and set(clean.space) == {"darts"}
    assert clean.value.between(0, 100).all() and set(clean.unit) == {"%"}

    board = namespace["board"]
    assert isinstance(board, pd.DataFrame) and {"runs", "paper"} <= set(board.source)
    mine = board[(board.source == "runs") & (board.searcher == "darts1st")]
    assert len(mine) and (mine.n == 1).all()
    assert mine["mean"].iloc[0] == pytest.approx(clean.value.mean())

    scores = namespace["scores"]
    assert isinstance(scores, pd.DataFrame) and set(scores.scorer) == {"cost"}
    assert "params" in set(scores.metric) and scores.set_index("metric").value["params"] > 0
    assert (tmp_path / "runs" / "digits" / "darts1st" / "seed-1" / "scores" / "cost.json").is_file()
    assert "top1_error" in printed.out

    # off a terminal each epoch of each stage is one plain line on stderr (item 4)
    lines = [line for line in printed.err.splitlines() if " epoch " in line]
    assert any(line.startswith("search darts1st epoch 1/1 loss ") for line in lines), printed.err
    assert sum(line.startswith("retrain digits epoch 1/1 loss ") for line in lines) == 1, printed.err
    assert "━" not in printed.err  # no bar drawn off a terminal


def test_search_returns_the_genotype_it_wrote(tmp_path: Path) -> None:
    from wcbench.genotype import Genotype

    tiny = {"epochs": 1, "max_steps_per_epoch": 2, "max_examples": 64}
    g = wcbench.search("darts1st", tmp_path / "s", preset="smoke", settings=tiny, progress=False)
    assert isinstance(g, Genotype)
    assert Genotype.from_json((tmp_path / "s" / "genotype.json").read_text()) == g


def test_empty_runs_give_empty_tables_with_the_columns(tmp_path: Path) -> None:
    from wcbench.api import BOARD_COLUMNS, RUN_COLUMNS

    assert list(wcbench.collect_runs(tmp_path).columns) == RUN_COLUMNS
    board = wcbench.board("worst_case_cifar100", tmp_path)
    assert list(board.columns) == BOARD_COLUMNS and set(board.source) == {"paper"}
    darts = board[(board.searcher == "darts2nd") & (board.column == board.column.iloc[0])]
    assert darts["mean"].iloc[0] == pytest.approx(30.07)  # Table 1 as printed


def test_bad_input_is_a_one_line_wcbench_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="did you mean"):
        wcbench.score(tmp_path, "cleen")
    with pytest.raises(ConfigError, match="not a retrain directory"):
        wcbench.score(tmp_path / "missing", "clean")
    with pytest.raises(ConfigError, match="unknown benchmark"):
        wcbench.board("worst_case_cifar", tmp_path)
    with pytest.raises(ConfigError, match="unknown logger 'tensorbored'"):
        wcbench.run("darts1st", preset="smoke", runs_dir=tmp_path, log="tensorbored")


def test_a_measuring_process_that_dies_is_an_error_not_a_wait() -> None:
    # the cost scorer measures CPU memory in a spawned process; a script without a __main__ guard
    # makes that process die at start-up, which must not leave the caller waiting for 30 minutes
    import queue
    import time
    from types import SimpleNamespace

    from evaluators.cost import _child_result

    class Silent:
        def get(self, timeout: float) -> None:
            raise queue.Empty

    dead = SimpleNamespace(is_alive=lambda: False, exitcode=1)
    status, message = _child_result(dead, Silent(), deadline=time.monotonic() + 1800)
    assert status == "error" and "exited with code 1" in message and "__main__" in message
