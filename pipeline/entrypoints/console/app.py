"""The console's ASGI application: routes, templates in French, security headers, sign-in."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import contextlib

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from pipeline.domain.french import french_date, number
from pipeline.domain.vocabulary import (Action, Delivery, EmailState, Injection, Kind, Policy, Reason, Role, RunStep,
                                        Status)
from pipeline.services import ServiceError
from pipeline.settings import Settings

from . import api, errors, pages, self_service
from .bounds import BODY_LONGEST
from .security import Forbidden, NotSignedIn, SignInSlots

HERE = Path(__file__).resolve().parent
PARIS = ZoneInfo("Europe/Paris")
SIGN_IN_SLOTS = 4  # password checks at once per console process: argon2id holds 64 MiB for each


@dataclass
class Console:
    """What every route uses: the database and the way to the workers."""

    engine: Engine
    workers: object  # .hand_over(run), .send_again(run), .running()
    run_folder: Path | None = None
    mail_from: str = Settings.mail_from  # the sender the emails were rebuilt with
    sign_in_slots: SignInSlots = dataclasses.field(default_factory=lambda: SignInSlots(SIGN_IN_SLOTS))
    provider: object | None = None  # the OpenID provider (adapters.oidc.Provider), None when not configured
    public_url: str = "http://127.0.0.1:8000"  # the console's address as people reach it


class ConsoleApp(Starlette):
    """Starlette with `errors.Shield` outside its ServerErrorMiddleware, so that a 500 too carries
    the security headers."""

    def build_middleware_stack(self):
        return errors.Shield(super().build_middleware_stack())


def create_app(engine: Engine, workers, run_folder: Path | None = None, mail_from: str = Settings.mail_from,
               sign_in_slots: int = SIGN_IN_SLOTS, provider=None,
               public_url: str = "http://127.0.0.1:8000") -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        with workers.running():
            yield

    app = ConsoleApp(routes=[*api.ROUTES, *pages.ROUTES, *self_service.ROUTES, Mount("/static", StaticFiles(directory=HERE / "static"),
                                                                name="static")],
                     exception_handlers={NotSignedIn: _not_signed_in, Forbidden: _forbidden,
                                         ServiceError: errors.refused, HTTPException: errors.http_error,
                                         Exception: errors.unexpected},
                     max_body_size=BODY_LONGEST, lifespan=lifespan)
    app.router.redirect_slashes = False  # errors.http_error redirects by a relative address instead
    app.state.console = Console(engine, workers, run_folder, mail_from, SignInSlots(sign_in_slots), provider,
                                public_url.rstrip("/"))
    app.state.templates = templates()
    return app


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=HERE / "templates")
    # Every code is said with the vocabulary's label; an officine recipient is an officine.
    found.env.filters.update(instant=instant, day=day, number=_number, reason=Reason.labelled, status=Status.labelled,
                             state=EmailState.labelled, injection=Injection.labelled, role=Role.labelled,
                             action=Action.labelled, step=RunStep.labelled,
                             kind=lambda k: "officine" if k == "officine" else Kind.labelled(k),
                             instant_s=lambda v: instant(v, seconds=True), policy=Policy.labelled, rate=_rate,
                             gini=lambda v: "—" if v is None else f"{v:.4f}".replace(".", ","))
    found.env.globals.update(EmailState=EmailState, RunStep=RunStep)
    return found


def instant(value, seconds: bool = False) -> str:
    """An instant (ISO or datetime, UTC when naive) as a Paris reader writes it: `lundi 14 juin 2021 à 09:15`."""
    if value is None or value == "":
        return "—"
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    when = (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).astimezone(PARIS)
    return f"{french_date(when.date())} à {when:%H:%M:%S}" if seconds else f"{french_date(when.date())} à {when:%H:%M}"


def day(value) -> str:
    if value is None or value == "":
        return Delivery.PENDING.long
    return french_date(value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10]))


def _rate(value) -> str:
    """A rate in [0, 1] as a percentage: `62,5 %`; `—` where there was nothing to serve."""
    return "—" if value is None else f"{value * 100:.1f} %".replace(".", ",")


def _number(value) -> str:
    return "—" if value is None else number(int(value))


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _not_signed_in(request: Request, _error) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": "Connexion requise (session absente ou expirée)."}, status_code=401)
    sign_in = "/connexion" if request.url.path.startswith("/mes-livraisons") else "/login"  # the self-service space's
    return RedirectResponse(f"{sign_in}?expiree=1" if request.cookies else sign_in, status_code=303)


async def _forbidden(request: Request, error: Forbidden) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": error.message}, status_code=403)
    return pages.page(request, "error.html", {"title": "Accès refusé", "message": error.message}, 403)


SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
