"""An OpenID Connect relying party (Pro Santé Connect): the authorization code flow with PKCE, the
ID token's signature and claims verified, the user info read.

Authlib computes the PKCE challenge (RFC 7636) and joserfc, its JOSE library, verifies the ID token
(signature against the provider's JWKS, `iss`, `aud`, `exp`, `iat`, `nonce`). The provider's
metadata and keys are fetched on first use and kept; a token signed with a key id the kept set does
not hold makes one fetch of the JWKS again (the provider rotated its keys). Nothing here logs a
token, a code or a claim.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Callable

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

SCOPES = "openid scope_all"  # Pro Santé Connect's: scope_all gives SubjectRefPro and SubjectNameID
ACR = "eidas1"  # the authentication level Pro Santé Connect's authorization requests name
ALGORITHMS = ["RS256", "ES256", "PS256"]
TIMEOUT = 10  # seconds for each call to the provider
LEEWAY = 60   # seconds of clock skew allowed on exp and iat


class OidcError(Exception):
    """The provider refused, or what it answered does not prove who signs in. `str()` is a short code
    (for the journal), never a token or a claim."""


@dataclass
class Provider:
    """One OpenID provider, by its issuer URL, and this console's registration with it."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    clock: Callable[[], float] = time.time  # when the ID token is checked (a test may move it on)
    # Where the metadata is read: the standard place by default; Pro Santé Connect publishes the one
    # naming its wallet's authorization page at `<issuer>/.well-known/wallet-openid-configuration`.
    metadata_url: str | None = None
    _metadata: dict | None = field(default=None, repr=False)
    _keys: KeySet | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def authorization_url(self, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
        query = {"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
                 "scope": SCOPES, "acr_values": ACR, "state": state, "nonce": nonce,
                 "code_challenge": create_s256_code_challenge(code_verifier), "code_challenge_method": "S256"}
        return f"{self.metadata()['authorization_endpoint']}?{urllib.parse.urlencode(query)}"

    def sign_in(self, code: str, redirect_uri: str, nonce: str, code_verifier: str) -> dict:
        """Exchange the code, verify the ID token, and return the user info of its subject."""
        answer = self._post(self.metadata()["token_endpoint"], {
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier})
        if not isinstance(answer.get("id_token"), str) or not isinstance(answer.get("access_token"), str):
            raise OidcError("token_answer")
        claims = self.verify_id_token(answer["id_token"], nonce)
        info = self._get(self.metadata()["userinfo_endpoint"], answer["access_token"])
        if info.get("sub") != claims["sub"]:  # OpenID Connect Core 5.3.2
            raise OidcError("userinfo_subject")
        return info

    def verify_id_token(self, token: str, nonce: str) -> dict:
        """The ID token's claims, once its signature, issuer, audience, lifetime and nonce are right."""
        try:
            decoded = jwt.decode(token, self._key_for(token), algorithms=ALGORITHMS)
        except JoseError:
            raise OidcError("id_token_signature") from None
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            now=int(self.clock()), leeway=LEEWAY, iss={"essential": True, "value": self.issuer},
            sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
            nonce={"essential": True, "value": nonce})
        try:
            registry.validate(claims)
        except JoseError as error:
            claim = getattr(error, "claim", None)
            raise OidcError(f"id_token_{getattr(error, 'error', 'claims')}" + (f"_{claim}" if claim else "")) from None
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.client_id not in audiences or (len(audiences) > 1 and claims.get("azp") != self.client_id):
            raise OidcError("id_token_audience")
        if isinstance(claims.get("iat"), (int, float)) and claims["iat"] > self.clock() + LEEWAY:
            raise OidcError("id_token_issued_later")
        return claims

    def metadata(self) -> dict:
        with self._lock:
            if self._metadata is None:
                found = self._get(self.metadata_url or f"{self.issuer.rstrip('/')}/.well-known/openid-configuration")
                if found.get("issuer") != self.issuer:
                    raise OidcError("issuer_mismatch")
                self._metadata = found
            return self._metadata

    def _key_for(self, token: str):
        """The kept JWKS, fetched again once when it holds no key of the token's `kid`."""
        kid = _header(token).get("kid")
        where = self.metadata()["jwks_uri"]
        with self._lock:
            if self._keys is None or (kid is not None and not _holds(self._keys, kid)):
                try:
                    self._keys = KeySet.import_key_set(self._get(where))
                except (JoseError, ValueError, TypeError, KeyError):
                    raise OidcError("jwks_malformed") from None
            return self._keys

    def _post(self, url: str, form: dict) -> dict:
        basic = base64.b64encode(f"{_quote(self.client_id)}:{_quote(self.client_secret)}".encode()).decode()
        request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST", headers={
            "Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json"})
        return _json(request, "token_refused")

    def _get(self, url: str, bearer: str | None = None) -> dict:
        headers = {"Accept": "application/json", **({"Authorization": f"Bearer {bearer}"} if bearer else {})}
        return _json(urllib.request.Request(url, headers=headers), "provider_refused")


def _json(request: urllib.request.Request, refused: str) -> dict:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            found = json.loads(answer.read(1_000_000))
    except urllib.error.HTTPError:
        raise OidcError(refused) from None
    except (urllib.error.URLError, OSError, ValueError):
        raise OidcError("provider_unreachable") from None
    if not isinstance(found, dict):
        raise OidcError("provider_answer")
    return found


def _header(token: str) -> dict:
    try:
        part = token.split(".")[0]
        found = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, IndexError):
        raise OidcError("id_token_malformed") from None
    return found if isinstance(found, dict) else {}


def _holds(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def _quote(text: str) -> str:
    """RFC 6749 2.3.1: client_secret_basic form-encodes the id and the secret first."""
    return urllib.parse.quote(text, safe="")
