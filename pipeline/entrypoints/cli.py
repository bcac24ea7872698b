"""The `vialflow` command: translates arguments into one use case and its errors into one line.

One module, over 300 lines: every subcommand, each a few lines from its options to one service call, sharing
the options' help, the settings read once and the one-line failure (the console's and the operations'
commands are beside it, in console/commands.py and operations.py)."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipeline.adapters.files.scenario import ScenarioError
from pipeline.entrypoints import operations, options
from pipeline.entrypoints.console import commands as console_commands
from pipeline.domain.vocabulary import EmailState
from pipeline.services import ServiceError
from pipeline.settings import Settings

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "2021-06-14"

app = typer.Typer(help="vialflow: allocation of national vaccine ordering sessions (DGS-URGENT 2021-60).",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
fixtures_app = typer.Typer(help="Scenario fixtures.", no_args_is_help=True)
app.add_typer(fixtures_app, name="fixtures")
operations.register(app)  # metrics, purge
console_commands.install(app)  # `vialflow users add` and `vialflow console`

DatabaseUrl = Annotated[Optional[str], typer.Option(help="SQLAlchemy URL (env VIALFLOW_DATABASE_URL); default: SQLite in DIR.")]
BrokerUrl = Annotated[Optional[str], typer.Option(help="Celery broker URL (env VIALFLOW_BROKER_URL); default: in-process worker.")]
Timeout = Annotated[float, typer.Option(help="Give up (exit 1) when the run and its emails are not done within SECONDS; a rerun resumes.", min=1)]
SmtpUrl = Annotated[Optional[str], typer.Option(help="smtp:// or smtps:// URL (env VIALFLOW_SMTP_URL); default: a loopback server writing DIR/mail/.")]


def _settings(**flags: str | None) -> Settings:
    """This invocation's settings: the environment, read once here, under the command's own flags."""
    from pipeline.bootstrap import configure_logging

    try:
        settings = Settings.from_env().override(**flags)
    except ValueError as error:
        fail(str(error))
    configure_logging(settings, default="WARNING", tracebacks=not _debug)
    return settings


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"vialflow: {message}", err=True)
    raise typer.Exit(code)


VIEW_FAILED = 5  # exit status of a run whose data files are written but a view (report.html) is not
_debug = False  # --debug: an unexpected error shows its traceback instead of writing it to the error log


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"vialflow {version('vialflow')}")
        raise typer.Exit(0)


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                   help="Print vialflow's version and exit.")] = False,
             debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an unexpected error here "
                                                 "instead of writing it to the error log.")] = False) -> None:
    """vialflow: allocation of national vaccine ordering sessions (DGS-URGENT 2021-60)."""
    global _debug
    _debug = debug


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@app.command()
def run(scenario: Annotated[Path, typer.Argument(help="Scenario folder (session.toml, registers, orders.csv).")],
        out: Annotated[Path, typer.Option("--out", help="Output folder.")],
        database_url: DatabaseUrl = None, broker_url: BrokerUrl = None, smtp_url: SmtpUrl = None,
        timeout: Timeout = 3600) -> None:
    """Run the whole pipeline on one scenario now: load, close, allocate, schedule, write outputs."""
    from pipeline.entrypoints.runner import run_scenario

    settings = _settings(database_url=database_url, broker_url=broker_url, smtp_url=smtp_url)
    try:
        written = run_scenario(scenario, out, settings, now(), timeout)
    except (ScenarioError, ServiceError) as error:
        fail(str(error))
    _report(written, out, settings)


@app.command()
def reallocate(session: Annotated[str, typer.Argument(help="Session id.")],
               changes: Annotated[Path, typer.Argument(help="Changes file (TOML): effective, supply, cancel, depot_days, redistribution.")],
               operator: Annotated[str, typer.Option(help="Who asks for it (kept with the run).")] = "",
               reason: Annotated[str, typer.Option(help="Why (kept with the run).")] = "",
               out: Annotated[Path, typer.Option("--out", help="Folder of an earlier run.")] = Path("."),
               database_url: DatabaseUrl = None, broker_url: BrokerUrl = None, smtp_url: SmtpUrl = None,
               preview: Annotated[bool, typer.Option("--preview", help="Say what it would change; write nothing.")] = False,
               as_json: Annotated[bool, typer.Option("--json", help="With --preview: one JSON object.")] = False,
               timeout: Timeout = 3600) -> None:
    """R11: re-run allocation and scheduling of a closed session with changes; a new run version."""
    from pipeline.adapters.files.changes import read_changes
    from pipeline.entrypoints.runner import reallocate as run_reallocation

    settings = _settings(database_url=database_url, broker_url=broker_url, smtp_url=smtp_url)
    if preview:
        from pipeline.entrypoints.views import preview_text
        from pipeline.services.reallocation import preview_reallocation

        try:
            found = preview_reallocation(_engine(out, database_url), session, read_changes(changes))
        except (ScenarioError, ServiceError) as error:
            fail(str(error))
        typer.echo(json.dumps(found, ensure_ascii=False, indent=2) if as_json else preview_text(found))
        return
    try:
        written = run_reallocation(session, changes, operator, reason, out, settings, now(), timeout)
    except (ScenarioError, ServiceError) as error:
        fail(str(error))
    _report(written, out, settings)


@app.command()
def runs(session: Annotated[str, typer.Argument(help="Session id.")],
         out: Annotated[Optional[Path], typer.Option("--out", help="Folder of a run (its database).")] = None,
         database_url: DatabaseUrl = None,
         as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False) -> None:
    """The run versions of a session: who, when, why, what changed."""
    from pipeline.entrypoints.views import runs_table
    from pipeline.services.support import list_runs

    try:
        found = list_runs(_engine(out, database_url), session)
    except ServiceError as error:
        fail(str(error))
    _show(found, runs_table, as_json)


@app.command()
def lookup(finess: Annotated[str, typer.Argument(help="The officine's FINESS number.")],
           session: Annotated[Optional[str], typer.Option(help="Only this session.")] = None,
           out: Annotated[Optional[Path], typer.Option("--out", help="Folder of a run (its database).")] = None,
           database_url: DatabaseUrl = None,
           as_json: Annotated[bool, typer.Option("--json", help="JSON instead of tables.")] = False) -> None:
    """R12, for support advisers: an officine's lines, planned deliveries and emails, per run."""
    from pipeline.domain.identifiers import FINESS, FINESS_RULE
    from pipeline.entrypoints.views import lookup_table
    from pipeline.services.support import lookup as find

    if not re.fullmatch(FINESS, finess):
        raise typer.BadParameter(f"{finess!r} is not {FINESS_RULE}", param_hint="FINESS")
    try:
        found = find(_engine(out, database_url), finess, session)
    except ServiceError as error:
        fail(str(error))
    _show(found, lookup_table, as_json)


