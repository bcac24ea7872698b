"""`vialflow metrics` and `vialflow purge`: the operations commands, registered on the CLI by cli.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipeline.services import ServiceError
from pipeline.settings import Settings

from .options import database_url as database_url_of

Out = Annotated[Optional[Path], typer.Option("--out", help="Folder of a run (its database).")]
DatabaseUrl = Annotated[Optional[str], typer.Option(help="SQLAlchemy URL (env VIALFLOW_DATABASE_URL).")]


def register(app: typer.Typer) -> None:
    app.command()(metrics)
    app.command()(purge)


SCRAPE_TIMEOUT = 10  # seconds a connection may take to send its request or read the answer


def metrics(out: Out = None, database_url: DatabaseUrl = None,
            host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
            port: Annotated[int, typer.Option(help="Port to listen on.")] = 9808) -> None:
    """Serve Prometheus metrics on /metrics, read from the database at each scrape."""
    from http.server import ThreadingHTTPServer

    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import MetricsHandler

    from pipeline.entrypoints.metrics import Collector

    engine = _engine(out, database_url)
    registry = CollectorRegistry()
    registry.register(Collector(engine))

    class Handler(MetricsHandler):
        """prometheus_client's handler, on /metrics only, with a timeout on each connection (a
        half-open one is dropped, and with a thread per connection never holds up a scrape) and
        no `Server:` header naming the Python version."""

        timeout = SCRAPE_TIMEOUT

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404, explain="see /metrics")
                return
            super().do_GET()

        def send_response(self, code: int, message: str | None = None) -> None:
            self.log_request(code)
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())

    Handler.registry = registry
    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as error:
        _fail(f"cannot listen on {host}:{port}: {error.strerror}")
    typer.echo(f"metrics on http://{host}:{server.server_port}/metrics", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def purge(session: Annotated[str, typer.Argument(help="Session id.")],
          out: Out = None, database_url: DatabaseUrl = None,
          keep_days: Annotated[int, typer.Option(help="Days to keep personal data after the last run's emails settled.")] = 90,
          operator: Annotated[str, typer.Option(help="Who purges (kept in the audit log).")] = "",
          reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "") -> None:
    """Blank the names and email addresses of a settled session's registers, once past its retention."""
    from pipeline.services.purge import purge_session

    try:
        done = purge_session(_engine(out, database_url), session, keep_days, operator, reason,
                             dt.datetime.now(dt.timezone.utc), mail_folder=(out / "mail") if out else None)
    except ServiceError as error:
        _fail(str(error))
    typer.echo(f"session {session}: {done['pharmacies']} officines and {done['professionals']} professionals "
               f"purged, {done['messages']} stored messages removed")


def _engine(out: Path | None, database_url: str | None):
    from pipeline.adapters.db import make_engine

    try:
        settings = Settings.from_env().override(database_url=database_url)
    except ValueError as error:
        _fail(str(error))
    return make_engine(database_url_of(settings, out))


def _fail(message: str) -> None:
    typer.echo(f"vialflow: {message}", err=True)
    raise typer.Exit(1)
