"""`vialflow users add` and `vialflow console`: the console's two commands, attached to the CLI by `install`."""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipeline.services import ServiceError
from pipeline.settings import Settings

from ..options import database_url as database_url_of

users_app = typer.Typer(help="Accounts of the web console.", no_args_is_help=True)

Out = Annotated[Optional[Path], typer.Option("--out", help="Folder of a run (its SQLite database).")]
DatabaseUrl = Annotated[Optional[str], typer.Option(help="SQLAlchemy URL (env VIALFLOW_DATABASE_URL).")]


def _fail(message: str) -> None:
    typer.echo(f"vialflow: {message}", err=True)
    raise typer.Exit(1)


def _settings(out: Path | None, database_url: str | None, broker_url: str | None = None,
              smtp_url: str | None = None) -> Settings:
    try:
        settings = Settings.from_env().override(database_url=database_url, broker_url=broker_url, smtp_url=smtp_url)
    except ValueError as error:
        _fail(str(error))
    return replace(settings, database_url=database_url_of(settings, out))


@users_app.command("add")
def add(name: Annotated[str, typer.Argument(help="The account's name (letters, digits, . _ -).")],
        role: Annotated[str, typer.Option(help="support, operator or admin.")],
        out: Out = None, database_url: DatabaseUrl = None) -> None:
    """Create a console account; its password is read from standard input (one line)."""
    from pipeline.adapters.db import make_engine, migrate
    from pipeline.services.accounts import add_user

    settings = _settings(out, database_url)
    password = sys.stdin.readline().rstrip("\r\n")
    engine = make_engine(settings.database_url)
    migrate(engine)
    try:
        add_user(engine, name, role, password, dt.datetime.now(dt.timezone.utc))
    except ServiceError as error:
        _fail(str(error))
    typer.echo(f"user {name} ({role}) created")


def console(out: Out = None, database_url: DatabaseUrl = None,
            broker_url: Annotated[Optional[str], typer.Option(help="Celery broker of the workers (env VIALFLOW_BROKER_URL); default: an in-process worker.")] = None,
            smtp_url: Annotated[Optional[str], typer.Option(help="SMTP server for the in-process worker (env VIALFLOW_SMTP_URL); default: a loopback server writing DIR/mail/.")] = None,
            host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
            port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
            forwarded_allow_ips: Annotated[Optional[str], typer.Option(help="Addresses of the TLS reverse proxy whose X-Forwarded-For and X-Forwarded-Proto are trusted.")] = None) -> None:
    """Serve the French web console (support, operators, admins) over the pipeline's database."""
    import uvicorn

    from pipeline.adapters.db import make_engine, migrate

    from .app import create_app
    from .workers import Workers

    settings = _settings(out, database_url, broker_url, smtp_url)
    engine = make_engine(settings.database_url)
    migrate(engine)
    workers = Workers(settings, (out / "mail") if out is not None else None)
    typer.echo(f"vialflow console on http://{host if ':' not in host else f'[{host}]'}:{port}/ (Ctrl-C to stop)", err=True)
    uvicorn.run(create_app(engine, workers, out, settings.mail_from), host=host, port=port, proxy_headers=bool(forwarded_allow_ips),
                forwarded_allow_ips=forwarded_allow_ips or "127.0.0.1", server_header=False, access_log=False,
                log_level="warning")


def install(app: typer.Typer) -> None:
    """Attach `users` and `console` to the `vialflow` command."""
    app.add_typer(users_app, name="users")
    app.command("console")(console)
