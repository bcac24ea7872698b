"""Sign-in with OpenID Connect against a real provider on loopback (oidc-provider from npm, with Pro
Santé Connect's claims): a pharmacist sees their officine and nothing of another (R12), a doctor sees
only their own lines; a wrong state, a replayed code, a code or token of another client, an expired
token and a professional with no activity at any officine of the registers are all refused."""

from __future__ import annotations

import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pandas as pd
import pytest
from starlette.testclient import TestClient

from pipeline.adapters.oidc import OidcError, Provider
from pipeline.entrypoints.console.app import create_app

from ..conftest import vialflow
from ..oidc import launch

OFFICINE, OTHER = "690012345", "750012347"
DOCTOR = "10018938356"  # a médecin of the fixture's register, with lines at OFFICINE
SECRET, OTHER_SECRET = "vialflow-test-secret-1", "other-test-secret-2"
CONSOLE = "http://testserver"
RETURN = f"{CONSOLE}/connexion/psc/retour"


def _practice(profession: str, *sites: str) -> dict:
    return {"codeProfession": profession, "codeCategorieProfessionnelle": "C",
            "activities": [{"codeModeExercice": "L", "numeroFinessSite": site, "raisonSocialeSite": "Site"}
                           for site in sites]}


ACCOUNTS = {  # login_hint -> user info, as Pro Santé Connect shapes it
    "pharmacienne": {"SubjectNameID": "810000000017", "SubjectRefPro": {"exercices": [_practice("21", OFFICINE)]}},
    "medecin": {"SubjectNameID": f"8{DOCTOR}", "SubjectRefPro": {"exercices": [_practice("10", "690000001")]}},
    "ailleurs": {"SubjectNameID": "810000000025", "SubjectRefPro": {"exercices": [_practice("21", "130000009")]}},
}
CLIENTS = [{"client_id": "vialflow", "client_secret": SECRET, "redirect_uris": [RETURN]},
           {"client_id": "other", "client_secret": OTHER_SECRET, "redirect_uris": [RETURN]}]


@pytest.fixture(scope="module")
def issuer(tmp_path_factory):
    with launch.provider(tmp_path_factory.mktemp("provider"), ACCOUNTS, CLIENTS) as found:
        yield found


def _console(engine, workers, folder, issuer, **options) -> TestClient:
    app = create_app(engine, workers, folder, provider=Provider(issuer, "vialflow", SECRET, **options),
                     public_url=CONSOLE)
    return TestClient(app, follow_redirects=False)


class Browser:
    """The person's browser at the provider: its cookies, redirects followed until the console's."""

    def __init__(self) -> None:
        class Stay(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                                  Stay())

    def sign_in(self, authorize: str, who: str) -> str:
        """Follow the provider from `authorize` as `who`; the console's return address it ends on."""
        url = authorize + "&" + urllib.parse.urlencode({"login_hint": who})
        for _ in range(10):
            try:
                answer = self.opener.open(url, timeout=10)
                raise AssertionError(f"the provider answered {answer.status} without a redirect")
            except urllib.error.HTTPError as redirect:
                assert redirect.code in (302, 303), redirect.read()[:300]
                url = urllib.parse.urljoin(url, redirect.headers["Location"])
            if url.startswith(RETURN):
                return url
        raise AssertionError("too many redirects")


def _start(console: TestClient) -> str:
    started = console.get("/connexion/psc")
    assert started.status_code == 303
    return started.headers["location"]


def _returned(console: TestClient, url: str):
    parts = urllib.parse.urlsplit(url)
    return console.get(f"{parts.path}?{parts.query}")


def _signed_in(console: TestClient, who: str):
    return _returned(console, Browser().sign_in(_start(console), who))