@app.command()
def explain(order_id: Annotated[str, typer.Argument(help="The order line's id (order_id).")],
            session: Annotated[Optional[str], typer.Option(help="The session, when the id is in several.")] = None,
            version: Annotated[Optional[int], typer.Option("--run", help="Run version; default: the latest.", min=1)] = None,
            out: Annotated[Optional[Path], typer.Option("--out", help="Folder of a run (its database).")] = None,
            database_url: DatabaseUrl = None,
            as_json: Annotated[bool, typer.Option("--json", help="The explanation as one JSON object.")] = False) -> None:
    """Why a line got what it got: its rank, cap, rounding, supply and deliveries, in French."""
    from pipeline.services.explain import explain as why

    try:
        found = why(_engine(out, database_url), order_id, session, version)
    except ServiceError as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    said = " ; ".join(found["phrases"])
    typer.echo(f"Ligne {found['order_id']} (session {found['session']}, version {found['run']}) :")
    typer.echo(said[:1].upper() + said[1:] + ".")


def _engine(out: Path | None, database_url: str | None):
    from pipeline.adapters.db import make_engine

    return make_engine(options.database_url(_settings(database_url=database_url), out))


def _show(found, table, as_json: bool) -> None:
    from rich.console import Console

    if as_json:
        typer.echo(json.dumps(found, indent=2, ensure_ascii=False, default=str))
    else:
        Console().print(table(found))


