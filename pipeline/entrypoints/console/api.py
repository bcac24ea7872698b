"""The console's JSON routes: the objects of `vialflow lookup --json`, `explain --json` and
`reallocate --preview --json`, and the recording of a reallocation (CONTRACT.md, "The console").

A service's refusal is answered by the application's handler for its class (errors.refused): its status
and its French sentence as `{"error": ...}`."""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipeline.domain.vocabulary import Action
from pipeline.services import audit, explain, runs, support
from pipeline.services.reallocation import preview_reallocation, request_reallocation

from . import bounds, requests
from .security import ACTING, ANY, SELF, address, guard, may_read, now


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@guard(ANY + SELF)
async def officine(request: Request) -> JSONResponse:
    console, user = request.app.state.console, request.state.user
    try:
        finess = requests.finess(request.path_params["finess"])
    except requests.BadRequest as error:
        return _error(error.message, 400)
    may_read(user, finess)
    await run_in_threadpool(audit.record, console.engine, now(), user.name, Action.LOOKUP, address=address(request),
                            target=finess)
    found = await run_in_threadpool(support.lookup, console.engine, finess,
                                    bounds.identifier(request.query_params.get("session"), "la session"))
    return JSONResponse(json.loads(json.dumps(found, default=str)))


@guard()
async def explanation(request: Request) -> JSONResponse:
    console, user = request.app.state.console, request.state.user
    order_id = request.path_params["order_id"]
    session_id = bounds.identifier(request.query_params.get("session"), "la session")
    run = bounds.whole(request.query_params.get("run"), "la version (run)")
    found = await run_in_threadpool(explain.explain, console.engine, order_id, session_id, run)
    await run_in_threadpool(audit.record, console.engine, now(), user.name, Action.EXPLAIN, address=address(request),
                            session_id=found["session"], target=order_id)
    return JSONResponse(found)


@guard(ACTING, csrf=True)
async def reallocations(request: Request) -> JSONResponse:
    """`preview: true` answers the preview and writes nothing but the audit row; `false` records the
    version with the signed-in user as operator and hands it to the workers."""
    session_id = request.path_params["session_id"]
    body = bounds.json_value(await request.body())  # the body's size is bounded by the app (bounds.BODY_LONGEST)
    if not isinstance(body, dict):
        return _error("Le corps de la requête doit être un objet JSON.", 400)
    try:
        changes = requests.changes_from_json(body.get("changes"))
        previewing = body.get("preview")  # said each time: a forgotten key must not record a version
        if not isinstance(previewing, bool):
            raise requests.BadRequest("« preview » vaut true ou false.")
        reason = "" if previewing else requests.reason(body.get("reason"))
    except requests.BadRequest as error:
        return _error(error.message, 400)
    return JSONResponse(await reallocate(request, session_id, changes, reason, previewing))


async def reallocate(request: Request, session_id: str, changes, reason: str, previewing: bool) -> dict:
    """Preview or record (shared with the pages); a refusal is the service's, raised as it is."""
    console, user = request.app.state.console, request.state.user
    detail = json.loads(changes.model_dump_json())
    for item in detail.get("redistribution", []):
        item.pop("to_rpps", None)  # the audit log names no professional; the run keeps its changes
    if previewing:
        found = await run_in_threadpool(preview_reallocation, console.engine, session_id, changes)
        await run_in_threadpool(audit.record, console.engine, now(), user.name, Action.PREVIEW,
                                address=address(request), session_id=session_id, detail={"changes": detail})
        return found
    run, created = await run_in_threadpool(request_reallocation, console.engine, session_id, changes, user.name,
                                           reason, now())
    if created:
        console.workers.hand_over(run)
    await run_in_threadpool(audit.record, console.engine, now(), user.name, Action.REALLOCATE, address=address(request),
                            session_id=session_id, run_id=run, reason=reason, detail={"changes": detail,
                                                                                    "created": created})
    version = await run_in_threadpool(runs.version_of, console.engine, run)
    return {"session": session_id, "run": run, "version": version, "created": created, "operator": user.name,
            "reason": reason}


ROUTES = [
    Route("/api/officines/{finess}", officine),
    Route("/api/orders/{order_id:id}/explanation", explanation),
    Route("/api/sessions/{session_id:id}/reallocations", reallocations, methods=["POST"]),
]