def test_r12_a_pharmacist_signed_in_by_the_provider_sees_their_officine_and_nothing_of_another(
        engine, workers, folder, issuer):
    with _console(engine, workers, folder, issuer) as console:
        done = _signed_in(console, "pharmacienne")
        assert done.status_code == 303 and done.headers["location"] == "/mes-livraisons"
        mine = console.get("/api/mes-livraisons")
        lookup = vialflow("lookup", OFFICINE, "--out", str(folder), "--json")
        assert mine.json() == {"officines": [json.loads(lookup.stdout)]}
        assert console.get("/mes-livraisons").status_code == 200
        assert console.get(f"/api/officines/{OFFICINE}").status_code == 200
        assert console.get(f"/api/officines/{OTHER}").status_code == 403
        assert console.get(f"/officines/{OTHER}").status_code == 403
        assert console.get("/sessions/2021-06-14").status_code == 403


def test_r12_a_doctor_signed_in_by_the_provider_sees_only_their_own_lines(engine, workers, folder, issuer):
    with _console(engine, workers, folder, issuer) as console:
        assert _signed_in(console, "medecin").status_code == 303
        lines = console.get("/api/mes-livraisons").json()["lines"]
        decided = pd.read_csv(folder / "allocations.csv", dtype=str)  # the run's lines, as `vialflow run` wrote them
        theirs = set(decided.loc[(decided["rpps"] == DOCTOR) & (decided["effector"] == "medecin"), "order_id"])
        assert theirs and {line["order_id"] for line in lines} == theirs
        assert all(line["explanation"] and "pending_vials" in line for line in lines)
        assert sum(d["vials"] for d in lines[0]["deliveries"]) == lines[0]["allocated"]
        assert console.get(f"/api/officines/{OFFICINE}").status_code == 403
        page = console.get("/mes-livraisons")
        assert page.status_code == 200 and lines[0]["order_id"] in page.text


def test_a_wrong_state_is_refused(engine, workers, folder, issuer):
    with _console(engine, workers, folder, issuer) as console:
        url = Browser().sign_in(_start(console), "pharmacienne")
        forged = url.replace("state=", "state=x")
        answer = _returned(console, forged)
        assert answer.status_code == 403 and "vialflow_session" not in answer.headers.get("set-cookie", "")
        assert console.get("/api/mes-livraisons").status_code == 401


def test_a_replayed_code_is_refused_by_the_provider(engine, workers, folder, issuer):
    with _console(engine, workers, folder, issuer) as console:
        url = Browser().sign_in(_start(console), "pharmacienne")
        assert _returned(console, url).status_code == 303
        console.cookies.clear()
        assert _returned(console, url).status_code == 403  # the same return again: its sign-in is spent
        # the same code under a new sign-in's own state: the provider refuses a code used once
        fresh = urllib.parse.parse_qs(urllib.parse.urlsplit(_start(console)).query)["state"][0]
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["code"][0]
        answer = console.get("/connexion/psc/retour?" + urllib.parse.urlencode({"code": code, "state": fresh}))
        assert answer.status_code == 403
        assert console.get("/api/mes-livraisons").status_code == 401


def test_a_code_issued_to_another_client_is_refused(engine, workers, folder, issuer):
    with _console(engine, workers, folder, issuer) as console:
        authorize = _start(console)
        state = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)["state"][0]
        stranger = authorize.replace("client_id=vialflow", "client_id=other")
        url = Browser().sign_in(stranger, "pharmacienne")
        assert urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["state"] == [state]
        assert _returned(console, url).status_code == 403
        assert console.get("/api/mes-livraisons").status_code == 401


def _id_token(issuer: str, client: str, secret: str, who: str) -> tuple[str, str]:
    """An ID token the provider issues to `client` for `who`, with its nonce."""
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    verifier, nonce = "v" * 64, "nonce-of-the-test"
    query = {"response_type": "code", "client_id": client, "redirect_uri": RETURN, "scope": "openid scope_all",
             "state": "s", "nonce": nonce, "code_challenge": create_s256_code_challenge(verifier),
             "code_challenge_method": "S256"}
    url = Browser().sign_in(f"{issuer}/auth?{urllib.parse.urlencode(query)}", who)
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["code"][0]
    request = urllib.request.Request(f"{issuer}/token", data=urllib.parse.urlencode({
        "grant_type": "authorization_code", "code": code, "redirect_uri": RETURN, "code_verifier": verifier,
        "client_id": client, "client_secret": secret}).encode())
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["id_token"], nonce


