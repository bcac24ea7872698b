"""Configuration: read once per process, from the environment and then the command line's flags."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

DATABASE_FILE = "vialflow.db"  # the embedded default's database, in the run folder


@dataclass(frozen=True)
class Settings:
    # The three URLs may hold passwords: never in a repr, hence never in a log line.
    database_url: str | None = field(default=None, repr=False)  # None: SQLite in the run folder
    broker_url: str | None = field(default=None, repr=False)    # None or memory://: an in-process worker
    smtp_url: str | None = field(default=None, repr=False)      # None: an SMTP server on loopback writing DIR/mail/
    mail_from: str = "Vaccination COVID-19 <ne-pas-repondre@vialflow.example.fr>"
    retry_delays: tuple[int, ...] = (30, 120, 600, 1800, 3600)  # seconds before each new SMTP attempt
    # How long an email handed to the queue, or claimed by a sender, is spoken for; past it beat
    # hands it out again (or, if it was going out, records it unknown).
    lease_seconds: int = 300
    export_dir: str | None = None    # where each run's files are exported (the deployed form)
    beat_seconds: float = 30.0       # how often beat's tick runs
    # DKIM (RFC 6376): a PEM private key (RSA or Ed25519), its selector and the signing domain.
    dkim_key_file: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    log_format: str = "plain"        # plain (key=value) or json
    log_level: str | None = None     # None: INFO for workers and beat, WARNING for the command line
    # The self-service space: sign-in with OpenID Connect (Pro Santé Connect), and the console's address
    # as people reach it (its one-time links and its redirect URI are built on it, never on a request's
    # Host header).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_metadata_url: str | None = None  # None: <issuer>/.well-known/openid-configuration
    public_url: str | None = None
    # Where the command line writes the traceback of what it says in one line (None: a file of this
    # user's under the temporary folder).
    error_log: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        log_format = (env.get("VIALFLOW_LOG_FORMAT") or cls.log_format).strip().lower()
        if log_format not in ("plain", "json"):
            raise ValueError(f"VIALFLOW_LOG_FORMAT must be plain or json, got {log_format!r}")
        return cls(_secret(env, "VIALFLOW_DATABASE_URL"), _secret(env, "VIALFLOW_BROKER_URL"),
                   _secret(env, "VIALFLOW_SMTP_URL"), env.get("VIALFLOW_MAIL_FROM") or cls.mail_from,
                   _seconds(env.get("VIALFLOW_SMTP_RETRY_DELAYS")) or cls.retry_delays,
                   _positive(env.get("VIALFLOW_LEASE_SECONDS"), "VIALFLOW_LEASE_SECONDS") or cls.lease_seconds,
                   env.get("VIALFLOW_EXPORT_DIR") or None,
                   float(_positive(env.get("VIALFLOW_BEAT_SECONDS"), "VIALFLOW_BEAT_SECONDS") or cls.beat_seconds),
                   env.get("VIALFLOW_DKIM_KEY_FILE") or None, env.get("VIALFLOW_DKIM_SELECTOR") or None,
                   env.get("VIALFLOW_DKIM_DOMAIN") or None, log_format,
                   _level(env.get("VIALFLOW_LOG_LEVEL")),
                   oidc_issuer=env.get("VIALFLOW_OIDC_ISSUER") or None,
                   oidc_client_id=env.get("VIALFLOW_OIDC_CLIENT_ID") or None,
                   oidc_client_secret=_secret(env, "VIALFLOW_OIDC_CLIENT_SECRET"),
                   oidc_metadata_url=env.get("VIALFLOW_OIDC_METADATA_URL") or None,
                   public_url=(env.get("VIALFLOW_PUBLIC_URL") or "").rstrip("/") or None,
                   error_log=env.get("VIALFLOW_ERROR_LOG") or None)

    def override(self, **values: str | None) -> "Settings":
        """Command-line options win over the environment."""
        return replace(self, **{k: v for k, v in values.items() if v})

    @property
    def error_log_path(self) -> Path:
        return Path(self.error_log) if self.error_log else \
            Path(tempfile.gettempdir()) / f"vialflow-{os.getuid()}" / "errors.log"

    @property
    def in_process(self) -> bool:
        """No broker, or an in-memory one: the tasks run in this process's own worker."""
        return not self.broker_url or self.broker_url.startswith("memory://")

    def database_for(self, out: Path) -> str:
        return self.database_url or f"sqlite:///{Path(out).resolve() / DATABASE_FILE}"

    def in_folder(self, out: Path) -> "Settings":
        """These settings with the run folder's database when no other is named."""
        return replace(self, database_url=self.database_for(out))


def _secret(env, name: str) -> str | None:
    """`NAME`, or the content of the file `NAME_FILE` names (Docker secrets), the variable winning."""
    if env.get(name):
        return env[name]
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as error:
        raise ValueError(f"{name}_FILE: cannot read {path}: {error.strerror}") from None


def _level(text: str | None) -> str | None:
    if not text:
        return None
    if text.strip().upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"VIALFLOW_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {text!r}")
    return text.strip().upper()


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
