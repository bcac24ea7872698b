"""The generated whole runs of tests/shapes, for as long as asked: sessions drawn over the whole input space,
each run embedded (then reallocated) and checked; a failure is shrunk by hypothesis to its smallest
scenario and kept under `out/shapes/failure-N/` (copy it into tests/shapes/regressions/ once mended).

    .venv/bin/python -m bench shapes [--seconds 600] [--lines 120] [--out out/shapes]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings, strategies as st

BATCH = 10  # draws per hypothesis run: the budget is checked between runs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench shapes")
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--lines", type=int, default=120, help="most order lines of a drawn session")
    parser.add_argument("--out", type=Path, default=Path("out/shapes"))
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    os.environ["SHAPES_FAILURES"] = str(options.out)

    from tests.shapes.scenarios import shapes
    from tests.shapes.test_whole_runs import run_whole

    drawn, failures, started = [0], [], time.monotonic()

    @settings(max_examples=BATCH, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.generate, Phase.shrink])
    @given(shape=shapes(max_lines=options.lines), data=st.data())
    def one(shape, data):
        drawn[0] += 1
        with tempfile.TemporaryDirectory(prefix="shape-") as folder:
            run_whole(shape, data, Path(folder))

    while time.monotonic() - started < options.seconds:
        try:
            one()
        except Exception as error:  # noqa: BLE001 - a failure is kept and counted, the soak goes on
            kept = options.out / f"failure-{len(failures) + 1}"
            shutil.rmtree(kept, ignore_errors=True)
            if (options.out / "latest").exists():
                shutil.move(options.out / "latest", kept)
            failures.append((kept, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"))
            print(f"  failure {len(failures)} kept in {kept}: {failures[-1][1][:200]}", flush=True)
        elapsed = time.monotonic() - started
        print(f"  {drawn[0]} sessions drawn and run (shrinking included) in {elapsed:.0f} s, "
              f"{len(failures)} failure(s)", flush=True)
    print(f"shapes: {drawn[0]} sessions in {time.monotonic() - started:.0f} s, {len(failures)} failure(s)")
    for kept, what in failures:
        print(f"  {kept}: {what[:300]}")


if __name__ == "__main__":
    main()
