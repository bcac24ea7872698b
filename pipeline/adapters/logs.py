"""Structured log lines: one per event, key=value or JSON, with session, run, task and step.

Configured once per process (bootstrap.configure_logging). Whatever a call site passes, the
formatter strips email addresses and RPPS-shaped numbers from the line, tracebacks included: a
person's address or RPPS never reaches a log; names are never passed to a log call at all.
Libraries that log rows or envelopes (SQLAlchemy's engine, aiosmtpd) are held at WARNING.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import sys
import time
from pathlib import Path

from pipeline.adapters.mail.transaction import without_addresses

log = logging.getLogger("vialflow")
FIELDS = ("session", "run", "run_id", "task", "step", "event", "duration_s")
_RPPS = re.compile(r"(?<!\d)\d{11}(?!\d)")
# Loggers that would write row values or envelope addresses at DEBUG or INFO (and matplotlib's font search).
QUIET = ("sqlalchemy.engine", "sqlalchemy.pool", "mail.log", "aiosmtplib", "matplotlib")


def scrub(text: str) -> str:
    return _RPPS.sub("<rpps>", without_addresses(text))


class Formatter(logging.Formatter):
    """`json`: one JSON object a line; otherwise `time level logger key=value ... message`."""

    def __init__(self, kind: str = "plain") -> None:
        super().__init__()
        self.json = kind == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields = {"time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
                  "level": record.levelname, "logger": record.name}
        task = _task_id()
        if task and not hasattr(record, "task"):
            fields["task"] = task
        for key in (*FIELDS, "counts"):
            if getattr(record, key, None) is not None:
                fields[key] = getattr(record, key)
        fields["message"] = record.getMessage()
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        fields = {key: scrub(value) if isinstance(value, str) else value for key, value in fields.items()}
        if self.json:
            return json.dumps(fields, ensure_ascii=False, default=lambda value: scrub(str(value)))
        head = " ".join(f"{key}={_plain(value)}" for key, value in fields.items() if key not in ("message", "error"))
        line = f"{head} message={_plain(fields['message'])}"
        return scrub(line) + ("\n" + fields["error"] if "error" in fields else "")


def _plain(value) -> str:
    if isinstance(value, dict):
        value = ",".join(f"{k}:{v}" for k, v in value.items())
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (not text or any(c in text for c in ' ="\n')) else text


def _task_id() -> str | None:
    """The Celery task this line is logged from, if any."""
    from celery import current_task

    return getattr(current_task.request, "id", None) if current_task else None


class _Handler(logging.StreamHandler):
    """Writes to `stream`, or to whatever sys.stderr is when the line is written."""

    def __init__(self, stream=None) -> None:
        super().__init__(stream or sys.stderr)
        self._follow = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._follow:
            self.stream = sys.stderr
        super().emit(record)


def configured() -> bool:
    return any(isinstance(h, _Handler) for h in logging.getLogger().handlers)


class _Tracebacks(logging.FileHandler):
    """The records that carry a traceback, whole, appended to a file only its owner reads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600, exist_ok=True)
        super().__init__(path, encoding="utf-8", delay=True)
        self.addFilter(lambda record: record.exc_info is not None)


def configure(kind: str = "plain", level: str = "INFO", stream=None, tracebacks: Path | None = None) -> None:
    """The root logger writes structured lines to `stream` (default stderr) at `level`, replacing
    an earlier configuration of this module. With `tracebacks` (a command run in a terminal), a
    record carrying a traceback goes whole to that file and not to `stream`: the command says in
    one line what failed and where its traceback is."""
    handlers: list[logging.Handler] = [_Handler(stream)]
    if tracebacks is not None:
        handlers[0].addFilter(lambda record: record.exc_info is None)
        handlers.append(_Tracebacks(tracebacks))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, (_Handler, _Tracebacks))]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(Formatter(kind))
        root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def step(name: str, **context):
    """Log a step's start and end (INFO) with its duration; the block may fill the yielded dict
    with counts. A failure is logged (ERROR) with its type only, then raised again."""
    counts: dict = {}
    log.info("start", extra={**context, "step": name, "event": "start"})
    started = time.perf_counter()
    try:
        yield counts
    except Exception as error:
        log.error("failed: %s", type(error).__name__,
                  extra={**context, "step": name, "event": "failed",
                         "duration_s": round(time.perf_counter() - started, 3)})
        raise
    log.info("end", extra={**context, "step": name, "event": "end", "counts": counts or None,
                           "duration_s": round(time.perf_counter() - started, 3)})
