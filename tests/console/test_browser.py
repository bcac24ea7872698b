"""End to end in headless Chromium (Debian's, driven by Selenium through Debian's chromedriver):
`vialflow console` on a run folder, with its in-process worker and loopback SMTP server.

Support finds an officine by name, reads its deliveries and a line's explanation; an operator
composes a reallocation, previews it, confirms it, and follows it until its emails have settled.
Each page is kept as a screenshot in the test's output folder.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from pipeline.adapters.db import make_engine, migrate
from pipeline.services.accounts import add_user
from pipeline.settings import DATABASE_FILE

from .conftest import PASSWORDS, ROLES, serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SESSION = "2021-06-14"


def _browser_or_skip() -> None:
    if CHROMIUM and CHROMEDRIVER:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("no chromium or chromedriver: .ci/run installs Debian's chromium and chromium-driver")
    pytest.skip("no chromium or chromedriver (apt-get install chromium chromium-driver)")


@pytest.fixture
def console(fixture_run, tmp_path):
    """`vialflow console --out DIR` as an operator starts it, on a copy of the fixture's run folder."""
    _browser_or_skip()
    folder = tmp_path / "run"
    shutil.copytree(fixture_run, folder)
    engine = make_engine(f"sqlite:///{folder / DATABASE_FILE}")
    migrate(engine)
    for name, role in ROLES.items():
        add_user(engine, name, role, PASSWORDS[name], dt.datetime.now(dt.timezone.utc))
    with serving(folder, tmp_path / "console.log") as (base, _):
        yield base, folder, engine
    engine.dispose()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1400",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--lang=fr-FR"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


