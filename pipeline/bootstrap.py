"""Wiring, once per process: its settings in; the engine, the SMTP target and the broker out.

Each entry point reads its settings once and wires the process here: a CLI command, the
embedded runner before it starts its in-process worker, a `celery -A workers` worker at start
(and each pool child after the fork), beat. Nothing connects at import time; the engine is
built on first use, so a process that never touches the database never opens it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from pipeline.adapters.db import make_engine
from pipeline.adapters.mail.smtp import SmtpTarget
from pipeline.services import ServiceError
from pipeline.settings import Settings


@dataclass
class Wiring:
    """What the tasks of one process use."""

    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            if not self.settings.database_url:
                raise ServiceError("no database: set VIALFLOW_DATABASE_URL (or give --database-url)")
            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def smtp_target(self) -> SmtpTarget:
        if not self.settings.smtp_url:
            raise ServiceError("no SMTP server for the workers: set VIALFLOW_SMTP_URL")
        return SmtpTarget.from_url(self.settings.smtp_url)

    def after_fork(self) -> None:
        """A forked pool child must not share its parent's connections."""
        self._engine = None


_current: Wiring | None = None


def wire(settings: Settings) -> Wiring:
    """Wire this process from `settings` (replacing an earlier wiring and its engine)."""
    global _current
    if _current is not None and _current._engine is not None:
        _current._engine.dispose()
    _current = Wiring(settings)
    return _current


def wire_once(read) -> Wiring:
    """Wire from `read()` unless an entry point has wired this process already (the embedded
    runner wires before it starts its worker, and its settings win)."""
    return _current if _current is not None else wire(read())


def current() -> Wiring:
    if _current is None:
        raise ServiceError("this process is not wired: start workers with `celery -A workers worker`")
    return _current


def celery_settings(settings: Settings) -> dict:
    """The Celery configuration that depends on the settings."""
    return {"broker_url": settings.broker_url or "memory://localhost/",
            "beat_schedule": {"sessions-due": {"task": "schedules.tick", "schedule": settings.beat_seconds}}}
