"""The console's ASGI application: routes, templates in French, security headers, sign-in."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import contextlib

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from pipeline.adapters.mail.render import INJECTION_LABELS, KIND_LABELS
from pipeline.domain.french import french_date, number
from pipeline.settings import Settings

from . import api, pages
from .security import Forbidden, NotSignedIn, SecurityHeaders

HERE = Path(__file__).resolve().parent
PARIS = ZoneInfo("Europe/Paris")
REASONS = {"ok": "servie en totalité", "cap": "plafond", "unit": "arrondi à la boîte", "supply": "stock épuisé",
           "eligibility": "non éligible", "window": "hors délai", "zone": "hors zone", "not_attached": "non rattaché",
           "unknown_pharmacy": "officine inconnue", "unknown_professional": "professionnel inconnu",
           "cancelled": "annulée"}
STATUSES = {"served": "servie", "partial": "partielle", "refused": "refusée"}
STATES = {"pending": "à envoyer", "claimed": "prise en charge", "sending": "en cours d'envoi", "sent": "envoyé",
          "retry": "nouvel essai prévu", "failed": "échec", "unknown": "incertain"}
ROLES = {"support": "support", "operator": "opérateur", "admin": "administrateur"}
ACTIONS = {"lookup": "consultation d'une officine", "explain": "explication d'une ligne", "search": "recherche par nom",
           "message": "lecture d'un email", "outbox": "liste des emails", "preview": "aperçu de réallocation",
           "reallocate": "réallocation", "resend": "renvoi d'emails", "sign_in": "connexion", "sign_out": "déconnexion",
           "purge": "purge"}


@dataclass
class Console:
    """What every route uses: the database and the way to the workers."""

    engine: Engine
    workers: object  # .hand_over(run), .send_again(run), .running()
    run_folder: Path | None = None
    mail_from: str = Settings.mail_from  # the sender the emails were rebuilt with


def create_app(engine: Engine, workers, run_folder: Path | None = None, mail_from: str = Settings.mail_from) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        with workers.running():
            yield

    app = Starlette(routes=[*api.ROUTES, *pages.ROUTES, Mount("/static", StaticFiles(directory=HERE / "static"),
                                                               name="static")],
                    middleware=[Middleware(SecurityHeaders)],
                    exception_handlers={NotSignedIn: _not_signed_in, Forbidden: _forbidden, 404: _not_found,
                                        405: _not_allowed},
                    lifespan=lifespan)
    app.state.console = Console(engine, workers, run_folder, mail_from)
    app.state.templates = templates()
    return app


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=HERE / "templates")
    found.env.filters.update(instant=instant, day=day, number=_number, reason=lambda r: REASONS.get(r, r),
                             status=lambda s: STATUSES.get(s, s), state=lambda s: STATES.get(s, s),
                             kind=lambda k: KIND_LABELS.get(k, k), injection=lambda i: INJECTION_LABELS.get(i, i),
                             role=lambda r: ROLES.get(r, r), action=lambda a: ACTIONS.get(a, a),
                             instant_s=lambda v: instant(v, seconds=True))
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
        return "date communiquée ultérieurement"
    return french_date(value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10]))


def _number(value) -> str:
    return "—" if value is None else number(int(value))


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _not_signed_in(request: Request, _error) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": "Connexion requise (session absente ou expirée)."}, status_code=401)
    return RedirectResponse("/login?expiree=1" if request.cookies else "/login", status_code=303)


async def _forbidden(request: Request, error: Forbidden) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": error.message}, status_code=403)
    return pages.page(request, "error.html", {"title": "Accès refusé", "message": error.message}, 403)


async def _not_found(request: Request, _error) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": "Adresse inconnue."}, status_code=404)
    return pages.page(request, "error.html", {"title": "Page introuvable", "message": "Cette adresse n'existe pas."},
                      404)


async def _not_allowed(request: Request, _error) -> Response:
    return JSONResponse({"error": "Méthode non permise."}, status_code=405) if _wants_json(request) else \
        pages.page(request, "error.html", {"title": "Méthode non permise", "message": "Cette action n'existe pas ici."}, 405)


SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