@app.command()
def emails(session: Annotated[str, typer.Argument(help="Session id.")],
           version: Annotated[Optional[int], typer.Option("--run", help="Run version; default: every run.", min=1)] = None,
           state: Annotated[Optional[str], typer.Option(help="Only this state: pending, claimed, sending, retry, sent, failed, unknown.")] = None,
           out: Annotated[Optional[Path], typer.Option("--out", help="Folder of a run (its database).")] = None,
           database_url: DatabaseUrl = None, broker_url: BrokerUrl = None, smtp_url: SmtpUrl = None,
           as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
           show_addresses: Annotated[bool, typer.Option("--show-addresses", help="Show each recipient's address.")] = False,
           resend: Annotated[bool, typer.Option("--resend", help="Send the listed unknown or failed emails again.")] = False,
           operator: Annotated[str, typer.Option(help="With --resend: who decides it (recorded).")] = "",
           reason: Annotated[str, typer.Option(help="With --resend: why (recorded).")] = "",
           timeout: Timeout = 3600) -> None:
    """A session's emails by state; with --resend, send its unknown or failed ones again, deliberately."""
    from pipeline.entrypoints.runner import resend_emails
    from pipeline.services import confirmations, runs as run_service

    if state is not None and EmailState.of(state) is None:
        raise typer.BadParameter(f"{state!r} is not a state of an email: one of {', '.join(EmailState)}",
                                 param_hint="'--state'")
    engine = _engine(out, database_url)
    try:
        run = run_service.run_id(engine, session, version) if version else None
        if resend:
            settings = _settings(database_url=database_url, broker_url=broker_url, smtp_url=smtp_url)
            counts = resend_emails(engine, settings, out or Path("."), session, run, state, operator, reason, now(),
                                   timeout)
            typer.echo(", ".join(f"{EmailState.labelled(s)} : {n}" for s, n in sorted(counts.items()))
                       or f"aucun email en {EmailState.FAILED.short} ou d'{EmailState.UNKNOWN.short} à renvoyer")
            return
        listed = confirmations.outbox_listing(engine, session, run, state, addresses=show_addresses)
    except ServiceError as error:
        fail(str(error))
    listed = listed.drop(columns=["id", "message_id"])
    if as_json:
        typer.echo(listed.to_json(orient="records", lines=True, date_format="iso", force_ascii=False).rstrip())
        return
    from rich.console import Console

    from pipeline.entrypoints.views import emails_table

    Console().print(emails_table(session, listed))


@app.command()
def export(session: Annotated[str, typer.Argument(help="Session id.")],
           out: Annotated[Path, typer.Option("--out", help="Export folder: files land in OUT/<session>/runs/<version>/.")],
           version: Annotated[Optional[int], typer.Option("--run", help="Run version; default: the latest.", min=1)] = None,
           source: Annotated[Optional[Path], typer.Option("--from", help="Folder of a run (its database).")] = None,
           database_url: DatabaseUrl = None) -> None:
    """Write a stored run's files (allocations, deliveries, manifests, summary, report) from the database."""
    from pipeline.services.exports import export_session

    try:
        written = export_session(_engine(source, database_url), session, version, out)
    except ServiceError as error:
        fail(str(error))
    typer.echo(f"run written to {written}")


@app.command()
def verify(session: Annotated[str, typer.Argument(help="Session id.")],
           version: Annotated[Optional[int], typer.Option("--run", help="Run version; default: the latest.", min=1)] = None,
           out: Annotated[Optional[Path], typer.Option("--out", help="Folder of a run (its database, emails and files).")] = None,
           database_url: DatabaseUrl = None) -> None:
    """Derive a stored run version again from its session's frozen inputs and changes, and compare it with
    the database, its emails and its files: exit 0 when all agree, 1 naming the first line that differs."""
    from pipeline.services.verify import verify as check

    settings = _settings(database_url=database_url)
    engine = _engine(out, database_url)
    folders = [out] if out is not None else []
    if settings.export_dir:
        folders.append(Path(settings.export_dir) / session)
    try:
        verdict = check(engine, session, version, folders, settings.mail_from)
    except ServiceError as error:
        fail(str(error), 2)
    if verdict.difference is not None:
        typer.echo(f"{verdict.difference} (session {session}, version {verdict.version})")
        raise typer.Exit(1)
    compared = ", ".join(f"{n} {what}" for what, n in verdict.counts.items())
    typer.echo(f"session {session} version {verdict.version} {verdict.digest}: {compared} agree")


@app.command()
def demo(out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("vialflow-demo")) -> None:
    """`run` on the shipped fixtures of the 14 June 2021 session."""
    run(FIXTURE, out)


@app.command()
def load(scenario: Annotated[Path, typer.Argument(help="Scenario folder.")],
         database_url: DatabaseUrl = None) -> None:
    """Put a session and its orders into the database, for the deployed workers and beat."""
    from pipeline.entrypoints.runner import load_into

    settings = _settings(database_url=database_url)
    if not settings.database_url:
        fail("no database: give --database-url or set VIALFLOW_DATABASE_URL")
    try:
        session_id = load_into(scenario, settings.database_url, now())
    except (ScenarioError, ServiceError) as error:
        fail(str(error))
    typer.echo(f"session {session_id} loaded")


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    from pipeline.adapters.db import make_engine, migrate as upgrade

    settings = _settings(database_url=database_url)
    if not settings.database_url:
        fail("no database: give --database-url or set VIALFLOW_DATABASE_URL")
    upgrade(make_engine(settings.database_url))
    typer.echo("database schema is up to date")


