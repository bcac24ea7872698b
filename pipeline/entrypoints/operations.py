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


def metrics(out: Out = None, database_url: DatabaseUrl = None,
            host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
            port: Annotated[int, typer.Option(help="Port to listen on.")] = 9808) -> None:
    """Serve Prometheus metrics on /metrics, read from the database at each scrape."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import CollectorRegistry, make_wsgi_app

    from pipeline.entrypoints.metrics import Collector

    engine = _engine(out, database_url)
    registry = CollectorRegistry()
    registry.register(Collector(engine))
    served = make_wsgi_app(registry)

    def application(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"see /metrics\n"]
        return served(environ, start_response)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:  # each scrape is not worth a line
            pass

    try:
        server = make_server(host, port, application, handler_class=Quiet)
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
