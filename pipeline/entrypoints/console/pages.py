"""The console's pages, in French: sign-in, search, an officine, an explanation, a session's versions
and their differences, reports, the outbox, a reallocation composed, previewed, confirmed and followed,
and, for admins, the accounts and the audit log.

A service's refusal that ends a page is rendered by the application's handler for its class
(errors.refused); a page catches one only to show it beside the form that asked.

One module, over 300 lines: every page is a few lines from its route to one service call and one template,
sharing the guard, the rendering and the audit; the JSON routes are in api.py, the reading of what a person
sends in requests.py and bounds.py, the error pages in errors.py."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from pipeline.domain.vocabulary import SETTLED, Action, EmailState, Policy
from pipeline.services import (ServiceError, accounts, audit, chain, confirmations, explain, messages, reports, runs,
                               self_service, support, verify)
from pipeline.services.reallocation import preview_reallocation

from . import bounds, requests
from .api import reallocate
from .security import (ACTING, ADMIN, ANY, COOKIE, CSRF_FIELD, SELF, Busy, address, clear_session_cookies, guard,
                       may_read, now, same_origin, set_session_cookies)

REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
FOLLOW_SECONDS = 2
PAGE_ROWS = 200  # rows of the outbox and of the journal a page shows
RESEND_LONGEST = 2000  # emails ticked for one resend


def page(request: Request, name: str, context: dict, status: int = 200, headers: dict | None = None) -> Response:
    user = getattr(request.state, "user", None)
    return request.app.state.templates.TemplateResponse(
        request, name, {"user": user, "csrf_field": CSRF_FIELD, "csrf": user.csrf_token if user else "",
                        "acting": bool(user and user.role in ACTING), "admin": bool(user and user.role in ADMIN),
                        "visitor": bool(user and user.role in SELF),
                        **context}, status_code=status, headers=headers)


def _engine(request: Request):
    return request.app.state.console.engine


async def _record(request: Request, action: str, **values) -> None:
    await run_in_threadpool(audit.record, _engine(request), now(), request.state.user.name, action,
                            address=address(request), **values)


# Signing in and out.

async def login_form(request: Request) -> Response:
    expired = "expiree" in request.query_params
    return page(request, "login.html", {"message": "Votre session a expiré : reconnectez-vous." if expired else None})


async def login(request: Request) -> Response:
    if not same_origin(request):
        return page(request, "login.html", {"message": "Formulaire envoyé depuis un autre site : refusé."}, 403)
    form = await request.form()
    name, password = str(form.get("username") or ""), str(form.get("password") or "")
    try:
        with request.app.state.console.sign_in_slots.taken():
            signed = await run_in_threadpool(accounts.sign_in, _engine(request), name, password, address(request),
                                             now())
    except (accounts.TooManyAttempts, Busy) as error:
        return page(request, "login.html", {"message": str(error)}, error.status,
                    headers={"Retry-After": str(error.retry_after)})
    except accounts.SignInRefused as error:
        return page(request, "login.html", {"message": str(error)}, error.status)
    response = RedirectResponse("/", status_code=303)
    set_session_cookies(request, response, signed)
    return response


@guard(ANY + SELF, csrf=True)
async def logout(request: Request) -> Response:
    out = self_service.sign_out if request.state.user.role in SELF else accounts.sign_out
    await run_in_threadpool(out, _engine(request), request.cookies.get(COOKIE), address(request), now())
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookies(request, response)
    return response


# Support: search, an officine, an explanation.

@guard(ANY + SELF)
async def home(request: Request) -> Response:
    if request.state.user.role in SELF:
        return RedirectResponse("/mes-livraisons", status_code=303)
    sessions = await run_in_threadpool(support.all_sessions, _engine(request))
    return page(request, "home.html", {"sessions": sessions})


@guard(csrf=True)
async def search(request: Request) -> Response:
    """By FINESS: straight to its page. By name: the results, in this POST's answer, so that a
    name never appears in an address."""
    text = str((await request.form()).get("q") or "").strip()
    sessions = await run_in_threadpool(support.all_sessions, _engine(request))
    try:
        bounds.search_text(text)
    except bounds.BadInput as error:
        return page(request, "home.html", {"sessions": sessions, "message": str(error), "q": text[:100]}, 400)
    compact = text.replace(" ", "")
    if compact[:1].isdigit() and len(compact) <= 9:
        try:
            return RedirectResponse(f"/officines/{requests.finess(compact)}", status_code=303)
        except requests.BadRequest as error:
            return page(request, "home.html", {"sessions": sessions, "message": error.message, "q": text}, 400)
    try:
        found = await run_in_threadpool(support.search, _engine(request), text)
    except ServiceError as error:
        return page(request, "home.html", {"sessions": sessions, "message": str(error), "q": text}, error.status)
    await _record(request, Action.SEARCH, detail={"results": len(found)})
    return page(request, "home.html", {"sessions": sessions, "results": found, "q": text,
                                       "message": None if found else "Aucune officine ne porte ce nom."})


@guard(ANY + SELF)
async def officine(request: Request) -> Response:
    try:
        finess = requests.finess(request.path_params["finess"])
    except requests.BadRequest as error:
        return page(request, "error.html", {"title": "Numéro FINESS invalide", "message": error.message}, 400)
    may_read(request.state.user, finess)
    await _record(request, Action.LOOKUP, target=finess)
    found = await run_in_threadpool(support.lookup, _engine(request), finess)
    return page(request, "officine.html", {"found": found})


@guard()
async def explanation(request: Request) -> Response:
    order_id = request.path_params["order_id"]
    session_id = bounds.identifier(request.query_params.get("session"), "la session")
    version = bounds.whole(request.query_params.get("run"), "la version (run)")
    found = await run_in_threadpool(explain.explain, _engine(request), order_id, session_id, version)
    await _record(request, Action.EXPLAIN, session_id=found["session"], target=order_id)
    said = " ; ".join(found["phrases"])
    return page(request, "explanation.html", {"found": found, "said": said[:1].upper() + said[1:] + "."})


@guard(ACTING)
async def message(request: Request) -> Response:
    """One email as it was sent, rebuilt from the stored run: operators reach it from the outbox."""
    return await _message(request, None)


@guard(ANY + SELF)
async def officine_message(request: Request) -> Response:
    """The same, reached through the officine it was sent to or about (support's way, R12)."""
    try:
        finess = requests.finess(request.path_params["finess"])
    except requests.BadRequest as error:
        return page(request, "error.html", {"title": "Numéro FINESS invalide", "message": error.message}, 400)
    may_read(request.state.user, finess)
    return await _message(request, finess)


async def _message(request: Request, finess: str | None) -> Response:
    """Audited before it is read, so that a read that fails is in the journal too (its target is
    the email's number and the officine, never the address)."""
    outbox_id = request.path_params["outbox_id"]
    await _record(request, Action.MESSAGE, target=f"email {outbox_id}" + (f" ({finess})" if finess else ""))
    found = await run_in_threadpool(messages.message, _engine(request), outbox_id,
                                    request.app.state.console.mail_from, finess)
    return page(request, "message.html", {"found": found, "finess": finess})


# A session's versions, their differences, reports, and following a run.

@guard()
async def session(request: Request) -> Response:
    session_id = request.path_params["session_id"]
    versions = await run_in_threadpool(support.list_runs, _engine(request), session_id)
    compared, message = None, None
    before, after = request.query_params.get("avant"), request.query_params.get("apres")
    if before and after:
        try:
            compared = await run_in_threadpool(support.compare_runs, _engine(request), session_id,
                                               bounds.whole(before, "la version de départ"),
                                               bounds.whole(after, "la version d'arrivée"))
        except ServiceError as error:  # a version that is no number, or no version of the session
            message = str(error)
    return page(request, "session.html", {"session_id": session_id, "versions": versions, "compared": compared,
                                          "message": message}, 400 if message else 200)


@guard()
async def report(request: Request) -> Response:
    session_id, version = request.path_params["session_id"], request.path_params["version"]
    run = await run_in_threadpool(runs.run_id, _engine(request), session_id, version)
    versions = await run_in_threadpool(support.list_runs, _engine(request), session_id)
    if not next(v for v in versions if v["version"] == version)["scheduled_at"]:
        return page(request, "error.html", {"title": "Rapport pas encore prêt", "message": (
            f"La version {version} est encore en calcul : son rapport sera prêt une fois ses livraisons planifiées.")},
            409)
    html = await run_in_threadpool(reports.report_html, _engine(request), run, now())
    if html is None:
        return page(request, "error.html", {"title": "Rapport indisponible", "message": (
            f"Le rapport de la version {version} n'a pas pu être produit ; ses fichiers de données sont écrits. "
            "La cause est consignée dans le journal de l'application.")}, 503)
    return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_POLICY})


