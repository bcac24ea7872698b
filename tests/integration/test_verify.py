"""`vialflow verify` on the deployed form: a run and a reallocation with a policy change (R7, R11)
through RabbitMQ, a celery worker, PostgreSQL and a real SMTP server, each version derived again and
compared; a decision changed by hand in PostgreSQL is named."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from .conftest import ROOT
from .test_pipeline import EXAMPLE

pytestmark = pytest.mark.integration
SESSION = "2021-06-14-notice-s1"


def test_r11_each_version_through_the_queue_verifies_and_a_decision_changed_in_postgresql_is_named(
        workers, database_url, broker_url, mail_sink, tmp_path):
    exports = tmp_path / "exports"
    workers.env["VIALFLOW_EXPORT_DIR"] = str(exports)  # the workers export each run; verify compares those files
    workers.start()
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pipeline.entrypoints.cli"]
    urls = ["--database-url", database_url, "--broker-url", broker_url]

    def vialflow(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*command, *args], cwd=ROOT, env=workers.env, capture_output=True, text=True,
                              timeout=600)

    first = vialflow("run", str(EXAMPLE), "--out", str(out), *urls)
    assert first.returncode == 0, first.stderr
    changes = tmp_path / "changes.toml"
    changes.write_text('effective = "2021-06-16"\nsupply = { janssen = 300 }\nallocation = { janssen = "pro_rata" }\n',
                       encoding="utf-8")
    preview = vialflow("reallocate", SESSION, str(changes), "--out", str(out), "--database-url", database_url,
                       "--preview", "--json")
    assert preview.returncode == 0, preview.stderr
    again = vialflow("reallocate", SESSION, str(changes), "--operator", "Opératrice", "--reason", "prorata", "--out",
                     str(out), *urls)
    assert again.returncode == 0, again.stderr
    summary = json.loads((out / "runs" / "2" / "summary.json").read_text())
    assert {k: v["after"] for k, v in json.loads(preview.stdout)["fairness"].items()} == {
        k: v["fairness"] for k, v in summary["vaccines"].items()}
    for version in ("1", "2"):
        digest = json.loads((out / "runs" / version / "summary.json").read_text())["digest"]
        with_files = vialflow("verify", SESSION, "--run", version, "--out", str(out), "--database-url", database_url)
        assert with_files.returncode == 0, with_files.stdout + with_files.stderr
        assert f"version {version} {digest}" in with_files.stdout and " 0 emails" not in with_files.stdout
        alone = vialflow("verify", SESSION, "--run", version, "--database-url", database_url)
        assert alone.returncode == 0 and digest in alone.stdout, alone.stdout + alone.stderr
        assert " 0 files" not in alone.stdout and (exports / SESSION / "runs" / version / "allocations.csv").is_file()
    engine = create_engine(database_url)
    with engine.begin() as c:
        order_id = c.execute(text("SELECT d.order_id FROM decisions d JOIN runs r ON r.id = d.run_id "
                                  "WHERE r.version = 2 AND d.allocated > 0 ORDER BY d.order_id LIMIT 1")).scalar_one()
        c.execute(text("UPDATE decisions SET allocated = allocated + 1 WHERE order_id = :o AND run_id = "
                       "(SELECT id FROM runs WHERE version = 2)"), {"o": order_id})
    engine.dispose()
    exported = exports / SESSION / "runs" / "1" / "deliveries.csv"
    exported.write_text(exported.read_text().replace(",scheduled\n", ",pending\n", 1))
    moved = vialflow("verify", SESSION, "--run", "1", "--database-url", database_url)
    assert moved.returncode == 1 and "deliveries.csv row" in moved.stdout.splitlines()[0], moved.stdout
    caught = vialflow("verify", SESSION, "--database-url", database_url)
    assert caught.returncode == 1 and caught.stdout.splitlines()[0].startswith(f"{order_id}: allocated")
    unknown = vialflow("verify", "nope", "--database-url", database_url)
    assert unknown.returncode == 2 and len(unknown.stderr.splitlines()) == 1
