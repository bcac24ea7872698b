"""Hostile bytes at the entry: each fuzz target of tests/fuzz/inputs.py on a few hundred mutated
inputs, the same ones every run (seeded), so that a failure here is reproducible by its seed."""

from __future__ import annotations

import random

import pytest

from tests.fuzz.inputs import TARGETS

# Inputs per target and run: the file's whole budget is about 25 s on a 2-core machine; the
# changes target costs a millisecond an input, a scenario target some 40.
RUNS = {"orders": 150, "registers": 180, "session": 300, "changes": 500}


def inputs(name: str):
    target = TARGETS[name]
    seeds = target.seeds()
    for number in range(RUNS[name]):
        rng = random.Random(f"{name}-{number}")
        yield number, target.mutate(rng, rng.choice(seeds))


@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_seed_passes_its_own_check(name):
    for seed in TARGETS[name].seeds():
        TARGETS[name].check(seed)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_mutated_inputs_are_read_or_refused_in_one_line_and_never_lose_an_intact_row(name):
    for number, data in inputs(name):
        try:
            TARGETS[name].check(data)
        except Exception as error:
            raise AssertionError(f"{name} input {number} ({data[:80]!r}…): {type(error).__name__}: {error}") from error
