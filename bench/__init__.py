"""Benchmarks, run apart from the tests: `make bench` (or `python -m bench [name ...]`)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys


def stamp() -> str:
    """When, where and how a bench ran: the date, the machine (its CPUs, its load) and the command line."""
    name = sys.argv[0].rsplit("/", 1)[-1].removesuffix(".py").removeprefix("bench.").removeprefix("bench_")
    command = " ".join(["python -m bench", name, *(shlex.quote(arg) for arg in sys.argv[1:])])
    return (f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()} ({platform.machine()}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, Python {platform.python_version()}): "
            f"{command}")


def ratios(rows: list[tuple[str, float | None, str, bool | None]]) -> None:
    """Print the issue's ratios beside their targets: (what, measured, target, met); measured None = not run."""
    width = max(len(what) for what, *_ in rows)
    print(f"\n{'ratio':<{width}}  {'measured':>9}  {'target':<10} met")
    for what, measured, target, met in rows:
        shown = "-" if measured is None else f"{measured:.2f}"
        verdict = "-" if met is None or measured is None else ("yes" if met else "NO")
        print(f"{what:<{width}}  {shown:>9}  {target:<10} {verdict}")
