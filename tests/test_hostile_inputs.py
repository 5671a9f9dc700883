"""A battery of hostile inputs across every command: each is the user's fault, so each must end in
exactly one line on stderr, exit status 2, no traceback, and leave the runs tree byte for byte as it was.

Every case fails before any training (bad paths, malformed files, unbounded sizes, bad settings), runs
in-process through :func:`wcbench.cli.main`, and uses the embedded ``digits`` data or none.
"""

from __future__ import annotations

import json
import pickle
import struct
import zlib
from pathlib import Path

import pytest

from wcbench.cli import main
from wcbench.genotype import PUBLISHED

V2 = PUBLISHED["DARTS_V2"].to_darts()
RO = Path("/sys/wcbench-read-only")  # not writable, even for root
SEARCH = ["search", "--searcher", "darts1st", "--preset", "smoke"]
RETRAIN = ["retrain", "--genotype", "DARTS_V2", "--dataset", "digits", "--preset", "smoke"]
RUN = ["run", "--searcher", "darts1st", "--preset", "smoke", "--dry-run"]
EVALUATE = ["evaluate", "--genotype", "DARTS_V2", "--dataset", "digits", "--preset", "smoke"]


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels (the data is absent: never decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Paths the cases name: a small runs tree, an existing file, binary and pickle files, a bomb PNG."""
    runs = tmp_path / "runs"
    for searcher, errs in (("ours-pdarts", (27.9, 28.4, 28.0)), ("pdarts", (29.0, 29.8, 29.3))):
        for seed, err in enumerate(errs, start=1):
            run = runs / "digits" / searcher / f"seed-{seed}"
            (run / "scores").mkdir(parents=True)
            score = {
                "scorer": "clean",
                "dataset": "digits",
                "metrics": {"top1_error": {"value": err, "unit": "%"}},
            }
            (run / "scores" / "clean.json").write_text(json.dumps(score))
            (run / "manifest.json").write_text(json.dumps({"status": "done", "stages": {}, "config": {}}))
    bad_runs = tmp_path / "bad-runs"
    (bad_runs / "digits" / "pdarts" / "seed-1").mkdir(parents=True)
    (bad_runs / "digits" / "pdarts" / "seed-1" / "manifest.json").write_text('{"stages": [1, 2]}')
    (tmp_path / "file.txt").write_text("I am a file, not a folder\n")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "indices.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "huge-int.json").write_text("[" + "9" * 5000 + "]")
    (tmp_path / "genotype.txt").write_text(
        V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(3000000000)")
    )
    bomb = tmp_path / "bomb"
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (bomb / split / cls).mkdir(parents=True)
            (bomb / split / cls / "0.png").write_bytes(png_header(30000, 30000))
    return {
        "RUNS": str(runs),
        "BADRUNS": str(bad_runs),
        "TMP": str(tmp_path),
        "F": str(tmp_path / "file.txt"),
        "BIN": str(tmp_path / "binary.bin"),
        "PKL": str(tmp_path / "indices.pkl"),
        "DEEP": str(tmp_path / "deep.json"),
        "HUGEINT": str(tmp_path / "huge-int.json"),
        "GFILE": str(tmp_path / "genotype.txt"),
        "BOMB": f"imagefolder:{bomb}",
        "MISSING": str(tmp_path / "no" / "such" / "folder"),
        "RO": str(RO),
    }


CASES: dict[str, list[str]] = {
    # search
    "search --out is a file": [*SEARCH, "--out", "{F}"],
    "search --out under a file": [*SEARCH, "--out", "{F}/sub"],
    "search --out read-only": [*SEARCH, "--out", "{RO}/s"],
    "search unknown searcher": ["search", "--searcher", "nas", "--preset", "smoke", "--out", "{TMP}/s"],
    "search unknown preset": ["search", "--searcher", "darts1st", "--preset", "huge", "--out", "{TMP}/s"],
    "search unknown dataset": [*SEARCH, "--dataset", "imagenet22k", "--out", "{TMP}/s"],
    "search bad --set": [*SEARCH, "--set", "lr", "--out", "{TMP}/s"],
    "search unknown setting": [*SEARCH, "--set", "no_such_key=1", "--out", "{TMP}/s"],
    "search lr infinite": [*SEARCH, "--set", "lr=Infinity", "--out", "{TMP}/s"],
    "search 5000-digit setting": [*SEARCH, "--set", "lr=" + "9" * 5000, "--out", "{TMP}/s"],
    "search negative seed": [*SEARCH, "--seed", "-1", "--out", "{TMP}/s"],
    "search huge seed": [*SEARCH, "--seed", "9" * 30, "--out", "{TMP}/s"],
    "search unknown space": [*SEARCH, "--space", "s9", "--out", "{TMP}/s"],
    "search image bomb": [*SEARCH, "--dataset", "{BOMB}", "--out", "{TMP}/s"],
    # retrain
    "retrain --out is a file": [*RETRAIN, "--out", "{F}"],
    "retrain --out read-only": [*RETRAIN, "--out", "{RO}/r"],
    "retrain genotype over 255 chars": [*RETRAIN[:2], "x" * 300, *RETRAIN[3:], "--out", "{TMP}/r"],
    "retrain genotype range(3e9)": [
        *RETRAIN[:2],
        V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(3000000000)"),
        *RETRAIN[3:],
        "--out",
        "{TMP}/r",
    ],
    "retrain genotype file range(3e9)": [*RETRAIN[:2], "{GFILE}", *RETRAIN[3:], "--out", "{TMP}/r"],
    "retrain genotype binary file": [*RETRAIN[:2], "{BIN}", *RETRAIN[3:], "--out", "{TMP}/r"],
    "retrain unknown family": [*RETRAIN, "--family", "nope", "--out", "{TMP}/r"],
    "retrain negative epochs": [*RETRAIN, "--set", "epochs=-1", "--out", "{TMP}/r"],
    "retrain image bomb": [*RETRAIN[:4], "{BOMB}", *RETRAIN[5:], "--out", "{TMP}/r"],
    # run
    "run --runs-dir is a file": [*RUN, "--runs-dir", "{F}"],
    "run --runs-dir read-only": [*RUN[:-1], "--runs-dir", "{RO}/runs"],  # fails creating the run folder
    "run --seeds 1-1000000000": [*RUN, "--seeds", "1-1000000000", "--runs-dir", "{RUNS}"],
    "run --seeds huge": [*RUN, "--seeds", "9" * 5000, "--runs-dir", "{RUNS}"],
    "run --seeds reversed": [*RUN, "--seeds", "5-1", "--runs-dir", "{RUNS}"],
    "run --seeds words": [*RUN, "--seeds", "one", "--runs-dir", "{RUNS}"],
    "run no scorers": [*RUN, "--scorers", ",", "--runs-dir", "{RUNS}"],
    "run unknown scorer": [*RUN, "--scorers", "clean,nope", "--runs-dir", "{RUNS}"],
    "run later stage bad setting": [*RUN, "--set", "retrain.epochs=-1", "--runs-dir", "{RUNS}"],
    "run scorer bad setting": [*RUN, "--set", "clean.foo=1", "--runs-dir", "{RUNS}"],
    "run unknown executor": [*RUN, "--executor", "kubernetes", "--runs-dir", "{RUNS}"],
    # score / evaluate
    "score missing model": ["score", "--scorers", "clean", "--model", "{MISSING}"],
    "score model is a file": ["score", "--scorers", "clean", "--model", "{F}"],
    "score unknown scorer": ["score", "--scorers", "nope", "--model", "{MISSING}"],
    "evaluate --out is a file": [*EVALUATE, "--out", "{F}"],
    "evaluate --out read-only": [*EVALUATE, "--out", "{RO}/e"],
    "evaluate unknown scorer": [*EVALUATE, "--scorers", "nope", "--out", "{TMP}/e"],
    # data
    "data corrupt --out is a file": ["data", "corrupt", "--dataset", "digits", "--out", "{F}"],
    "data corrupt --out read-only": ["data", "corrupt", "--dataset", "digits", "--out", "{RO}/c"],
    "data corrupt unknown corruption": [
        *["data", "corrupt", "--dataset", "digits", "--corruptions", "melt", "--out", "{TMP}/c"]
    ],
    "data corrupt unknown dataset": ["data", "corrupt", "--dataset", "nope", "--out", "{TMP}/c"],
    "indices binary file": ["data", "worst-case", "import", "--dataset", "digits", "--indices", "{BIN}"]
    + ["--provenance", "x", "--out", "{TMP}/wc.json"],
    "indices pickle file": ["data", "worst-case", "import", "--dataset", "digits", "--indices", "{PKL}"]
    + ["--provenance", "x", "--out", "{TMP}/wc.json"],
    "indices nested 100000 deep": [
        "data",
        "worst-case",
        "import",
        "--dataset",
        "digits",
        "--indices",
        "{DEEP}",
    ]
    + ["--provenance", "x", "--out", "{TMP}/wc.json"],
    "indices 5000-digit number": ["data", "worst-case", "import", "--dataset", "digits", "--indices"]
    + ["{HUGEINT}", "--provenance", "x", "--out", "{TMP}/wc.json"],
    "indices missing file": ["data", "worst-case", "import", "--dataset", "digits", "--indices", "{MISSING}"]
    + ["--provenance", "x", "--out", "{TMP}/wc.json"],
    "worst-case show binary file": ["data", "worst-case", "show", "--file", "{BIN}"],
    # leaderboard / compare
    "leaderboard --out is a file": ["leaderboard", "--format", "md", "--runs-dir", "{RUNS}", "--out", "{F}"],
    "leaderboard --out read-only": [
        "leaderboard",
        "--format",
        "csv",
        "--runs-dir",
        "{RUNS}",
        "--out",
        "{RO}/lb",
    ],
    "leaderboard unknown format": ["leaderboard", "--format", "pdf", "--runs-dir", "{RUNS}"],
    "leaderboard unknown board": ["leaderboard", "--benchmark", "nope", "--runs-dir", "{RUNS}"],
    "leaderboard bad alpha": ["leaderboard", "--alpha", "2", "--runs-dir", "{RUNS}"],
    "compare unknown searcher": ["compare", "ours-pdarts", "nas", "-m", "top1_error", "--runs-dir", "{RUNS}"],
    "compare unknown metric": ["compare", "ours-pdarts", "pdarts", "-m", "nope", "--runs-dir", "{RUNS}"],
    "compare unknown test": ["compare", "ours-pdarts", "pdarts", "-m", "top1_error", "--test", "z"]
    + ["--runs-dir", "{RUNS}"],
    "compare alpha 0": ["compare", "ours-pdarts", "pdarts", "-m", "top1_error", "--alpha", "0"]
    + ["--runs-dir", "{RUNS}"],
    "compare dataset with no runs": ["compare", "ours-pdarts", "pdarts", "-m", "top1_error"]
    + ["--runs-dir", "{RUNS}", "--dataset", "cifar10"],
    # genotype
    "genotype show over 255 chars": ["genotype", "show", "y" * 300],
    "genotype show 100000 brackets": ["genotype", "show", "Genotype(normal=" + "[" * 100_000 + ")"],
    "genotype show range(0x<20000 f>)": [
        "genotype",
        "show",
        V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(0x" + "f" * 20000 + ")"),
    ],
    "genotype show 5000 digits": [
        "genotype",
        "show",
        V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', " + "9" * 5000 + ")"),
    ],
    "genotype show range(3e9)": ["genotype", "show", "{GFILE}"],
    "genotype show JSON nested": ["genotype", "show", "{" + '"normal": ' + "[" * 5000 + "]" * 5000 + "}"],
    "genotype plot unknown genotype": ["genotype", "plot", "PDARTS_V9", "--file", "{TMP}/cell.png"],
    "genotype plot --file read-only": ["genotype", "plot", "PDARTS", "--file", "{RO}/cell.png"],
    "genotype plot --file is a folder": ["genotype", "plot", "PDARTS", "--file", "{TMP}"],
    "genotype plot --file under a file": ["genotype", "plot", "PDARTS", "--file", "{F}/cell.png"],
    "genotype convert --out read-only": [
        "genotype",
        "convert",
        "PDARTS",
        "--to",
        "json",
        "--out",
        "{RO}/g.json",
    ],
    # list / tester / bench
    "list unknown kind": ["list", "widgets"],
    "tester pretrain unknown tester": ["tester", "pretrain", "--dataset", "digits", "--tester", "nope"]
    + ["--out", "{TMP}/t"],
    "tester pretrain --out is a file": ["tester", "pretrain", "--dataset", "digits", "--preset", "smoke"]
    + ["--out", "{F}"],
    "bench unknown part": ["bench", "--parts", "nope"],
    "bench too few steps": ["bench", "--steps", "1"],
    "bench unknown searcher": ["bench", "--searchers", "nas", "--steps", "2"],
}


def fill(arg: str, env: dict[str, str]) -> str:
    for key, value in env.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.timeout(120)  # a hang guard: every case fails before any training
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_is_one_line_exit_2_and_changes_nothing(
    case: str, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    if "{RO}" in " ".join(CASES[case]) and not Path("/sys").is_dir():
        pytest.skip("needs a read-only /sys")
    argv = [fill(a, env) for a in CASES[case]]
    runs, bad_runs = Path(env["RUNS"]), Path(env["BADRUNS"])
    before, before_bad = snapshot(runs), snapshot(bad_runs)
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, (case, rc, err[-500:])
    assert err.startswith("error: ") and err.count("\n") == 1, (case, err[-2000:])
    assert "Traceback" not in err and "internal error" not in err, (case, err)
    assert snapshot(runs) == before and snapshot(bad_runs) == before_bad, case


def test_the_battery_covers_every_command() -> None:
    commands = {
        argv[0] if argv[0] not in ("data", "genotype", "tester") else " ".join(argv[:2])
        for argv in CASES.values()
    }
    assert len(CASES) >= 60
    for command in (
        "search",
        "retrain",
        "score",
        "evaluate",
        "run",
        "data corrupt",
        "data worst-case",
        "leaderboard",
        "compare",
        "genotype show",
        "genotype plot",
        "list",
        "tester pretrain",
        "bench",
    ):
        assert command in commands, command


def test_a_full_disk_is_one_line_naming_the_path(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ENOSPC comes from write() or fsync() with no file name: the error names the file being written,
    and the temp file is gone (nothing half-written)."""
    import errno

    import wcbench.files

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wcbench.files.os, "fsync", full)
    out = Path(env["TMP"]) / "lb"
    rc = main(["leaderboard", "--format", "md", "--runs-dir", env["RUNS"], "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "no space left" in err and str(out) in err, err
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_torch_and_numpy_warnings_do_not_join_the_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import warnings

    import wcbench.genotype
    from wcbench.errors import GenotypeError

    def noisy(ref: str) -> None:
        warnings.warn("TypedStorage is deprecated", UserWarning, stacklevel=1)
        raise GenotypeError(f"genotype {ref!r} is unknown")

    monkeypatch.setattr(wcbench.genotype, "load_genotype", noisy)
    assert main(["genotype", "show", "NOPE"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "TypedStorage" not in err, err
