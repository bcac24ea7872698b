"""The console's error answers (OWASP ASVS V7.4): a refusal by its class and status, a French page
(JSON under /api/) for every error, and for an unexpected one a reference that its log line also
carries, with the traceback's frames and exception types but never a message (it may quote an
address or a name)."""

from __future__ import annotations

import logging
import secrets
import traceback

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Match

from pipeline.services import ServiceError

from .security import HEADERS

log = logging.getLogger("vialflow.console")
TITLES = {400: "Demande invalide", 401: "Connexion refusée", 403: "Accès refusé", 404: "Page introuvable",
          405: "Méthode non permise", 409: "Pas encore prêt", 413: "Requête trop volumineuse",
          429: "Trop de tentatives", 500: "Erreur inattendue", 503: "Service occupé"}
SAID = {404: "Cette adresse n'existe pas.", 405: "Cette action n'existe pas ici.",
        413: "Requête trop volumineuse (2 Mo au plus).", 400: "Demande invalide."}
UNEXPECTED = ("Une erreur inattendue s'est produite ; rien n'a été modifié par cette page. Si elle se répète, "
              "donnez la référence {reference} à l'équipe technique.")


def answer(request: Request, status: int, message: str, headers: dict | None = None, title: str | None = None,
           **extra) -> Response:
    """A French page (titled `title`, else by its status), or `{"error": message}` under /api/, with this
    status."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)
    from .pages import page

    return page(request, "error.html", {"title": title or TITLES.get(status, "Demande refusée"), "message": message,
                                        **extra}, status, headers=headers)


async def refused(request: Request, error: ServiceError) -> Response:
    """A service's refusal, by its class (pipeline/services/refusals.py): its status, its sentence and,
    when the class names one, its page's title."""
    retry = getattr(error, "retry_after", None)
    title = error.title if error.title != ServiceError.title else None
    return answer(request, error.status, str(error), {"Retry-After": str(retry)} if retry is not None else None,
                  title=title)


async def http_error(request: Request, error: HTTPException) -> Response:
    """404, 405, 413 (Starlette's body limit) and the like, said in French. A path with a trailing
    slash that names a page without it is sent there by a relative address (never one built from
    the Host header), with its leading slashes folded so that `//elsewhere/` stays on this site."""
    path = request.url.path
    if error.status_code == 404 and len(path) > 1 and path.endswith("/"):
        bare = "/" + path.strip("/")
        if any(route.matches({**request.scope, "path": bare})[0] == Match.FULL for route in request.app.routes):
            query = request.url.query
            return RedirectResponse(bare + (f"?{query}" if query else ""), status_code=307)
    return answer(request, error.status_code, SAID.get(error.status_code, TITLES.get(error.status_code, "Erreur.")),
                  dict(error.headers) if error.headers else None)


def unexpected(request: Request, error: Exception) -> Response:
    """The page of an unexpected error, its reference logged with the traceback (no values)."""
    reference = secrets.token_hex(4).upper()
    request.scope.setdefault("state", {})["error_reference"] = reference
    endpoint = request.scope.get("endpoint")
    log.error("console error %s in %s %s: %s", reference, request.method, getattr(endpoint, "__name__", "?"),
              without_values(error))
    try:
        return answer(request, 500, UNEXPECTED.format(reference=reference), reference=reference)
    except Exception:  # noqa: BLE001 - the template itself may be what failed
        return _plain(reference)


async def last_resort(scope, error: Exception, send) -> None:
    """An exception past the error page: logged unless `unexpected` already did, answered if nothing was."""
    reference = scope.get("state", {}).get("error_reference")
    if reference is None:
        reference = secrets.token_hex(4).upper()
        log.error("console error %s: %s", reference, without_values(error))
    if send is not None:
        await _plain(reference)(scope, _no_body, send)


def without_values(error: BaseException) -> str:
    """The traceback as frames (file, line, function, source line) and exception types, causes
    included, without any exception's message or any local value."""
    parts, seen = [], set()
    while error is not None and id(error) not in seen and len(parts) < 5:
        seen.add(id(error))
        frames = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)))
        parts.append(f"{frames}{type(error).__module__}.{type(error).__qualname__}")
        error = error.__cause__ or error.__context__
    return "\n-- raised while handling --\n".join(reversed(parts))


def _plain(reference: str) -> HTMLResponse:
    text = UNEXPECTED.format(reference=reference)
    return HTMLResponse(f'<!doctype html><html lang="fr"><meta charset="utf-8"><title>Erreur inattendue</title>'
                        f"<p>{text}</p></html>", status_code=500,
                        headers={name.decode(): value.decode() for name, value in HEADERS})


async def _no_body():
    return {"type": "http.disconnect"}


class Shield:
    """The outermost layer of the console: every answer carries the security headers, the error
    pages of Starlette's ServerErrorMiddleware included (an answer that sets its own CSP, the report,
    keeps it); an exception that got past the error page stops here, so the server never logs it
    again with its message."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def sending(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in HEADERS if name not in present]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as error:  # noqa: BLE001 - the last line of defence: said, never re-raised
            await last_resort(scope, error, None if started else sending)
