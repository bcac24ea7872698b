"""`vialflow users ...` and `vialflow console`: the console's commands, attached to the CLI by `install`."""

from __future__ import annotations

import datetime as dt
import getpass
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


Name = Annotated[str, typer.Argument(help="The account's name (letters, digits, . _ -).")]


def _password() -> str:
    """On a terminal, asked twice without echo; piped, the first line of standard input."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Mot de passe (12 caractères au moins) : ")
    if getpass.getpass("Le même, encore une fois : ") != first:
        _fail("the two passwords typed differ: nothing was changed")
    return first


def _actor() -> str:
    """Who ran the command, for the journal: the system account's name."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def _account_command(out: Path | None, database_url: str | None, change, *args) -> None:
    """Run `change(engine, *args, now, actor)` on the database, a refusal said in one line."""
    from pipeline.adapters.db import make_engine, migrate

    engine = make_engine(_settings(out, database_url).database_url)
    migrate(engine)
    try:
        change(engine, *args, dt.datetime.now(dt.timezone.utc), _actor())
    except ServiceError as error:
        _fail(str(error))


@users_app.command("add")
def add(name: Name, role: Annotated[str, typer.Option(help="support, operator or admin.")],
        out: Out = None, database_url: DatabaseUrl = None) -> None:
    """Create a console account; its password is asked twice on a terminal, else read from standard input."""
    from pipeline.services.accounts import add_user

    _settings(out, database_url)  # no database: said before the password is asked
    _account_command(out, database_url, add_user, name, role, _password())
    typer.echo(f"user {name} ({role}) created")


@users_app.command("password")
def password(name: Name, out: Out = None, database_url: DatabaseUrl = None) -> None:
    """Give an account a new password (read as `add` reads it); its open sessions end."""
    from pipeline.services.accounts import change_password

    _settings(out, database_url)
    _account_command(out, database_url, change_password, name, _password())
    typer.echo(f"user {name}: password changed, its sessions ended")


@users_app.command("disable")
def disable(name: Name, out: Out = None, database_url: DatabaseUrl = None) -> None:
    """Disable an account: it can no longer sign in, and its open sessions end at once."""
    from pipeline.services.accounts import set_disabled

    _account_command(out, database_url, set_disabled, name, True)
    typer.echo(f"user {name} disabled")


@users_app.command("enable")
def enable(name: Name, out: Out = None, database_url: DatabaseUrl = None) -> None:
    """Enable a disabled account again."""
    from pipeline.services.accounts import set_disabled

    _account_command(out, database_url, set_disabled, name, False)
    typer.echo(f"user {name} enabled")


@users_app.command("unlock")
def unlock(name: Name, out: Out = None, database_url: DatabaseUrl = None) -> None:
    """Forget the refused sign-ins counted against an account, from every address."""
    from pipeline.services.accounts import unlock as forget

    _account_command(out, database_url, forget, name)
    typer.echo(f"user {name}: refused sign-ins forgotten")


def console(out: Out = None, database_url: DatabaseUrl = None,
            broker_url: Annotated[Optional[str], typer.Option(help="Celery broker of the workers (env VIALFLOW_BROKER_URL); default: an in-process worker.")] = None,
            smtp_url: Annotated[Optional[str], typer.Option(help="SMTP server for the in-process worker (env VIALFLOW_SMTP_URL); default: a loopback server writing DIR/mail/.")] = None,
            host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
            port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
            forwarded_allow_ips: Annotated[Optional[str], typer.Option(help="Addresses of the TLS reverse proxy whose X-Forwarded-For and X-Forwarded-Proto are trusted.")] = None,
            sign_in_slots: Annotated[int, typer.Option(min=1, max=64, help="Password checks at once (argon2id holds 64 MiB each); sign-ins beyond them get 503 at once.")] = 4) -> None:
    """Serve the French web console (support, operators, admins) over the pipeline's database."""
    import uvicorn

    from pipeline.adapters.db import make_engine, migrate

    from .app import create_app
    from .workers import Workers

    settings = _settings(out, database_url, broker_url, smtp_url)
    provider = None
    if settings.oidc_issuer:
        from pipeline.adapters.oidc import Provider

        if not settings.oidc_client_id or not settings.oidc_client_secret:
            _fail("VIALFLOW_OIDC_ISSUER is set without VIALFLOW_OIDC_CLIENT_ID and VIALFLOW_OIDC_CLIENT_SECRET "
                  "(or VIALFLOW_OIDC_CLIENT_SECRET_FILE): set all three, or none")
        provider = Provider(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret,
                            metadata_url=settings.oidc_metadata_url)
    engine = make_engine(settings.database_url)
    migrate(engine)
    try:
        workers = Workers(settings, (out / "mail") if out is not None else None)
    except ServiceError as error:  # the DKIM key cannot be used
        _fail(str(error))
    public_url = settings.public_url or f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    typer.echo(f"vialflow console on http://{host if ':' not in host else f'[{host}]'}:{port}/ (Ctrl-C to stop)", err=True)
    uvicorn.run(create_app(engine, workers, out, settings.mail_from, sign_in_slots, provider, public_url),
                host=host, port=port,
                proxy_headers=bool(forwarded_allow_ips),
                forwarded_allow_ips=forwarded_allow_ips or "127.0.0.1", server_header=False, access_log=False,
                log_level="warning")


def install(app: typer.Typer) -> None:
    """Attach `users` and `console` to the `vialflow` command."""
    app.add_typer(users_app, name="users")
    app.command("console")(console)
