"""Fuzz targets shared by the test suite (a few hundred inputs each) and `python -m bench fuzz` (as long as asked).

A target turns bytes into one run of the code under test and raises `AssertionError` on a
finding; `seeds` are valid inputs and `mutate` derives hostile ones from them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Target:
    seeds: Callable[[], list[bytes]]
    check: Callable[[bytes], None]
    mutate: Callable[[random.Random, bytes], bytes]


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """One to four byte-level mutations: flips, truncations, duplicated, dropped and swapped
    lines, odd encodings and Unicode, inserted bytes."""
    for _ in range(rng.randint(1, 4)):
        data = rng.choice(_MUTATIONS)(rng, data)
    return data


def _flip(rng, data):
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1:]


def _truncate(rng, data):
    return data[:rng.randrange(len(data) + 1)]


def _lines(rng, data):
    lines = data.split(b"\n")
    if len(lines) < 2:
        return data
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    kind = rng.randrange(3)
    if kind == 0:
        lines.insert(j, lines[i])
    elif kind == 1:
        del lines[i]
    else:
        lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


_ODD = ["\u0000", "\ufeff", "\u202e", "é", "\uff15", "\r", "\r\n", "\t", ",", '"', "=", "../", "\udcff",
        "𝟓", "\u00a0", "ﬀ", "İ", "9" * 40, "x" * 200]


def _insert(rng, data):
    at = rng.randrange(len(data) + 1)
    text = rng.choice(_ODD)
    raw = text.encode("utf-8", "surrogatepass") if rng.random() < 0.8 else text.encode("utf-16-le", "surrogatepass")
    return data[:at] + raw + data[at:]


def _encode(rng, data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    return text.encode(rng.choice(["latin-1", "utf-16", "cp1252", "utf-8-sig"]), "replace")


def _random_bytes(rng, data):
    at = rng.randrange(len(data) + 1)
    return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + data[at:]


_MUTATIONS = [_flip, _truncate, _lines, _insert, _encode, _random_bytes, _flip, _lines]
