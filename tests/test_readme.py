"""The README opens with the two set-up commands, and CI runs exactly its test command."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_the_main_job_and_the_test_command() -> None:
    main_job, tests = readme_commands()
    assert main_job.endswith("wcbench run --searcher ours-pdarts --preset quick")
    assert "pytest" in tests and "ruff format --check" in tests
    assert main_job.split(" && .venv/bin/wcbench")[0] == tests.split(" && .venv/bin/ruff")[0]  # same set-up


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci
