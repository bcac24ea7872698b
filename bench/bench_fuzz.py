"""Every fuzz target of tests/fuzz, round robin, for as long as asked: inputs tried and failures per target,
the first failing input of each kept under `out/fuzz/<target>/`.

    .venv/bin/python -m bench fuzz [--seconds 60] [--target NAME] [--out out/fuzz]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import logging
import random
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz import Target

MODULES = ("tests.fuzz.smtp", "tests.fuzz.inputs")


@dataclass
class Run:
    """One target's run: its own random stream (seeded by its name, so a run can be repeated) and counts."""
    name: str
    target: Target
    queue: list[bytes]  # the seeds, tried as they are before any mutation of them
    corpus: list[bytes]
    rng: random.Random
    tried: int = 0
    failures: int = 0
    seconds: float = 0.0
    first: Path | None = None
    kinds: dict[str, int] = field(default_factory=dict)


def load(notes: list[str]) -> dict[str, Target]:
    """The TARGETS of each module present; a name met twice is prefixed with its module's."""
    found: dict[str, Target] = {}
    for module_name in MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            notes.append(f"{module_name}: not present, skipped")
            continue
        for name, target in module.TARGETS.items():
            found[name if name not in found else f"{module_name.rsplit('.', 1)[1]}.{name}"] = target
    return found


def step(run: Run, out: Path) -> None:
    data = run.queue.pop() if run.queue else run.target.mutate(run.rng, run.rng.choice(run.corpus))
    started = time.perf_counter()
    try:
        run.target.check(data)
        finding = None
    except AssertionError as error:
        finding = f"AssertionError: {error}"
    except Exception as error:  # noqa: BLE001 - a crash of the code under test is a finding too
        finding = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
    run.seconds += time.perf_counter() - started
    run.tried += 1
    if finding is None:
        return
    run.failures += 1
    kind = finding.splitlines()[0][:90]
    run.kinds[kind] = run.kinds.get(kind, 0) + 1
    if run.first is None:  # named by its content: a later run never overwrites another run's input
        folder = out / run.name
        folder.mkdir(parents=True, exist_ok=True)
        run.first = folder / f"failure-{hashlib.sha1(data).hexdigest()[:12]}.bin"
        run.first.write_bytes(data)
        run.first.with_suffix(".txt").write_text(f"{finding}\ninput: {data!r}\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench fuzz")
    parser.add_argument("--seconds", type=float, default=60, help="how long to fuzz, all targets together")
    parser.add_argument("--target", action="append", help="only this target (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("out/fuzz"), help="where failing inputs are kept")
    options = parser.parse_args()
    logging.getLogger("pipeline").setLevel(logging.ERROR)  # the sender's warnings about a hostile server
    notes: list[str] = []
    targets = load(notes)
    unknown = sorted(set(options.target or ()) - set(targets))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(sorted(targets))}")
    runs = [Run(name, target, list(reversed(seeds)), seeds, random.Random(zlib.crc32(name.encode())))
            for name, target in sorted(targets.items()) if not options.target or name in options.target
            for seeds in [list(target.seeds()) or [b""]]]
    print(f"fuzz: {options.seconds:g} s over {len(runs)} target(s)" + "".join(f"; {note}" for note in notes),
          flush=True)
    deadline = time.monotonic() + options.seconds
    try:
        while runs and time.monotonic() < deadline:
            for run in runs:
                step(run, options.out)
    except KeyboardInterrupt:
        print("interrupted: the counts so far")
    print(f"{'target':<28} {'inputs':>8} {'failures':>9} {'inputs/s':>9}  first failing input")
    for run in runs:
        rate = run.tried / run.seconds if run.seconds else 0.0
        print(f"{run.name:<28} {run.tried:>8} {run.failures:>9} {rate:>9.1f}  {run.first or '-'}")
        for kind, count in sorted(run.kinds.items(), key=lambda item: -item[1])[:5]:
            print(f"    {count:>5} x {kind}")


if __name__ == "__main__":
    main()
