"""`vialflow metrics`: what Prometheus scrapes agrees with summary.json, after a run and after a reallocation."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .conftest import vialflow


@contextlib.contextmanager
def metrics_server(folder: Path):
    """`vialflow metrics --out folder` on a free loopback port; yields a function that scrapes it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIALFLOW_")}
    server = subprocess.Popen([sys.executable, "-m", "pipeline.entrypoints.cli", "metrics", "--out", str(folder),
                               "--host", "127.0.0.1", "--port", str(port)], env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/metrics"

    def scrape() -> dict[str, dict[tuple, float]]:
        text = urllib.request.urlopen(url, timeout=30).read().decode()
        return {family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
                for family in text_string_to_metric_families(text)}

    scrape.url = url
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                scrape()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "the metrics server did not answer"
                time.sleep(0.2)
        yield scrape
    finally:
        server.terminate()
        server.wait(timeout=30)


def value(found: dict, name: str, **labels) -> float:
    return found[name].get(tuple(sorted(labels.items())), 0)


def agree_with_summary(found: dict, summary: dict) -> None:
    session, run = summary["session"], str(summary["run"])
    for vaccine, figures in summary["vaccines"].items():
        for stage, key in (("requested", "requested"), ("allocated", "allocated"),
                           ("scheduled", "scheduled_vials"), ("pending", "pending_vials")):
            assert value(found, "vialflow_vials", session=session, run=run, vaccine=vaccine, stage=stage) \
                == figures[key], (vaccine, stage)
        lines = {labels: n for labels, n in found["vialflow_lines"].items()
                 if dict(labels)["session"] == session and dict(labels)["run"] == run
                 and dict(labels)["vaccine"] == vaccine}
        assert sum(lines.values()) == figures["lines"]
        for status, by_reason in (("refused", figures["refused_lines"]), ("partial", figures["partial_lines"])):
            for reason, n in by_reason.items():
                assert value(found, "vialflow_lines", session=session, run=run, vaccine=vaccine, status=status,
                             reason=reason) == n
    for state in ("sent", "failed", "unknown"):
        assert value(found, "vialflow_emails", session=session, run=run, state=state) == summary["emails"][state]
    waiting = sum(n for labels, n in found["vialflow_emails"].items() if dict(labels)["run"] == run
                  and dict(labels)["session"] == session and dict(labels)["state"] not in ("sent", "failed", "unknown"))
    assert waiting == summary["emails"]["waiting"]


def test_metrics_agree_with_summary_json_after_a_run_and_after_a_reallocation(fixture_run, tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(fixture_run, folder)
    first = json.loads((folder / "runs" / "1" / "summary.json").read_text(encoding="utf-8"))
    with metrics_server(folder) as scrape:
        found = scrape()
        agree_with_summary(found, first)
        assert value(found, "vialflow_emails", session="2021-06-14", run="1", state="sent") > 0
        assert {dict(k)["step"] for k in found["vialflow_step_last_duration_seconds"]} >= {
            "allocate", "schedule", "prepare_confirmations", "send"}
        assert not found["vialflow_oldest_waiting_email_seconds"]  # every email settled

        changes = tmp_path / "changes.toml"
        changes.write_text('effective = "2021-06-16"\nsupply = { moderna = 80 }\n', encoding="utf-8")
        done = vialflow("reallocate", "2021-06-14", str(changes), "--out", str(folder), "--operator", "Ops",
                        "--reason", "plus de Moderna")
        assert done.returncode == 0, done.stderr
        second = json.loads((folder / "runs" / "2" / "summary.json").read_text(encoding="utf-8"))
        found = scrape()  # the same server: each scrape reads the database again
        agree_with_summary(found, second)
        agree_with_summary(found, first)
        assert {dict(k)["run"] for k in found["vialflow_step_last_duration_seconds"]} == {"2"}


def test_metrics_without_a_database_is_one_line_and_a_failure(tmp_path):
    done = vialflow("metrics", "--out", str(tmp_path))
    # No database named is a slip on the command line (exit 2), as for every command that reads one.
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "holds no run" in done.stderr


def test_the_metrics_server_answers_beside_a_half_open_connection_and_names_no_server_version(fixture_run, tmp_path):
    """Threaded, with a timeout on each connection: a client that connects and says nothing holds
    up no scrape, and is dropped; no `Server:` header tells which Python serves."""
    folder = tmp_path / "out"
    shutil.copytree(fixture_run, folder)
    with metrics_server(folder) as scrape:
        port = int(scrape.url.split(":")[2].split("/")[0])
        silent = socket.create_connection(("127.0.0.1", port))
        silent.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest
        started = time.monotonic()
        with urllib.request.urlopen(scrape.url, timeout=5) as answer:
            assert answer.status == 200 and answer.headers.get("Server") is None
        assert time.monotonic() - started < 5
        try:
            urllib.request.urlopen(scrape.url.replace("/metrics", "/elsewhere"), timeout=5)
            raise AssertionError("a path other than /metrics was served")
        except urllib.error.HTTPError as error:
            assert error.code == 404 and error.headers.get("Server") is None
        silent.settimeout(30)
        assert silent.recv(1024) == b""  # closed by the server after its timeout
        silent.close()
