"""Genotypes: the DARTS string form round-trips exactly, JSON round-trips, bad input is refused safely."""

from __future__ import annotations

import collections
import json

import pytest

from wcbench.errors import GenotypeError
from wcbench.genotype import _PUBLISHED_SOURCE, PUBLISHED, Genotype, load_genotype, parse_darts

# The official repos print genotypes as the repr of this namedtuple (DARTS genotypes.py).
OfficialGenotype = collections.namedtuple("Genotype", "normal normal_concat reduce reduce_concat")


def official_repr(source: str) -> str:
    """What the official code prints for a genotype: repr of its namedtuple (range stays a range)."""
    g = parse_darts(source)
    concat_n = range(2, 6) if "normal_concat=range" in source else list(g.normal_concat)
    concat_r = range(2, 6) if "reduce_concat=range" in source else list(g.reduce_concat)
    return repr(OfficialGenotype(list(g.normal), concat_n, list(g.reduce), concat_r))


@pytest.mark.parametrize("name", list(_PUBLISHED_SOURCE))
def test_every_reference_string_round_trips_through_the_darts_form(name: str) -> None:
    source = _PUBLISHED_SOURCE[name]
    g = parse_darts(source)
    assert g.to_darts() == official_repr(source)
    assert parse_darts(g.to_darts()) == g
    assert g == PUBLISHED[name]


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_json_round_trip(name: str) -> None:
    g = PUBLISHED[name]
    assert Genotype.from_json(g.to_json()) == g
    assert json.loads(g.to_json())["space"] == "darts"


def test_published_genotypes_have_the_reference_cells() -> None:
    g = PUBLISHED["DARTS_V2"]
    assert g.normal[:2] == (("sep_conv_3x3", 0), ("sep_conv_3x3", 1))
    assert g.reduce[-1] == ("max_pool_3x3", 1)
    assert g.normal_concat == (2, 3, 4, 5)
    assert PUBLISHED["PDARTS"].normal[6] == ("sep_conv_3x3", 0)
    assert PUBLISHED["PRDARTS"].reduce[6] == ("dil_conv_5x5", 4)


def test_prefix_assignment_and_positional_form_parse() -> None:
    src = _PUBLISHED_SOURCE["DARTS_V1"]
    assert parse_darts("DARTS_V1 = " + src) == PUBLISHED["DARTS_V1"]
    g = PUBLISHED["PRDARTS"]
    positional = f"Genotype({list(g.normal)}, range(2, 6), {list(g.reduce)}, range(2, 6))"
    assert parse_darts(positional) == g


def test_hash_is_content_based_and_ignores_print_style() -> None:
    a = PUBLISHED["DARTS_V2"]
    b = parse_darts(a.to_darts().replace("[2, 3, 4, 5]", "range(2, 6)"))
    assert a == b and a.hash() == b.hash()
    assert a.hash() != PUBLISHED["DARTS_V1"].hash()


def test_load_genotype_from_name_file_dir_and_string(tmp_path) -> None:
    g = PUBLISHED["PC_DARTS_cifar"]
    (tmp_path / "g.json").write_text(g.to_json())
    (tmp_path / "g.txt").write_text("PC_DARTS_cifar = " + g.to_darts() + "\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "genotype.json").write_text(g.to_json())
    for ref in ("PC_DARTS_cifar", tmp_path / "g.json", tmp_path / "g.txt", run, g.to_darts(), g.to_json()):
        assert load_genotype(ref) == g


def test_space_membership_is_checked() -> None:
    s2 = [["sep_conv_3x3", 0], ["skip_connect", 1]] * 4
    ok = {
        "normal": s2,
        "normal_concat": [2, 3, 4, 5],
        "reduce": s2,
        "reduce_concat": [2, 3, 4, 5],
        "space": "s2",
    }
    assert Genotype.from_dict(ok).space == "s2"
    bad = dict(ok, normal=[["dil_conv_5x5", 0], ["skip_connect", 1]] * 4)
    with pytest.raises(GenotypeError, match="not in search space 's2'"):
        Genotype.from_dict(bad)


def test_the_parser_never_evaluates(tmp_path) -> None:
    marker = tmp_path / "pwned"
    evil = (
        f"Genotype(normal=__import__('os').system('touch {marker}'), normal_concat=[2], "
        "reduce=[], reduce_concat=[2])"
    )
    with pytest.raises(GenotypeError, match="unsupported expression"):
        parse_darts(evil)
    assert not marker.exists()