@fixtures_app.command("generate")
def fixtures_generate(out: Annotated[Path, typer.Argument(help="Folder to write the scenario into.")],
                      seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 1,
                      pharmacies: Annotated[int, typer.Option(help="Number of officines.")] = 20_500,
                      depots: Annotated[int, typer.Option(help="Number of depots.")] = 185) -> None:
    """Write a realistic synthetic scenario of any size (deterministic)."""
    from pipeline.generator.generate import generate_scenario

    counts = generate_scenario(out, seed=seed, pharmacies=pharmacies, depots=depots)
    typer.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))


def _report(written, out: Path, settings: Settings) -> None:
    """The run's table; a view that could not be written, said in one line (exit VIEW_FAILED)."""
    from rich.console import Console

    from pipeline.entrypoints.views import summary_table

    Console(stderr=False).print(summary_table(written.summary))
    typer.echo(f"fichiers dans {out}")
    if written.view_failure:
        fail(f"every data file is written, but {written.view_failure} (its traceback is in "
             f"{settings.error_log_path}); `vialflow export` writes it again once mended", VIEW_FAILED)


def main() -> None:  # pragma: no cover - console entry point
    """The command, with every failure said in one line on stderr: a slip on the command line (exit
    2), an operational failure naming its fix (1, 3 database, 4 broker, 5 a view, 130 interrupted),
    anything unexpected naming the file its traceback went to. Never a traceback (but --debug's)."""
    from kombu.exceptions import OperationalError as BrokerError
    from sqlalchemy.exc import DBAPIError, OperationalError as DatabaseError

    from pipeline.entrypoints.runner import why

    command = typer.main.get_command(app)
    try:
        # Typer carries its own copy of click: its exceptions are typer.Exit, typer.Abort and the
        # subclasses of typer.TyperException, never click's.
        code = command.main(prog_name="vialflow", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)  # click returns an Exit's code when not standalone
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("vialflow: interrupted; nothing is lost: run the same command again to resume", err=True)
        sys.exit(130)
    except typer.TyperException as error:
        sys.exit(_slip(error))
    except DatabaseError as error:
        typer.echo(f"vialflow: the database cannot be reached or was lost ({why(error)}): check that it runs and "
                   "that --database-url (VIALFLOW_DATABASE_URL) is right, then run the same command again", err=True)
        sys.exit(3)
    except DBAPIError as error:
        typer.echo(f"vialflow: the database refused a statement ({why(error)}): is it at the schema of this "
                   "version (`vialflow migrate`)?", err=True)
        sys.exit(3)
    except (BrokerError, ConnectionError) as error:
        typer.echo(f"vialflow: the broker cannot be reached or was lost ({why(error)}): check that RabbitMQ runs "
                   "and that --broker-url (VIALFLOW_BROKER_URL) is right, then run the same command again", err=True)
        sys.exit(4)
    except OSError as error:
        typer.echo(f"vialflow: {error.strerror or error} ({error.filename or 'file'})", err=True)
        sys.exit(1)
    except Exception as error:  # noqa: BLE001 - the last resort: one line, the traceback kept in a file
        if _debug:
            raise
        typer.echo(f"vialflow: unexpected error ({type(error).__name__}); nothing more was done: its traceback is "
                   f"in {_keep_traceback(error)} (or run again with --debug)", err=True)
        sys.exit(1)


def _slip(error) -> int:
    """A slip on the command line in one line on stderr, with the usage it missed; its exit status.
    A bare `vialflow` (or group) also prints its help on stdout."""
    context = getattr(error, "ctx", None)
    if type(error).__name__ == "NoArgsIsHelpError" and context is not None:
        typer.echo(context.get_help())
        typer.echo(f"vialflow: a command is needed: {context.get_usage()}", err=True)
        return 2
    message = " ".join(error.format_message().split())
    if context is not None and hasattr(error, "format_message") and getattr(error, "exit_code", 1) == 2:
        usage = " ".join(context.get_usage().split())
        message = f"{message} ({usage}; see `{context.command_path} --help`)"
    typer.echo(f"vialflow: {message}", err=True)
    return getattr(error, "exit_code", 1)


def _keep_traceback(error: BaseException) -> str:
    """Append the error's traceback, without addresses or RPPS numbers, to this user's error log."""
    import datetime as dt
    import os
    import traceback

    from pipeline.adapters.logs import scrub

    try:
        path = Settings.from_env().error_log_path
    except ValueError:
        path = Settings().error_log_path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path, "a", encoding="utf-8", opener=lambda name, flags: os.open(name, flags, 0o600)) as log:
        log.write(f"{dt.datetime.now(dt.timezone.utc).isoformat()} vialflow {sys.argv[1] if len(sys.argv) > 1 else ''}\n"
                  f"{scrub(''.join(traceback.format_exception(error)))}\n")
    return str(path)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
