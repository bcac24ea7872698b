"""What a worker process needs, built once per process on first use: the database engine."""

from __future__ import annotations

import datetime as dt

from celery.signals import worker_process_init
from sqlalchemy import Engine

from pipeline.settings import Settings
from pipeline.adapters.db import make_engine

_engine: Engine | None = None
_database_url: str | None = None
_smtp_url: str | None = None


def use_database(url: str) -> None:
    """Point this process's tasks at a database (the embedded runner's in-process worker)."""
    global _engine, _database_url
    if _engine is not None and url != _database_url:
        _engine.dispose()
        _engine = None
    _database_url = url


def use_smtp(url: str) -> None:
    """Point this process's email tasks at an SMTP server (the embedded runner's loopback sink)."""
    global _smtp_url
    _smtp_url = url


def smtp_target():
    from pipeline.adapters.mail.smtp import SmtpTarget

    url = _smtp_url or Settings.from_env().smtp_url
    if not url:
        raise RuntimeError("no SMTP server for the workers: set VIALFLOW_SMTP_URL")
    return SmtpTarget.from_url(url)


def engine() -> Engine:
    global _engine
    if _engine is None:
        url = _database_url or Settings.from_env().database_url
        if not url:
            raise RuntimeError("no database for the workers: set VIALFLOW_DATABASE_URL")
        _engine = make_engine(url)
    return _engine


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@worker_process_init.connect
def _fresh_engine_after_fork(**_) -> None:
    # A forked child must not share its parent's connections.
    global _engine
    _engine = None
