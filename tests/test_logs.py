"""Logs that help and leak nothing: a whole session at DEBUG, SMTP refusals that echo the recipient's
address included, holds no address, name or RPPS of the registers; each step says its start, end,
duration and counts with its session, run, task and step."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.adapters import logs
from pipeline.adapters.mail.sink import DISCONNECT, MailSink
from pipeline.settings import Settings

from .conftest import FIXTURE

STEPS = ("close", "allocate", "schedule", "prepare_confirmations", "send")


def personal_data(scenario: Path) -> list[str]:
    """Every email address, name and RPPS of the scenario's registers."""
    found = []
    for name, fields in (("pharmacies.csv", ("name", "email")), ("professionals.csv", ("rpps", "name", "email"))):
        with open(scenario / name, encoding="utf-8", newline="") as rows:
            for row in csv.DictReader(rows):
                found += [row[field] for field in fields if row[field]]
    return found


def vialflow(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VIALFLOW_")} | env
    return subprocess.run([sys.executable, "-m", "pipeline.entrypoints.cli", *args], capture_output=True, text=True,
                          env=environ, timeout=300)


def assert_no_personal_data(output: str, scenario: Path) -> None:
    leaked = [value for value in personal_data(scenario) if value in output]
    assert not leaked, f"{len(leaked)} personal values in the logs, e.g. {leaked[:3]}"
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.-]+", output.replace("ne-pas-repondre@vialflow.example.fr", ""))


def test_a_whole_session_at_debug_logs_each_step_and_no_address_name_or_rpps(tmp_path):
    out = tmp_path / "out"
    run = vialflow("run", str(FIXTURE), "--out", str(out), VIALFLOW_LOG_LEVEL="DEBUG")
    assert run.returncode == 0, run.stderr
    changes = tmp_path / "changes.toml"
    changes.write_text('effective = "2021-06-16"\nsupply = { moderna = 80 }\n', encoding="utf-8")
    again = vialflow("reallocate", "2021-06-14", str(changes), "--out", str(out), "--operator", "Ops",
                     "--reason", "plus de Moderna", VIALFLOW_LOG_LEVEL="DEBUG")
    assert again.returncode == 0, again.stderr
    output = run.stdout + run.stderr + again.stdout + again.stderr
    assert "level=DEBUG" in output  # DEBUG really was on
    # No DKIM key, but the emails go to the loopback server writing DIR/mail/: nothing to say of signing
    # (a worker with a real SMTP server says it once, test_a_worker_without_a_key_says_so_once...).
    assert "emails are not signed" not in run.stderr
    assert_no_personal_data(output, FIXTURE)
    for version, lines in ((1, run.stderr), (2, again.stderr)):
        for step in STEPS[1:]:
            end = re.search(rf"^.*run={version} .*step={step} event=end duration_s=[0-9.]+ counts=\S+.*$", lines,
                            re.M)
            assert end, (version, step)
            assert "session=2021-06-14" in end.group(0) and re.search(r"task=[0-9a-f-]{36}", end.group(0))
            assert re.search(rf"^.*run={version} .*step={step} event=start", lines, re.M)


def test_smtp_refusals_that_echo_the_address_are_logged_without_it_in_json(tmp_path):
    tries: dict[bytes, int] = {}

    def script(message: bytes) -> str | None:
        recipient = re.search(rb"X-Vialflow-Recipient: (\S+)", message).group(1)
        address = re.search(rb"(?m)^To: .*<([^>]+)>", message.replace(b"\r\n ", b" ")).group(1).decode()
        tries[recipient] = tries.get(recipient, 0) + 1
        number = int(recipient[-2:])
        if number % 4 == 0:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if number % 4 == 1 and tries[recipient] == 1:
            return f"451 4.7.1 <{address}>: greylisted, try again later"
        if number % 4 == 2 and tries[recipient] == 1:
            return DISCONNECT
        return None

    with MailSink(None, script=script) as sink:
        done = vialflow("run", str(FIXTURE), "--out", str(tmp_path / "out"), "--smtp-url", sink.url,
                        VIALFLOW_LOG_LEVEL="DEBUG", VIALFLOW_LOG_FORMAT="json", VIALFLOW_SMTP_RETRY_DELAYS="1")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["emails"]["failed"] and summary["emails"]["unknown"]
    records = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert len(records) == len([line for line in done.stderr.splitlines() if line.strip()])  # every line is JSON
    refusals = [r for r in records if r["logger"] == "vialflow" and "email " in r["message"]]
    assert any("550 5.1.1 <address>" in r["message"] for r in refusals)
    assert any("451 4.7.1 <address>" in r["message"] for r in refusals)
    assert_no_personal_data(done.stdout + done.stderr, FIXTURE)
    dkim = [r for r in records if r.get("event") == "dkim"]
    assert len(dkim) == 1 and "emails are not signed" in dkim[0]["message"]  # a real SMTP server, no key: once


def test_secrets_never_show_in_the_settings_or_the_logs(tmp_path, capsys):
    secret = tmp_path / "smtp_url"
    secret.write_text("smtps://user:s3cr3t-pass@smtp.example.fr:465\n", encoding="utf-8")
    settings = Settings.from_env({"VIALFLOW_SMTP_URL_FILE": str(secret),
                                  "VIALFLOW_DATABASE_URL": "postgresql+psycopg://app:db-s3cret@db/vialflow"})
    assert settings.smtp_url == "smtps://user:s3cr3t-pass@smtp.example.fr:465"
    assert "s3cr3t" not in repr(settings)


def test_a_secret_file_that_cannot_be_read_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="VIALFLOW_BROKER_URL_FILE: cannot read"):
        Settings.from_env({"VIALFLOW_BROKER_URL_FILE": str(tmp_path / "missing")})


def test_the_formatter_strips_addresses_and_rpps_even_from_tracebacks():
    import logging

    try:
        raise ValueError("invalid email address 'camille.morel@sante.example.fr' for 10018938356")
    except ValueError:
        import sys as system
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed for %s", ("a.b@c.example",),
                                   system.exc_info())
    for style in ("plain", "json"):
        line = logs.Formatter(style).format(record)
        assert "@" not in line.replace("<address>", "") and "10018938356" not in line
        assert "<address>" in line and "<rpps>" in line