class Pages:
    """The browser, and a screenshot of each page it shows."""

    def __init__(self, driver, base: str, folder: Path) -> None:
        self.driver, self.base, self.folder, self.count = driver, base, folder, 0
        folder.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str) -> None:
        self.count += 1
        self._again(lambda: self.driver.set_window_size(
            1280, max(900, min(int(self.driver.execute_script("return document.body.scrollHeight")) + 120, 6000))))
        self.driver.save_screenshot(str(self.folder / f"{self.count:02d}-{name}.png"))

    def _again(self, action, tries: int = 5):
        """The follow page reloads itself every 2 s: an element read during a reload is read again."""
        from selenium.common.exceptions import WebDriverException

        for attempt in range(tries):
            try:
                return action()
            except WebDriverException:
                if attempt == tries - 1:
                    raise
                time.sleep(0.5)

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def field(self, name: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.NAME, name)

    def set(self, name: str, value: str) -> None:
        element = self.field(name)
        element.clear()
        element.send_keys(value)

    def submit(self, button_text: str) -> None:
        from selenium.webdriver.common.by import By

        self._then_wait(self.driver.find_element(By.XPATH, f"//button[contains(., \"{button_text}\")]"))

    def click_link(self, text_: str) -> None:
        from selenium.webdriver.common.by import By

        self._then_wait(self.driver.find_element(By.PARTIAL_LINK_TEXT, text_))

    def click_css(self, selector: str) -> None:
        from selenium.webdriver.common.by import By

        self._then_wait(self.driver.find_element(By.CSS_SELECTOR, selector))

    def _then_wait(self, element) -> None:
        """Click, then wait until the next page has replaced this one."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        from selenium.common.exceptions import WebDriverException

        page = self.driver.find_element(By.TAG_NAME, "html")
        element.click()

        def replaced(_driver) -> bool:
            # Chromium reports a node of a replaced document either as stale or as "does not belong to
            # the document" (an inspector error): both mean the next page is there.
            try:
                page.is_enabled()
            except WebDriverException:
                return True
            return False

        WebDriverWait(self.driver, 60).until(replaced)

    def text(self) -> str:
        from selenium.webdriver.common.by import By

        return self._again(lambda: self.driver.find_element(By.TAG_NAME, "main").text)

    def sign_in(self, name: str) -> None:
        self.open("/login")
        self.set("username", name)
        self.set("password", PASSWORDS[name])
        self.submit("Se connecter")


def test_support_finds_an_officine_by_name_and_reads_its_deliveries_and_an_explanation(console, browser, tmp_path):
    base, folder, engine = console
    pages = Pages(browser, base, tmp_path / "screenshots-support")
    deliveries = pd.read_csv(folder / "deliveries.csv", dtype=str, keep_default_na=False)
    line = deliveries[deliveries["status"] == "scheduled"].iloc[0]
    with engine.connect() as c:
        name = c.execute(text("SELECT name FROM pharmacies WHERE finess = :f"), {"f": line["finess"]}).scalar()
    pages.open("/login")
    pages.shot("connexion")
    pages.sign_in("sophie")
    assert "Trouver une officine" in pages.text()
    pages.shot("recherche")
    pages.set("q", name)
    pages.submit("Rechercher")
    assert line["finess"] in pages.text() and name not in browser.current_url
    pages.shot("resultats")
    pages.click_link(line["finess"])
    assert browser.current_url.endswith(f"/officines/{line['finess']}")
    shown = pages.text()
    day = dt.date.fromisoformat(line["delivery_date"])
    assert f"{day.day} juin 2021 : {line['vials']} fl. ({line['depot_id']})" in shown
    pages.shot("officine")
    pages.click_css(f"a[href^='/lignes/{line['order_id']}/explication']")
    said = pages.text()
    assert f"Ligne {line['order_id']}" in said and "heure de Paris" in said
    pages.shot("explication")
    pages.submit("Se déconnecter")
    assert "Connexion" in pages.text()


def test_an_operator_composes_previews_confirms_and_follows_a_reallocation_until_its_emails_settle(
        console, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base, folder, engine = console
    pages = Pages(browser, base, tmp_path / "screenshots-operator")
    mail_before = len(list((folder / "mail").glob("*.eml")))
    pages.sign_in("olivier")
    pages.open(f"/sessions/{SESSION}")
    pages.shot("session")
    pages.click_link("Composer une réallocation")
    browser.execute_script("arguments[0].value = '2021-06-22'", pages.field("effective"))
    pages.set("supply_moderna", "100")
    Select(pages.field("allocation_moderna")).select_by_value("pro_rata")  # R7: a policy as a change
    pages.shot("composition")
    pages.submit("Prévisualiser")
    preview = pages.text()
    assert "Aperçu : version 2" in preview and "ligne(s) changée(s)" in preview and "annule et remplace" in preview
    assert "Équité de la répartition, avant → après" in preview and "Indice de Gini" in preview
    pages.shot("apercu")
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM runs")).scalar() == 1  # a preview writes nothing
    pages.set("reason", "Arrivage de Moderna")
    pages.submit("Confirmer la réallocation")
    assert browser.current_url.endswith(f"/sessions/{SESSION}/versions/2/suivi")
    pages.shot("suivi")
    WebDriverWait(browser, 120, poll_frequency=1).until(lambda d: d.find_elements(By.ID, "settled"))
    assert "envoyé" in pages.text()
    pages.shot("suivi-termine")
    with engine.connect() as c:
        run = c.execute(text("SELECT id, operator, reason, settled FROM (SELECT id, operator, reason, 1 AS settled "
                             "FROM runs WHERE version = 2)")).one()
        states = dict(c.execute(text("SELECT state, count(*) FROM outbox WHERE run_id = :r GROUP BY state"),
                                {"r": run.id}).all())
    assert (run.operator, run.reason) == ("olivier", "Arrivage de Moderna")
    assert states and set(states) == {"sent"}
    assert len(list((folder / "mail").glob("*.eml"))) == mail_before + states["sent"]
    pages.open(f"/sessions/{SESSION}?avant=1&apres=2")
    assert "Arrivage de Moderna" in pages.text() and "De la version 1 à la version 2" in pages.text()
    assert "attribution moderna : au prorata" in pages.text()
    pages.shot("versions")
    pages.click_css("#verifier-2")  # the version just written, derived again and compared, emails and files too
    verified = pages.text()
    assert "Tout concorde" in verified and f"{states['sent']} emails" in verified, verified
    pages.shot("verification")
    pages.open(f"/sessions/{SESSION}/versions/2/rapport")
    pages.shot("rapport")
    pages.open(f"/sessions/{SESSION}/emails")
    pages.shot("emails")
    pages.submit("Se déconnecter")
    pages.sign_in("adele")
    pages.open("/admin/journal")
    assert "reallocate" in pages.text() and "Arrivage de Moderna" in pages.text() and "verify" in pages.text()
    pages.shot("journal")
    pages.open("/admin/comptes")
    pages.shot("comptes")


def test_r12_an_officine_asks_for_its_link_opens_it_from_its_email_and_reads_only_its_own_deliveries(
        console, browser, tmp_path):
    import email
    import re
    from email import policy

    base, folder, engine = console
    pages = Pages(browser, base, tmp_path / "screenshots-self-service")
    deliveries = pd.read_csv(folder / "deliveries.csv", dtype=str, keep_default_na=False)
    line = deliveries[deliveries["status"] == "scheduled"].iloc[0]
    other = sorted(set(deliveries["finess"]) - {line["finess"]})[0]
    before = set((folder / "mail").glob("*.eml"))
    pages.open("/connexion")
    pages.shot("connexion-officine")
    pages.set("finess", line["finess"])
    pages.submit("Recevoir un lien")
    assert "lien de connexion vient d'être envoyé" in pages.text()
    deadline = time.monotonic() + 30
    while not (arrived := sorted(set((folder / "mail").glob("*.eml")) - before)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(arrived) == 1
    body = email.message_from_bytes(arrived[0].read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
    link = re.search(r"http://\S+/connexion/lien/\S+", body).group(0)
    pages.driver.get(link)
    assert browser.current_url.endswith("/mes-livraisons")
    shown = pages.text()
    day = dt.date.fromisoformat(line["delivery_date"])
    assert f"Officine {line['finess']}" in shown and f"{day.day} juin 2021 : {line['vials']} fl., " in shown
    pages.shot("mes-livraisons")
    pages.click_link("lire l'email tel qu'envoyé")
    assert "Email tel qu'envoyé" in pages.text()
    pages.shot("email")
    pages.open(f"/officines/{other}")
    assert "Accès refusé" in pages.text()
    pages.open(link[len(base):])
    assert "n'est plus valable" in pages.text()
