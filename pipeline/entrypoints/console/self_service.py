"""The self-service space, in French: sign-in by a one-time link (an officine) or by Pro Santé Connect
(a pharmacist or a professional), and "Mes livraisons", the signed-in person's own data only
(CONTRACT.md, "Self-service"). Every view is journalled as support's look-ups are."""

from __future__ import annotations

import json

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pipeline.adapters.mail.link import link_email
from pipeline.adapters.oidc import OidcError
from pipeline.domain.pro_sante_connect import identity
from pipeline.domain.vocabulary import Action
from pipeline.services import audit, mine, self_service
from pipeline.services.self_service import LINK_LIFE, SELF_ROLES

from . import requests
from .security import address, guard, now, same_origin, secure, set_session_cookies

START_COOKIE = "vialflow_psc"  # the browser's side of an OpenID Connect sign-in under way
SENT = ("Si cette officine figure au répertoire d'une session de commande, un lien de connexion vient d'être "
        "envoyé à son adresse électronique. Il est valable 15 minutes et ne sert qu'une fois.")


def _console(request: Request):
    return request.app.state.console


def _page(request: Request, name: str, context: dict, status: int = 200) -> Response:
    from .pages import page

    return page(request, name, {"psc": _console(request).provider is not None, **context}, status)


async def sign_in_page(request: Request) -> Response:
    expired = "expiree" in request.query_params
    return _page(request, "connexion.html", {"message": "Votre session a expiré : reconnectez-vous." if expired else None})


async def ask_link(request: Request) -> Response:
    """The same page whether or not the FINESS is on a register; the email goes out after the answer,
    so that its sending does not tell either."""
    if not same_origin(request):
        return _page(request, "connexion.html", {"message": "Formulaire envoyé depuis un autre site : refusé."}, 403)
    try:
        finess = requests.finess(str((await request.form()).get("finess") or ""))
    except requests.BadRequest as error:
        return _page(request, "connexion.html", {"message": error.message}, 400)
    console = _console(request)
    link = await run_in_threadpool(self_service.request_link, console.engine, finess, address(request), now())
    task = None
    if link is not None:
        sender, content = link_email(console.mail_from, link.address, link.finess,
                                     f"{console.public_url}/connexion/lien/{link.token}",
                                     int(LINK_LIFE.total_seconds() // 60), now())
        task = BackgroundTask(console.workers.send_mail, sender, link.address, content)
    response = _page(request, "connexion.html", {"done": SENT})
    response.background = task
    return response


async def follow_link(request: Request) -> Response:
    visitor = await run_in_threadpool(self_service.redeem_link, _console(request).engine,
                                      request.path_params["token"], address(request), now())
    return _signed_in(request, visitor)


async def start_psc(request: Request) -> Response:
    provider = _console(request).provider
    if provider is None:
        return _page(request, "error.html", {"title": "Connexion indisponible", "message": (
            "La connexion par Pro Santé Connect n'est pas configurée sur cette console.")}, 404)
    start = await run_in_threadpool(self_service.start_sign_in, _console(request).engine, address(request), now())
    try:
        target = await run_in_threadpool(provider.authorization_url, _redirect_uri(request), start.state,
                                         start.nonce, start.code_verifier)
    except OidcError as error:
        raise await run_in_threadpool(self_service.failed, _console(request).engine, str(error), address(request),
                                      now()) from None
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(START_COOKIE, start.browser, max_age=int(self_service.START_LIFE.total_seconds()),
                        path="/connexion/psc", httponly=True, samesite="lax", secure=secure(request))
    return response


async def psc_return(request: Request) -> Response:
    """The provider's redirect: this browser's sign-in, its state, the code exchanged once, the ID token
    verified, the user info read; then the console's own session."""
    console, where, params = _console(request), address(request), request.query_params
    provider = console.provider
    if provider is None:
        return _page(request, "error.html", {"title": "Page introuvable", "message": "Cette adresse n'existe pas."},
                     404)
    start = await run_in_threadpool(self_service.returned, console.engine, request.cookies.get(START_COOKIE),
                                    params.get("state"), where, now())
    if params.get("error") or not params.get("code"):
        raise await run_in_threadpool(self_service.failed, console.engine, "provider_error", where, now())
    try:
        info = await run_in_threadpool(provider.sign_in, params["code"], _redirect_uri(request), start.nonce,
                                       start.code_verifier)
    except OidcError as error:
        raise await run_in_threadpool(self_service.failed, console.engine, str(error), where, now()) from None
    visitor = await run_in_threadpool(self_service.sign_in_professional, console.engine, identity(info), where,
                                      now())
    response = _signed_in(request, visitor)
    response.delete_cookie(START_COOKIE, path="/connexion/psc", httponly=True, samesite="lax", secure=secure(request))
    return response


def _signed_in(request: Request, visitor) -> Response:
    response = RedirectResponse("/mes-livraisons", status_code=303)
    set_session_cookies(request, response, visitor)
    return response


def _redirect_uri(request: Request) -> str:
    return f"{_console(request).public_url}/connexion/psc/retour"


@guard(SELF_ROLES)
async def my_deliveries(request: Request) -> Response:
    found, said = await _mine(request)
    return _page(request, "mes_livraisons.html", {"found": found, "said": said})


@guard(SELF_ROLES)
async def mine_json(request: Request) -> Response:
    found, _ = await _mine(request, explained=False)
    return JSONResponse(json.loads(json.dumps(found, default=str)))


async def _mine(request: Request, explained: bool = True) -> tuple[dict, dict]:
    console, visitor = _console(request), request.state.user
    await run_in_threadpool(audit.record, console.engine, now(), visitor.name, Action.SELF_VIEW,
                            address=address(request), target=",".join(visitor.finesses) or None)
    found = await run_in_threadpool(mine.my_deliveries, console.engine, visitor)
    said = await run_in_threadpool(mine.officine_details, console.engine, found) if explained and \
        "officines" in found else {}
    return found, said


@guard(SELF_ROLES)
async def my_message(request: Request) -> Response:
    """One of the visitor's emails as it was sent: to their officine, or to them."""
    console, visitor = _console(request), request.state.user
    outbox_id = request.path_params["outbox_id"]
    await run_in_threadpool(audit.record, console.engine, now(), visitor.name, Action.MESSAGE,
                            address=address(request), target=f"email {outbox_id}")
    found = await run_in_threadpool(mine.my_message, console.engine, visitor, outbox_id, console.mail_from)
    return _page(request, "message.html", {"found": found, "finess": None, "mine": True})


ROUTES = [
    Route("/connexion", sign_in_page, methods=["GET"]),
    Route("/connexion/lien", ask_link, methods=["POST"]),
    Route("/connexion/lien/{token}", follow_link, methods=["GET"]),
    Route("/connexion/psc", start_psc, methods=["GET"]),
    Route("/connexion/psc/retour", psc_return, methods=["GET"]),
    Route("/mes-livraisons", my_deliveries),
    Route("/api/mes-livraisons", mine_json),
    Route("/mes-livraisons/emails/{outbox_id:number}", my_message),
]