@guard()
async def follow(request: Request) -> Response:
    """A run on its way: its step and its emails, refreshed until every email has settled."""
    session_id, version = request.path_params["session_id"], request.path_params["version"]
    engine = _engine(request)
    run = await run_in_threadpool(runs.run_id, engine, session_id, version)
    versions = await run_in_threadpool(support.list_runs, engine, session_id)
    mine = next(v for v in versions if v["version"] == version)
    counts = await run_in_threadpool(confirmations.outbox_counts, engine, run)
    waiting = sum(n for state, n in counts.items() if state not in SETTLED)
    settled = bool(mine["prepared_at"]) and not waiting
    return page(request, "follow.html", {"session_id": session_id, "run": mine, "counts": counts,
                                         "steps": (chain.ALLOCATE, chain.SCHEDULE, chain.PREPARE),
                                         "waiting": waiting, "settled": settled, "failed": mine["error"],
                                         "refresh": None if settled or mine["error"] else FOLLOW_SECONDS})


@guard(ACTING, csrf=True)
async def verification(request: Request) -> Response:
    """A stored version derived again and compared (`vialflow verify`), journaled with its outcome (never
    the difference itself: it may name a professional)."""
    session_id, version = request.path_params["session_id"], request.path_params["version"]
    console = request.app.state.console
    run = await run_in_threadpool(runs.run_id, console.engine, session_id, version)
    folders = [console.run_folder] if console.run_folder is not None else []
    verdict = await run_in_threadpool(verify.verify, console.engine, session_id, version, folders, console.mail_from)
    await _record(request, Action.VERIFY, session_id=session_id, run_id=run,
                  detail={"version": version, "agrees": verdict.difference is None, "digest": verdict.digest})
    return page(request, "verify.html", {"session_id": session_id, "verdict": verdict},
                200 if verdict.difference is None else 409)


