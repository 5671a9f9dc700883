"""Genotypes: the cell description a searcher exports and an evaluator builds (DARTS genotypes.py).

A genotype round-trips through JSON and through the DARTS string form as the official repositories
print it (``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), ...)``). The
string form is parsed with `ast` and a whitelist of node types: it is never evaluated.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wcbench.errors import GenotypeError
from wcbench.space import PRIMITIVES, SPACES

OPERATIONS: tuple[str, ...] = (*PRIMITIVES, "noise")
"""Every op a genotype may name: the DARTS primitives plus RobustDARTS S4's `noise`."""

Edge = tuple[str, int]


@dataclass(frozen=True)
class Genotype:
    """A normal and a reduction cell: per intermediate node, two (op, input) pairs.

    Inputs 0 and 1 are the cell's inputs c_{k-2} and c_{k-1}; input i >= 2 is node i - 2. `space`
    names the search space the genotype was found in (`darts`, `s1`..`s4`).
    """

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]
    space: str = "darts"
    concat_style: str = field(default="range", compare=False)  # how to_darts prints concat lists

    def __post_init__(self) -> None:
        for name in ("normal", "reduce"):
            pairs = getattr(self, name)
            object.__setattr__(self, name, tuple((str(op), int(i)) for op, i in pairs))
        for name in ("normal_concat", "reduce_concat"):
            object.__setattr__(self, name, tuple(int(i) for i in getattr(self, name)))
        validate(self)

    @property
    def steps(self) -> int:
        return len(self.normal) // 2

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "normal": [[op, i] for op, i in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, i] for op, i in self.reduce],
            "reduce_concat": list(self.reduce_concat),
            "space": self.space,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> Genotype:
        if not isinstance(data, dict):
            raise GenotypeError(
                "genotype JSON must be an object with normal, normal_concat, reduce, reduce_concat"
            )
        missing = [k for k in ("normal", "normal_concat", "reduce", "reduce_concat") if k not in data]
        if missing:
            raise GenotypeError(f"genotype JSON lacks {', '.join(missing)}")
        known = {"normal", "normal_concat", "reduce", "reduce_concat", "space"}
        known.add("retrain_family")  # what a search records beside its genotype (searchers.loop); ignored
        unknown = set(data) - known
        if unknown:
            raise GenotypeError(f"genotype JSON has unknown keys {sorted(unknown)}")
        pairs = {k: _pairs(data[k], k) for k in ("normal", "reduce")}
        concats = {k: _ints(data[k], k) for k in ("normal_concat", "reduce_concat")}
        space = data.get("space", "darts")
        if not isinstance(space, str):
            raise GenotypeError("genotype JSON field 'space' must be a string such as 'darts' or 's1'")
        return cls(
            pairs["normal"], concats["normal_concat"], pairs["reduce"], concats["reduce_concat"], space
        )

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            data = json.loads(_bounded_text(text, "genotype JSON"))
        except json.JSONDecodeError as exc:
            raise GenotypeError(f"genotype JSON is malformed: {exc.msg} at line {exc.lineno}") from None
        except (RecursionError, ValueError) as exc:  # nesting too deep, integers over Python's digit limit
            raise GenotypeError(f"genotype JSON cannot be read: {str(exc).split(';')[0]}") from None
        return cls.from_dict(data)

    def to_darts(self) -> str:
        """The string DARTS prints for this genotype (the namedtuple repr)."""

        def pairs(ps: tuple[Edge, ...]) -> str:
            return "[" + ", ".join(f"({op!r}, {i})" for op, i in ps) + "]"

        def concat(c: tuple[int, ...]) -> str:
            if self.concat_style == "range" and c and list(c) == list(range(c[0], c[-1] + 1)):
                return f"range({c[0]}, {c[-1] + 1})"
            return "[" + ", ".join(str(i) for i in c) + "]"

        return (
            f"Genotype(normal={pairs(self.normal)}, normal_concat={concat(self.normal_concat)}, "
            f"reduce={pairs(self.reduce)}, reduce_concat={concat(self.reduce_concat)})"
        )

    @classmethod
    def from_darts(cls, text: str, space: str = "darts") -> Genotype:
        return parse_darts(text, space)

    def hash(self) -> str:
        """A short content hash (the space and the cells; not the print style)."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:12]

    def count(self, op: str, cell: str = "normal") -> int:
        return sum(1 for o, _ in (self.normal if cell == "normal" else self.reduce) if o == op)


def _pairs(value: Any, where: str) -> tuple[Edge, ...]:
    if not isinstance(value, (list, tuple)):
        raise GenotypeError(f"genotype field {where!r} must be a list of (op, input) pairs")
    out = []
    for k, item in enumerate(value):
        if (
            not isinstance(item, (list, tuple))
            or len(item) != 2
            or not isinstance(item[0], str)
            or isinstance(item[1], bool)
            or not isinstance(item[1], int)
        ):
            raise GenotypeError(f"genotype {where}[{k}] must be an (op name, input index) pair, got {item!r}")
        out.append((item[0], item[1]))
    return tuple(out)


def _ints(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in value
    ):
        raise GenotypeError(f"genotype field {where!r} must be a list of node indices, got {value!r}")
    return tuple(value)


def validate(g: Genotype) -> None:
    """Check op names, edge counts, input indices and concat nodes; raise GenotypeError on the first fault."""
    if g.space not in SPACES:
        raise GenotypeError(
            f"unknown search space {g.space!r} in genotype; choose one of {', '.join(SPACES)}"
        )
    for cell, pairs, concat in (("normal", g.normal, g.normal_concat), ("reduce", g.reduce, g.reduce_concat)):
        if len(pairs) == 0 or len(pairs) % 2:
            raise GenotypeError(
                f"{cell} cell has {len(pairs)} edges; a genotype has two (op, input) pairs per node "
                f"(8 for 4 nodes)"
            )
        if len(pairs) != 8:
            raise GenotypeError(f"{cell} cell has {len(pairs)} edges; the DARTS cell has 4 nodes, so 8 edges")
        for k, (op, inp) in enumerate(pairs):
            if op not in OPERATIONS:
                import difflib

                close = difflib.get_close_matches(op, OPERATIONS, n=1)
                maybe = f" (did you mean {close[0]!r}?)" if close else ""
                raise GenotypeError(
                    f"unknown op {op!r} in {cell} cell{maybe}; known ops: {', '.join(OPERATIONS)}"
                )
            if op == "none":
                raise GenotypeError(f"op 'none' in {cell} cell: a derived genotype never keeps the zero op")
            node = k // 2
            if not 0 <= inp < node + 2:
                raise GenotypeError(
                    f"{cell} cell edge {k} (node {node}) takes input {inp}; node {node} may only take inputs "
                    f"0..{node + 1}"
                )
        steps = len(pairs) // 2
        if not concat or len(set(concat)) != len(concat) or not all(2 <= c < steps + 2 for c in concat):
            raise GenotypeError(
                f"{cell}_concat {list(concat)} must list distinct intermediate nodes in 2..{steps + 1}"
            )
    SPACES[g.space].check_genotype(g)


# --------------------------------------------------------------------------- safe DARTS-string parser


#: Longest genotype string or file read (a DARTS genotype string is about 500 characters): bounds the
#: parser's time, memory and nesting depth on hostile input.
MAX_GENOTYPE_CHARS = 20_000
#: Largest integer a genotype may hold (input indices and concat nodes are single digits).
MAX_GENOTYPE_INT = 10_000


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else f"{text[:n]}... ({len(text)} characters)"


def _bounded_text(text: str, what: str) -> str:
    if len(text) > MAX_GENOTYPE_CHARS:
        raise GenotypeError(
            f"{what} has {len(text)} characters; a genotype has about 500 (limit {MAX_GENOTYPE_CHARS})"
        )
    return text


def _literal(node: ast.AST, where: str) -> Any:
    """Evaluate only str/int constants, lists/tuples of them, and range(a, b) calls; integers and ranges
    are bounded by :data:`MAX_GENOTYPE_INT` (``range(3000000000)`` would allocate tens of GB)."""
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (str, int))
        and not isinstance(node.value, bool)
    ):
        if isinstance(node.value, int) and abs(node.value) > MAX_GENOTYPE_INT:
            raise GenotypeError(
                f"integer {_short(str(node.value), 20)} in {where} is too large for a genotype "
                f"(node indices are small; limit {MAX_GENOTYPE_INT})"
            )
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e, where) for e in node.elts]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "range"
        and not node.keywords
        and 1 <= len(node.args) <= 2
    ):
        args = [_literal(a, where) for a in node.args]
        if not all(isinstance(a, int) for a in args):
            raise GenotypeError(f"range() in {where} takes integers only")
        return list(range(*args))  # bounded: |args| <= MAX_GENOTYPE_INT
    raise GenotypeError(
        f"unsupported expression in {where}: {ast.dump(node)[:60]}; only op-name strings, integers, lists, "
        f"tuples and range() are allowed"
    )


def parse_darts(text: str, space: str = "darts") -> Genotype:
    """Parse `Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)` safely.

    Accepts an optional `NAME = ` prefix (as in genotypes.py) and positional arguments.
    """
    src = _bounded_text(text.strip(), "genotype string")
    if not src:
        raise GenotypeError("empty genotype string")
    try:
        tree = ast.parse(src, mode="exec")
    except SyntaxError as exc:
        raise GenotypeError(
            f"genotype string is not valid syntax: {exc.msg.split(';')[0]} (column {exc.offset})"
        ) from None
    except (RecursionError, MemoryError, ValueError) as exc:  # nesting too deep for the parser
        raise GenotypeError(f"genotype string cannot be parsed ({type(exc).__name__})") from None
    if len(tree.body) != 1:
        raise GenotypeError("genotype string must hold exactly one Genotype(...) expression")
    stmt = tree.body[0]
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        call = stmt.value
    elif isinstance(stmt, ast.Expr):
        call = stmt.value
    else:
        raise GenotypeError("genotype string must be `Genotype(...)` or `NAME = Genotype(...)`")
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise GenotypeError("genotype string must be a call of Genotype(normal=..., reduce=...)")
    fields = ["normal", "normal_concat", "reduce", "reduce_concat"]
    values: dict[str, Any] = {}
    if len(call.args) > 4:
        raise GenotypeError("Genotype(...) takes at most 4 positional arguments")
    for name, arg in zip(fields, call.args):
        values[name] = _literal(arg, name)
    styles = {}
    for kw in call.keywords:
        if kw.arg not in fields:
            raise GenotypeError(f"Genotype(...) has unknown field {kw.arg!r}; expected {', '.join(fields)}")
        if kw.arg in values:
            raise GenotypeError(f"Genotype(...) gives field {kw.arg!r} twice")
        values[kw.arg] = _literal(kw.value, kw.arg)
        if kw.arg.endswith("concat"):
            styles[kw.arg] = "range" if isinstance(kw.value, ast.Call) else "list"
    missing = [f for f in fields if f not in values]
    if missing:
        raise GenotypeError(f"Genotype(...) lacks {', '.join(missing)}")
    g = Genotype(
        _pairs(values["normal"], "normal"),
        _ints(values["normal_concat"], "normal_concat"),
        _pairs(values["reduce"], "reduce"),
        _ints(values["reduce_concat"], "reduce_concat"),
        space,
        concat_style=styles.get("normal_concat", "range"),
    )
    return g


# --------------------------------------------------------------------------- published genotypes

_PUBLISHED_SOURCE = {
    "DARTS_V1": "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])",  # noqa: E501
    "DARTS_V2": "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])",  # noqa: E501
    "PDARTS": "Genotype(normal=[('skip_connect', 0), ('dil_conv_3x3', 1), ('skip_connect', 0),('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3',0), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('dil_conv_3x3', 1), ('dil_conv_3x3', 1), ('dil_conv_5x5', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    "PC_DARTS_cifar": "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))",  # noqa: E501
    "PC_DARTS_image": "Genotype(normal=[('skip_connect', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_3x3', 1), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_5x5', 2), ('max_pool_3x3', 1), ('sep_conv_3x3', 2), ('sep_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 3)], reduce_concat=range(2, 6))",  # noqa: E501
    "PRDARTS": "Genotype(normal=[('skip_connect', 0), ('sep_conv_3x3', 1), ('dil_conv_3x3', 2), ('sep_conv_3x3', 0), ('dil_conv_3x3', 3), ('sep_conv_3x3', 1), ('dil_conv_3x3', 4), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('avg_pool_3x3', 0), ('dil_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_5x5', 2), ('sep_conv_5x5', 1), ('dil_conv_3x3', 3), ('dil_conv_5x5', 4), ('dil_conv_5x5', 1)], reduce_concat=range(2, 6))",  # noqa: E501
}
"""The published genotypes, verbatim from the official repositories' ``genotypes.py`` (quark0/darts,
chenxin061/pdarts, yuhuixu1993/PC-DARTS, salesforce/PR-DARTS)."""

PUBLISHED: dict[str, Genotype] = {name: parse_darts(src) for name, src in _PUBLISHED_SOURCE.items()}


def load_genotype(ref: str | Path) -> Genotype:
    """A published name (DARTS_V2), a .json file, a file holding a DARTS string, or a DARTS string itself."""
    text = str(ref).strip()
    if text in PUBLISHED:
        return PUBLISHED[text]
    if text.startswith("Genotype(") or "= Genotype(" in text:
        return parse_darts(text)
    if text.startswith("{"):
        return Genotype.from_json(text)
    path = Path(text)
    try:  # a long argument is no path: is_file raises "File name too long" rather than saying False
        if path.is_dir() and (path / "genotype.json").is_file():
            path = path / "genotype.json"
        is_file = path.is_file()
    except (OSError, ValueError):
        is_file = False
    if not is_file:
        lower = {k.lower(): k for k in PUBLISHED}
        hint = f" (did you mean {lower[text.lower()]!r}?)" if text.lower() in lower else ""
        raise GenotypeError(
            f"genotype {_short(text)!r} is neither a published name{hint} ({', '.join(PUBLISHED)}), nor a "
            f"file, nor a Genotype(...) string"
        )
    try:
        if path.stat().st_size > 4 * MAX_GENOTYPE_CHARS:
            raise GenotypeError(f"genotype file {path} is too large to be a genotype; pass a genotype file")
        content = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GenotypeError(f"cannot read genotype file {path}: {exc}") from None
    content = content.strip()
    if content.startswith("{"):
        return Genotype.from_json(content)
    if "Genotype(" in content:
        return parse_darts(content)
    raise GenotypeError(f"genotype file {path} holds neither genotype JSON nor a Genotype(...) string")
