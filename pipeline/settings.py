"""Configuration: read once per process, from the environment and then the command line's flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

DATABASE_FILE = "vialflow.db"  # the embedded default's database, in the run folder


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None  # None: SQLite in the run folder
    broker_url: str | None = None    # None or memory://: an in-process worker over an in-memory transport
    smtp_url: str | None = None      # None: an SMTP server on loopback writing DIR/mail/
    mail_from: str = "Vaccination COVID-19 <ne-pas-repondre@vialflow.example.fr>"
    retry_delays: tuple[int, ...] = (30, 120, 600, 1800, 3600)  # seconds before each new SMTP attempt
    # How long an email handed to the queue, or claimed by a sender, is spoken for; past it beat
    # hands it out again (or, if it was going out, records it unknown).
    lease_seconds: int = 300
    export_dir: str | None = None    # where each run's files are exported (the deployed form)
    beat_seconds: float = 30.0       # how often beat's tick runs

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        return cls(env.get("VIALFLOW_DATABASE_URL") or None, env.get("VIALFLOW_BROKER_URL") or None,
                   env.get("VIALFLOW_SMTP_URL") or None, env.get("VIALFLOW_MAIL_FROM") or cls.mail_from,
                   _seconds(env.get("VIALFLOW_SMTP_RETRY_DELAYS")) or cls.retry_delays,
                   _positive(env.get("VIALFLOW_LEASE_SECONDS"), "VIALFLOW_LEASE_SECONDS") or cls.lease_seconds,
                   env.get("VIALFLOW_EXPORT_DIR") or None,
                   float(_positive(env.get("VIALFLOW_BEAT_SECONDS"), "VIALFLOW_BEAT_SECONDS") or cls.beat_seconds))

    def override(self, **values: str | None) -> "Settings":
        """Command-line options win over the environment."""
        return replace(self, **{k: v for k, v in values.items() if v})

    @property
    def in_process(self) -> bool:
        """No broker, or an in-memory one: the tasks run in this process's own worker."""
        return not self.broker_url or self.broker_url.startswith("memory://")

    def database_for(self, out: Path) -> str:
        return self.database_url or f"sqlite:///{Path(out).resolve() / DATABASE_FILE}"

    def in_folder(self, out: Path) -> "Settings":
        """These settings with the run folder's database when no other is named."""
        return replace(self, database_url=self.database_for(out))


def _seconds(text: str | None) -> tuple[int, ...] | None:
    """`30,120,600` -> (30, 120, 600)."""
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"VIALFLOW_SMTP_RETRY_DELAYS must be seconds separated by commas, got {text!r}") from None


def _positive(text: str | None, name: str) -> int | None:
    if not text:
        return None
    if not text.strip().isdigit() or int(text) == 0:
        raise ValueError(f"{name} must be a whole number of seconds above 0, got {text!r}")
    return int(text)