def test_an_id_token_for_another_client_is_refused(issuer):
    token, nonce = _id_token(issuer, "other", OTHER_SECRET, "pharmacienne")
    assert Provider(issuer, "other", OTHER_SECRET).verify_id_token(token, nonce)["sub"] == "pharmacienne"
    with pytest.raises(OidcError, match="audience"):
        Provider(issuer, "vialflow", SECRET).verify_id_token(token, nonce)


def test_an_expired_id_token_is_refused(engine, workers, folder, issuer):
    token, nonce = _id_token(issuer, "vialflow", SECRET, "pharmacienne")
    later = Provider(issuer, "vialflow", SECRET, clock=lambda: time.time() + 3600)
    with pytest.raises(OidcError, match="expired"):
        later.verify_id_token(token, nonce)
    with pytest.raises(OidcError, match="nonce"):
        Provider(issuer, "vialflow", SECRET).verify_id_token(token, "another-nonce")
    # through the console, an hour later than the provider: no session
    with _console(engine, workers, folder, issuer, clock=lambda: time.time() + 3600) as console:
        assert _signed_in(console, "pharmacienne").status_code == 403
        assert console.get("/api/mes-livraisons").status_code == 401


def test_a_professional_with_no_activity_at_any_officine_of_the_registers_is_refused(engine, workers, folder, issuer):
    with _console(engine, workers, folder, issuer) as console:
        answer = _signed_in(console, "ailleurs")
        assert answer.status_code == 403 and "aucune officine" in answer.text
        assert console.get("/api/mes-livraisons").status_code == 401


def test_when_the_provider_rotates_its_keys_the_console_fetches_them_again(tmp_path):
    with launch.provider(tmp_path / "before", ACCOUNTS, CLIENTS, key_id="key-before") as issuer:
        provider = Provider(issuer, "vialflow", SECRET)
        token, nonce = _id_token(issuer, "vialflow", SECRET, "medecin")
        assert provider.verify_id_token(token, nonce)["sub"] == "medecin"  # its keys fetched and kept
    port = int(issuer.rsplit(":", 1)[1])
    with launch.provider(tmp_path / "after", ACCOUNTS, CLIENTS, port=port, key_id="key-after") as again:
        assert again == issuer
        token, nonce = _id_token(issuer, "vialflow", SECRET, "pharmacienne")
        assert provider.verify_id_token(token, nonce)["sub"] == "pharmacienne"


def test_r9_a_doctor_reads_each_email_sent_to_them_as_sent_and_no_other(engine, workers, folder, issuer):
    from pipeline.services import audit

    with _console(engine, workers, folder, issuer) as console:
        assert _signed_in(console, "medecin").status_code == 303
        lines = console.get("/api/mes-livraisons").json()["lines"]
        mine = sorted({e["outbox_id"] for line in lines for e in line["emails"]})
        assert mine
        for outbox_id in mine:
            page = console.get(f"/mes-livraisons/emails/{outbox_id}")
            assert page.status_code == 200 and "Email tel qu" in page.text
        others = [r["id"] for r in console_outbox(engine) if r["id"] not in mine]
        assert others and all(console.get(f"/mes-livraisons/emails/{n}").status_code == 404 for n in others[:5])
        journal = json.dumps(audit.log(engine), default=str)
        assert DOCTOR not in journal and "self_view" in journal
        logout = console.post("/logout", data={"csrftoken": console.cookies.get("csrftoken")},
                              headers={"Origin": CONSOLE})
        assert logout.status_code == 303 and console.get("/api/mes-livraisons").status_code == 401


def console_outbox(engine) -> list[dict]:
    from sqlalchemy import text

    with engine.connect() as c:
        return [dict(row._mapping) for row in c.execute(text("SELECT id FROM outbox ORDER BY id"))]
