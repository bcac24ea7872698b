"""Who is asking, may they, and the headers every answer carries (OWASP ASVS: sessions, CSRF, access).

The session cookie holds a random token (its digest is the server-side session); `csrftoken`
holds the session's CSRF token, which every form sends back as a hidden field and every
state-changing API call as the `X-CSRF-Token` header.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hmac
import threading

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from pipeline.services import ServiceError, accounts, self_service

COOKIE, CSRF_COOKIE, CSRF_HEADER, CSRF_FIELD = "vialflow_session", "csrftoken", "X-CSRF-Token", "csrftoken"
ANY, ACTING, ADMIN = accounts.ROLES, accounts.ACTING, ("admin",)
SELF = self_service.SELF_ROLES  # the self-service space: an officine, a pharmacist, a professional
OUTSIDE = "Cette page n'est pas dans votre espace : seules vos propres livraisons vous sont ouvertes."
HEADERS = [
    # No inline script or style anywhere: the pages' only script-free stylesheet is /static/console.css.
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make a browser send `Origin: null`
    (b"cache-control", b"no-store"),  # health data: no copy in a shared browser's cache
    (b"cross-origin-opener-policy", b"same-origin"),
]


class Busy(ServiceError):
    """Every password-check slot of this process is taken: 503, to try again in a second."""

    status, retry_after = 503, 1

    def __init__(self) -> None:
        super().__init__("Trop de connexions en cours : réessayez dans un instant.")


class SignInSlots:
    """At most `size` password checks at once in this process: argon2id holds 64 MiB for each, so a
    flood of sign-ins is refused at once (Busy) beyond them, before it reaches a thread or the hash."""

    def __init__(self, size: int) -> None:
        self._free = threading.BoundedSemaphore(size)

    @contextlib.contextmanager
    def taken(self):
        if not self._free.acquire(blocking=False):
            raise Busy()
        try:
            yield
        finally:
            self._free.release()


class NotSignedIn(Exception):
    """No session, or an expired one: 401 for the API, the sign-in page for a page."""


class Forbidden(Exception):
    """Signed in, but this role may not, or the CSRF token is missing or wrong."""

    def __init__(self, message: str = "Cette action est réservée aux opérateurs.") -> None:
        super().__init__(message)
        self.message = message


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def address(request: Request) -> str:
    """The client's address (behind a proxy, uvicorn's --forwarded-allow-ips makes it the real one)."""
    return request.client.host if request.client else "inconnue"


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def guard(roles: tuple[str, ...] = ANY, csrf: bool = False):
    """An endpoint for these roles; with `csrf`, a state-changing one that must carry the token."""
    def wrap(endpoint):
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            console = request.app.state.console
            signed = await run_in_threadpool(signed_in, console.engine, request.cookies.get(COOKIE))
            if signed is None:
                raise NotSignedIn()
            request.state.user = signed
            if signed.role not in roles:
                raise Forbidden(OUTSIDE if signed.role in SELF else
                                "Cette page est réservée aux administrateurs." if roles == ADMIN else
                                "Cette action est réservée aux opérateurs.")
            if csrf:
                await _check_csrf(request, signed)
            return await endpoint(request)
        return guarded
    return wrap


def signed_in(engine, token: str | None):
    """An account's session, or else a self-service one (a visitor), or None."""
    return accounts.session(engine, token, now()) or self_service.session(engine, token, now())


def may_read(user, finess: str) -> None:
    """A visitor reads only their own officines: any other is Forbidden (an account reads any)."""
    if user.role in SELF and not user.may_read(finess):
        raise Forbidden(OUTSIDE)


async def _check_csrf(request: Request, signed: accounts.Signed) -> None:
    if request.url.path.startswith("/api/"):
        sent = request.headers.get(CSRF_HEADER, "")
        ok = _same(sent, request.cookies.get(CSRF_COOKIE, "")) and _same(sent, signed.csrf_token)
    else:
        ok = _same(str((await request.form()).get(CSRF_FIELD, "")), signed.csrf_token)
    if not ok:
        raise Forbidden("Jeton de sécurité (CSRF) absent ou invalide : rechargez la page et recommencez.")


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def set_session_cookies(request: Request, response: Response, signed) -> None:
    for name, value in ((COOKIE, signed.token), (CSRF_COOKIE, signed.csrf_token)):
        response.set_cookie(name, value, max_age=int(accounts.LONGEST.total_seconds()), path="/", httponly=True,
                            samesite="lax", secure=secure(request))


def clear_session_cookies(request: Request, response: Response) -> None:
    for name in (COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=secure(request))


def same_origin(request: Request) -> bool:
    """A form posted from another site (its Origin says so) is refused, sign-in included."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return origin.rstrip("/") == f"{request.url.scheme}://{request.url.netloc}"