# Operators: a reallocation, composed or uploaded, previewed, confirmed.

@guard(ACTING)
async def compose(request: Request) -> Response:
    return await _compose(request, {})


async def _compose(request: Request, context: dict, status: int = 200) -> Response:
    session_id = request.path_params["session_id"]
    versions = await run_in_threadpool(support.list_runs, _engine(request), session_id)
    vaccines = await run_in_threadpool(support.vaccines, _engine(request), session_id)
    return page(request, "compose.html", {"session_id": session_id, "latest": versions[-1] if versions else None,
                                          "vaccines": vaccines, "policies": {p.value: p.short for p in Policy},
                                          **context}, status)


@guard(ACTING, csrf=True)
async def preview(request: Request) -> Response:
    form = await request.form()
    session_id = request.path_params["session_id"]
    try:
        upload = form.get("fichier")
        if upload is not None and getattr(upload, "filename", ""):
            changes = bounds.toml_changes(requests.changes_from_toml, await upload.read())
        else:
            changes = requests.changes_from_form(form)
        found = await reallocate(request, session_id, changes, "", True)
    except requests.BadRequest as error:
        return await _compose(request, {"message": error.message, "form": dict(form.items())}, 400)
    except ServiceError as error:  # an input of the wrong shape (bounds), or the service's refusal
        return await _compose(request, {"message": str(error), "form": dict(form.items())}, error.status)
    return page(request, "preview.html", {"session_id": session_id, "preview": found,
                                          "changes": changes.model_dump_json()})


@guard(ACTING, csrf=True)
async def confirm(request: Request) -> Response:
    form = await request.form()
    session_id = request.path_params["session_id"]
    try:
        changes = requests.changes_from_json(bounds.json_value(str(form.get("changes") or "null"), "Les modifications"))
    except (requests.BadRequest, bounds.BadInput):
        return await _compose(request, {"message": "Modifications illisibles : recomposez la réallocation."}, 400)
    try:
        reason = requests.reason(form.get("reason"))
        done = await reallocate(request, session_id, changes, reason, False)
    except (requests.BadRequest, ServiceError) as error:
        found = await run_in_threadpool(_preview_again, request, session_id, changes)
        return page(request, "preview.html", {"session_id": session_id, "preview": found, "message": str(error),
                                              "changes": changes.model_dump_json()}, 400)
    return RedirectResponse(f"/sessions/{session_id}/versions/{done['version']}/suivi", status_code=303)


def _preview_again(request: Request, session_id: str, changes):
    try:
        return preview_reallocation(_engine(request), session_id, changes)
    except ServiceError:
        return None


# Operators: the outbox and a deliberate resend.

@guard(ACTING)
async def outbox(request: Request) -> Response:
    return await _outbox(request, None)


