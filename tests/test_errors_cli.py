"""Every malformed input to the CLI gives one line on stderr and exit status 2 (no traceback)."""

from __future__ import annotations

import json

import pytest

from wcbench.cli import main
from wcbench.genotype import PUBLISHED

V2 = PUBLISHED["DARTS_V2"].to_darts()
GOOD = PUBLISHED["DARTS_V2"].to_dict()


def _json(**changes: object) -> str:
    return json.dumps({**GOOD, **changes})


MALFORMED_GENOTYPES = {
    "unknown op": V2.replace("dil_conv_3x3", "dil_conv_7x7"),
    "input index out of range": V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 6)"),
    "negative input index": V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', -1)"),
    "too few edges": V2.replace("('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ", "", 1),
    "odd number of edges": V2.replace("('sep_conv_3x3', 0), ", "", 1),
    "op not in the genotype's space": _json(space="s2"),
    "unknown space": _json(space="s9"),
    "zero op kept": V2.replace("('dil_conv_3x3', 2)", "('none', 2)"),
    "concat out of range": V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 4, 9]"),
    "syntax error": V2[:-5],
    "code instead of literals": V2.replace("[2, 3, 4, 5]", "__import__('os').getcwd()", 1),
    "a lambda": V2.replace("[2, 3, 4, 5]", "(lambda: 1)()", 1),
    "missing field": V2.replace(", reduce_concat=[2, 3, 4, 5]", ""),
    "unknown field": V2.replace("reduce_concat=", "reduction_concat=", 1),
    "field given twice": V2[:-1] + ", normal=[])",
    "float input index": V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 2.0)"),
    "bool input index": V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', True)"),
    "pair of three": V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 2, 3)"),
    "not a Genotype call": "Network(normal=[])",
    "two statements": V2 + "; x = 1",
    "json not an object": "[1, 2, 3]",
    "json malformed": '{"normal": [',
    "json missing keys": json.dumps({"normal": GOOD["normal"]}),
    "json unknown key": _json(extra=1),
    "json pair not a pair": _json(normal=[["sep_conv_3x3"]] * 8),
    "json concat of strings": _json(reduce_concat=["2", "3"]),
    "unknown name": "DARTS_V3",
    "wrong case name": "darts_v2",
}


@pytest.mark.parametrize("case", list(MALFORMED_GENOTYPES))
def test_malformed_genotype_is_one_line_and_exit_2(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["genotype", "convert", MALFORMED_GENOTYPES[case], "--to", "json"])
    out, err = capsys.readouterr()
    assert rc == 2, (case, out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and out == ""


def test_malformed_genotype_files(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("hello world")
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    for ref in (garbage, binary, empty_dir, tmp_path / "missing.json"):
        rc = main(["genotype", "show", str(ref)])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and err.startswith("error: "), (ref, err)


BAD_COMMANDS = [
    ["genotype", "show", "DARTS_V2", "--dataset", "mnist"],
    ["genotype", "convert", "DARTS_V2", "--to", "yaml"],
    ["genotype", "plot", "DARTS_V2", "--file", "cell.jpg"],
    ["genotype", "show"],
    ["genotype", "show", "DARTS_V2", "--bogus"],
    ["genotype", "frobnicate"],
    ["list", "widgets"],
    ["no-such-command"],
]


@pytest.mark.parametrize("argv", BAD_COMMANDS, ids=lambda a: " ".join(a))
def test_bad_commands_are_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err


def test_debug_shows_the_traceback() -> None:
    from wcbench.errors import GenotypeError

    with pytest.raises(GenotypeError):
        main(["--debug", "genotype", "show", "DARTS_V3"])


def _write_imagefolder(root, classes):  # type: ignore[no-untyped-def]
    import numpy as np
    from PIL import Image

    for split in ("train", "test"):
        for c in classes:
            folder = root / split / c
            folder.mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")


@pytest.mark.parametrize(
    "argv, says",
    [
        (["search", "--searcher", "darts1st", "--preset", "smoke", "--set", "lr=Infinity"], "finite"),
        (["search", "--searcher", "darts1st", "--preset", "smoke", "--set", "lr=NaN"], "finite"),
        (["search", "--searcher", "darts1st", "--preset", "smoke", "--set", "lr=" + "9" * 5000], "too long"),
        (["run", "--searcher", "darts1st", "--preset", "smoke", "--scorers", ","], "no scorer"),
        (["run", "--searcher", "darts1st", "--preset", "smoke", "--set", "search.lr=-Infinity"], "finite"),
    ],
)
def test_silently_accepted_settings_are_refused(
    argv: list[str], says: str, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    rc = main([*argv, "--out" if argv[0] == "search" else "--runs-dir", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert rc == 2 and err.count("\n") == 1 and says in err, err
    assert not (tmp_path / "out").exists()


def test_an_image_folder_of_one_class_is_refused(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    # one class trains to 100% accuracy: a number that means nothing
    _write_imagefolder(tmp_path / "one", ["cat"])
    _write_imagefolder(tmp_path / "two", ["cat", "dog"])
    from wcbench.data import get_dataset

    assert get_dataset(f"imagefolder:{tmp_path / 'two'}", "train").num_classes == 2
    one = f"imagefolder:{tmp_path / 'one'}"
    argv = ["run", "--searcher", "darts1st", "--preset", "smoke", "--dataset", one, "--dry-run"]
    rc = main([*argv, "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "only one class" in err, err


def test_worst_case_indices_must_be_integers_not_booleans(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from evaluators.worst_case import parse_index_file
    from wcbench.errors import DatasetError

    (tmp_path / "ok.json").write_text("[3, 1, 2]")
    assert parse_index_file(tmp_path / "ok.json")[0].tolist() == [3, 1, 2]
    (tmp_path / "bools.json").write_text("[true, false]")
    with pytest.raises(DatasetError, match="integers"):
        parse_index_file(tmp_path / "bools.json")
