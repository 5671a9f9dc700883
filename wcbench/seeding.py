"""The one seed-derivation rule: a 63-bit integer from named parts, stable across platforms and Pythons.

``derive_seed("loader", seed, epoch)`` is the first 8 bytes (little-endian) of
``sha256("wcbench-loader:<seed>:<epoch>")`` shifted right by one bit, so it always fits
``torch.Generator.manual_seed`` and ``torch.manual_seed``. Every per-epoch or per-component seed in
wcbench is derived this way; changing a salt string changes the numbers a run draws.
"""

from __future__ import annotations

import hashlib


def derive_seed(salt: str, *parts: int) -> int:
    """The seed of ``sha256(f"wcbench-{salt}:{part0}:{part1}...")`` (parts as integers)."""
    text = ":".join([f"wcbench-{salt}", *(str(int(p)) for p in parts)])
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
