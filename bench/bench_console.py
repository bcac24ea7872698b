"""The console's officine page on the national scenario (20,500 officines), against the same
look-up through the CLI (`vialflow lookup FINESS --json`) on the same run, in one process run.

    python -m bench console [--out DIR]   # DIR: the folder of a national `vialflow run`; else one is made (minutes)

The page must answer in under 300 ms. The CLI's figure includes starting Python, as a support
adviser using it would wait for it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from pipeline.adapters.db import make_engine, migrate
from pipeline.services import support
from pipeline.services.accounts import add_user
from pipeline.settings import DATABASE_FILE

ROOT = Path(__file__).resolve().parents[1]
BUDGET_MS = 300
PAGES, CLI_CALLS = 40, 5


class _NoWorkers:
    def hand_over(self, run: int) -> None:
        raise AssertionError("the bench reallocates nothing")

    send_again = hand_over

    @contextlib.contextmanager
    def running(self):
        yield


def _vialflow(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIALFLOW_")}
    return subprocess.run([sys.executable, "-m", "pipeline.entrypoints.cli", *args], capture_output=True, text=True,
                          env=env, check=True, cwd=ROOT)


def national_run(folder: Path) -> Path:
    scenario, out = folder / "scenario", folder / "out"
    _vialflow("fixtures", "generate", str(scenario), "--seed", "1", "--pharmacies", "20500")
    _vialflow("run", str(scenario), "--out", str(out))
    return out


def bench_copy(given: Path, scratch: Path):
    """A copy of a run folder's database, migrated, with the bench's support account: the bench's
    account and audit rows go into the copy, never into the given run. Returns (engine, folder)."""
    folder = scratch / "copy"
    folder.mkdir()
    shutil.copyfile(given / DATABASE_FILE, folder / DATABASE_FILE)
    engine = make_engine(f"sqlite:///{folder / DATABASE_FILE}")
    migrate(engine)
    add_user(engine, "bench", "support", "bench-password-123", dt.datetime.now(dt.timezone.utc))
    return engine, folder


def main() -> None:
    from starlette.testclient import TestClient

    from pipeline.entrypoints.console.app import create_app

    parser = argparse.ArgumentParser(prog="python -m bench console")
    parser.add_argument("--out", type=Path, help="folder of a national `vialflow run` (default: make one)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        given = options.out if options.out is not None else national_run(scratch / "national")
        engine, folder = bench_copy(given, scratch)
        with engine.connect() as c:
            officines = c.execute(text("SELECT count(*) FROM pharmacies")).scalar()
            lines = c.execute(text("SELECT count(*) FROM orders")).scalar()
            chosen = sorted(random.Random(1).sample(list(c.execute(text(
                "SELECT DISTINCT finess FROM orders ORDER BY finess")).scalars()), PAGES))
        print(f"{officines:,} officines, {lines:,} lines")

        started = time.perf_counter()
        for finess in chosen:
            support.lookup(engine, finess)
        service_ms = (time.perf_counter() - started) * 1000 / len(chosen)

        page_ms = []
        with TestClient(create_app(engine, _NoWorkers(), folder)) as client:
            assert client.post("/login", data={"username": "bench", "password": "bench-password-123"},
                               follow_redirects=False).status_code == 303
            client.get(f"/officines/{chosen[0]}")  # templates compiled once, as in a running console
            for finess in chosen:
                started = time.perf_counter()
                answer = client.get(f"/officines/{finess}")
                page_ms.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200 and finess in answer.text

        cli_ms = []
        for finess in chosen[:CLI_CALLS]:
            started = time.perf_counter()
            _vialflow("lookup", finess, "--out", str(folder), "--json")
            cli_ms.append((time.perf_counter() - started) * 1000)
        engine.dispose()

    p95 = sorted(page_ms)[int(len(page_ms) * 0.95) - 1]
    print(f"console officine page: median {statistics.median(page_ms):.0f} ms, p95 {p95:.0f} ms, "
          f"max {max(page_ms):.0f} ms over {len(page_ms)} officines (budget {BUDGET_MS} ms: "
          f"{'met' if max(page_ms) < BUDGET_MS else 'MISSED'})")
    print(f"the same look-up through the CLI: median {statistics.median(cli_ms):.0f} ms over {len(cli_ms)} "
          f"(ratio page/CLI {statistics.median(page_ms) / statistics.median(cli_ms):.2f}); "
          f"the lookup service alone, in process: {service_ms:.0f} ms")


if __name__ == "__main__":
    main()
