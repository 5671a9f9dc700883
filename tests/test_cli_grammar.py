"""One CLI grammar: a flag means one thing in every command, and the README's table says what.

Every option of every command is compared with the one meaning in ``wcbench.cli.options.FLAGS`` and
with the README's flag table; declarations of one flag must agree on what it takes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup, TyperOption

from wcbench.cli import _load_commands, main
from wcbench.cli.app import app
from wcbench.cli.options import FLAGS, SEED_DEFAULT

ROOT = Path(__file__).resolve().parents[1]


def declarations() -> dict[str, list[tuple[str, TyperOption]]]:
    """flag -> [(command path, option)] for every visible option of every command and group."""
    _load_commands()
    found: dict[str, list[tuple[str, TyperOption]]] = defaultdict(list)

    def walk(cmd: object, path: list[str]) -> None:
        for p in getattr(cmd, "params", []):
            if isinstance(p, TyperOption) and not p.hidden:
                flag = next(o for o in p.opts if o.startswith("--"))
                found[flag].append((" ".join(path) or "wcbench", p))
        if isinstance(cmd, TyperGroup):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def commands() -> list[list[str]]:
    return sorted({tuple(c.split()) for decls in declarations().values() for c, _ in decls if c != "wcbench"})


def readme_flags() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## One grammar: every flag", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(--[a-z0-9-]+)` \| (.+) \|$", section, flags=re.M)
    return [(flag, meaning.replace("\\|", "|")) for flag, meaning in rows]


def test_every_option_is_declared_with_its_one_meaning() -> None:
    for flag, decls in declarations().items():
        assert flag in FLAGS, f"{flag} ({decls[0][0]}) has no meaning in wcbench.cli.options.FLAGS"
        for command, p in decls:
            assert (p.help or "").startswith(FLAGS[flag]), (command, flag, p.help)


def test_the_readme_table_lists_every_flag_once_with_its_meaning() -> None:
    rows = readme_flags()
    flags = [f for f, _ in rows]
    assert len(flags) == len(set(flags)), "a flag is listed twice"
    assert set(flags) == set(declarations()), set(flags) ^ set(declarations())
    for flag, meaning in rows:
        assert meaning == FLAGS[flag], flag


def kind(p: TyperOption) -> tuple[bool, bool, str]:
    """What an option takes: a switch or a value, once or repeatedly, and of which type."""
    return p.is_flag, p.multiple, p.bare_type()


def test_a_flag_takes_the_same_kind_of_value_everywhere() -> None:
    for flag, decls in declarations().items():
        assert len({kind(p) for _, p in decls}) == 1, (flag, {c: kind(p) for c, p in decls})
    for command, p in declarations()["--out"]:
        info = p.type_descriptor.parameter_info
        assert info.file_okay is False and info.dir_okay, f"{command} --out must be a folder"
    for command, p in declarations()["--seed"]:
        assert p.default in (None, SEED_DEFAULT), (command, p.default)
    ((_, seeds),) = declarations()["--seeds"]
    assert seeds.default == str(SEED_DEFAULT)  # `run --seeds` and `search --seed` start at the same seed


@pytest.mark.parametrize("argv", [[], *commands()], ids=lambda a: " ".join(a) or "wcbench")
def test_help_shows_no_value_for_switches(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--help"]) == 0
    text = capsys.readouterr().out
    assert "--help" in text and "<bool>" not in text


def test_list_shows_plain_text_not_rest_markup(capsys: pytest.CaptureFixture[str]) -> None:
    for kind in ("datasets", "scorers", "algorithms", "strategies"):
        assert main(["list", kind, "--json"]) == 0
        text = capsys.readouterr().out
        assert "``" not in text and ":func:" not in text and ":class:" not in text, kind


def test_the_old_scorer_flag_still_works_and_warns(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["score", "--genotype", "DARTS_V2", "--dataset", "cifar10", "--scorer", "clena"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--scorer is deprecated; use --scorers" in err and "did you mean 'clean'" in err


def test_set_needs_its_stage_where_a_command_has_several(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["score", "--genotype", "DARTS_V2", "--dataset", "cifar10", "--scorers", "clean,cost"]
    assert main([*argv, "--set", "max_examples=5"]) == 2
    assert "prefix the setting with its scorer" in capsys.readouterr().err