async def _outbox(request: Request, message: str | None, status: int = 200, done: str | None = None) -> Response:
    session_id = request.path_params["session_id"]
    state = request.query_params.get("etat") or None
    if state is not None and EmailState.of(state) is None:
        raise bounds.BadInput(f"État inconnu « {state[:20]} ».")
    number = bounds.whole(request.query_params.get("page"), "la page") or 1
    rows, total = await run_in_threadpool(confirmations.outbox_page, _engine(request), session_id, state,
                                          PAGE_ROWS, (number - 1) * PAGE_ROWS)
    await _record(request, Action.OUTBOX, session_id=session_id, detail={"state": state, "page": number})
    listed = rows.astype(object).where(rows.notna(), None).to_dict("records")
    return page(request, "outbox.html", {"session_id": session_id, "rows": listed, "state": state, "total": total,
                                         "pages": _pages(number, total), "message": message, "done": done}, status)


def _pages(number: int, total: int) -> dict:
    """The page shown, the last one, and the neighbours to link to."""
    last = max(1, -(-total // PAGE_ROWS))
    return {"number": number, "last": last, "previous": number - 1 if number > 1 else None,
            "next": number + 1 if number < last else None, "first_row": (number - 1) * PAGE_ROWS + 1}


@guard(ACTING, csrf=True)
async def resend(request: Request) -> Response:
    session_id = request.path_params["session_id"]
    form = await request.form()
    try:
        reason = requests.reason(form.get("reason"))
        ticked = form.getlist("ids")
        if len(ticked) > RESEND_LONGEST:
            raise requests.BadRequest(f"Cochez au plus {RESEND_LONGEST} emails à la fois.")
        ids = [bounds.whole(str(x), "un email coché", required=True) for x in ticked]
        if not ids:
            raise requests.BadRequest("Cochez au moins un email à renvoyer.")
        reopened = await run_in_threadpool(confirmations.resend, _engine(request), session_id, None, None,
                                           request.state.user.name, reason, now(), ids, address=address(request))
    except requests.BadRequest as error:
        return await _outbox(request, error.message, 400)
    except ServiceError as error:  # an input of the wrong shape (bounds), or the service's refusal
        return await _outbox(request, str(error), error.status)
    rows = await run_in_threadpool(confirmations.outbox_listing, _engine(request), session_id)
    for version in sorted(set(int(v) for v in rows.loc[rows["id"].isin(reopened), "version"])):
        run = await run_in_threadpool(runs.run_id, _engine(request), session_id, version)
        request.app.state.console.workers.send_again(run)
    return await _outbox(request, None, done=f"{len(reopened)} email(s) remis à l'envoi.")


# Admins: the accounts and the audit log, read-only.

@guard(ADMIN)
async def accounts_page(request: Request) -> Response:
    found = await run_in_threadpool(accounts.users, _engine(request))
    return page(request, "accounts.html", {"accounts": found})


@guard(ADMIN)
async def journal(request: Request) -> Response:
    """The journal, newest first, a page at a time (`?avant=ID`: the actions before that one)."""
    before = bounds.whole(request.query_params.get("avant"), "la page du journal")
    found = await run_in_threadpool(audit.log, _engine(request), PAGE_ROWS + 1, before=before)
    return page(request, "journal.html", {"actions": found[:PAGE_ROWS], "rows": PAGE_ROWS,
                                          "older": found[PAGE_ROWS - 1]["id"] if len(found) > PAGE_ROWS else None})


ROUTES = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/", home),
    Route("/recherche", search, methods=["POST"]),
    Route("/officines/{finess}", officine),
    Route("/officines/{finess}/emails/{outbox_id:number}", officine_message),
    Route("/lignes/{order_id:id}/explication", explanation),
    Route("/emails/{outbox_id:number}", message),
    Route("/sessions/{session_id:id}", session),
    Route("/sessions/{session_id:id}/versions/{version:number}/rapport", report),
    Route("/sessions/{session_id:id}/versions/{version:number}/suivi", follow),
    Route("/sessions/{session_id:id}/versions/{version:number}/verification", verification, methods=["POST"]),
    Route("/sessions/{session_id:id}/reallocation", compose),
    Route("/sessions/{session_id:id}/reallocation/apercu", preview, methods=["POST"]),
    Route("/sessions/{session_id:id}/reallocation/confirmer", confirm, methods=["POST"]),
    Route("/sessions/{session_id:id}/emails", outbox),
    Route("/sessions/{session_id:id}/emails/renvoi", resend, methods=["POST"]),
    Route("/admin/comptes", accounts_page),
    Route("/admin/journal", journal),
]
