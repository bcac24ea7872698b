"""The self-service space on a run: an officine's "Mes livraisons" (the page, with each line's
explanation, and its JSON) and a professional's, against support's officine page on the same run.

    python -m bench self_service [--out DIR]   # DIR: a `vialflow run` folder; else the shipped fixture's run

Runs only when named. The page must answer in under 300 ms, as support's does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from pipeline.domain.pro_sante_connect import Identity
from pipeline.services import self_service

from .bench_console import _NoWorkers, _vialflow, bench_copy

ROOT = Path(__file__).resolve().parents[1]
BUDGET_MS, ROUNDS = 300, 5


def _median_ms(client, path: str, rounds: int = ROUNDS) -> float:
    client.get(path)  # templates compiled once, as in a running console
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        assert client.get(path).status_code == 200
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took)


def main() -> None:
    from starlette.testclient import TestClient

    from pipeline.entrypoints.console.app import create_app
    from pipeline.entrypoints.console.security import COOKIE

    parser = argparse.ArgumentParser(prog="python -m bench self_service")
    parser.add_argument("--out", type=Path, help="folder of a `vialflow run` (default: the fixture's)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        given = options.out
        if given is None:
            given = scratch / "fixture"
            _vialflow("run", str(ROOT / "fixtures" / "2021-06-14"), "--out", str(given))
        engine, folder = bench_copy(given, scratch)
        now = dt.datetime.now(dt.timezone.utc)
        with engine.connect() as c:
            finess, lines = c.execute(text("SELECT finess, count(*) FROM orders GROUP BY finess "
                                           "ORDER BY count(*) DESC, finess LIMIT 1")).one()
            rpps, theirs = c.execute(text("SELECT rpps, count(*) FROM orders WHERE effector = 'medecin' "
                                          "GROUP BY rpps ORDER BY count(*) DESC, rpps LIMIT 1")).one()
        link = self_service.request_link(engine, finess, "bench", now)
        officine = self_service.redeem_link(engine, link.token, "bench", now)
        doctor = self_service.sign_in_professional(engine, Identity(rpps, ()), "bench", now)
        with TestClient(create_app(engine, _NoWorkers(), folder)) as client:
            client.cookies.set(COOKIE, officine.token)
            page = _median_ms(client, "/mes-livraisons")
            api = _median_ms(client, "/api/mes-livraisons")
            client.cookies.set(COOKIE, doctor.token)
            professional = _median_ms(client, "/mes-livraisons")
            client.cookies.clear()
            assert client.post("/login", data={"username": "bench", "password": "bench-password-123"},
                               follow_redirects=False).status_code == 303
            support_page = _median_ms(client, f"/officines/{finess}")
        engine.dispose()
    print(f"officine {finess} ({lines} lines): /mes-livraisons median {page:.0f} ms (budget {BUDGET_MS} ms: "
          f"{'met' if page < BUDGET_MS else 'MISSED'}), /api/mes-livraisons {api:.0f} ms, "
          f"support's /officines/{finess} {support_page:.0f} ms; a doctor's /mes-livraisons ({theirs} lines) "
          f"{professional:.0f} ms; medians over {ROUNDS} rounds")


if __name__ == "__main__":
    main()
