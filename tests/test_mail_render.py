"""The confirmation email (R9–R11) as bytes, read back with the standard library's parser."""

from __future__ import annotations

import dataclasses

import csv
import datetime as dt
import email
import email.policy
import io
import re

import pytest
from hypothesis import given, settings, strategies as st

from pipeline.adapters.mail.mime import check_address, clean
from pipeline.adapters.mail.render import CSV_COLUMNS, confirmation_csv, french_date, render
from pipeline.domain.confirmation import Confirmation, Gift, Line
from pipeline.domain.vocabulary import Reason

D, DAY = dt.date, dt.timedelta(days=1)
OFFICINE, DOCTOR, OCCUPATIONAL, MIDWIFE = "690012345", "10018938356", "10451394570", "10999999999"
SENDER = "Vaccination <noreply@vialflow.example.fr>"


def line(order_id: str, effector: str = "pharmacien", *, rpps: str = "", professional: str = "",
         vaccine: str = "janssen", injection: str = "first", requested: int = 10, allocated: int | None = None,
         status: str | None = None, reason: str = "ok", deliveries=None, redistribution_from: str = "") -> Line:
    allocated = requested if allocated is None else allocated
    status = status or ("served" if allocated == requested else "partial" if allocated else "refused")
    if deliveries is None:
        deliveries = ((D(2021, 6, 25), allocated),) if allocated else ()
    label = {"janssen": "Janssen", "astrazeneca": "AstraZeneca", "moderna": "Moderna"}[vaccine]
    return Line(order_id, effector, rpps, professional, vaccine, label, injection, requested, allocated, status,
                reason, tuple(deliveries), redistribution_from)


OFFICINE_LINES = (
    line("A-0001"),
    line("A-0002", "medecin", rpps=DOCTOR, professional="Dr Camille Morel", vaccine="astrazeneca", requested=8,
         allocated=5, reason="cap", deliveries=((D(2021, 6, 24), 3), (None, 2))),
    line("A-0003", "medecin_travail", rpps=OCCUPATIONAL, professional="Dr Sophie Renaud", vaccine="moderna",
         allocated=0, reason="supply"),
    line("A-0004", "infirmier", requested=20, deliveries=((D(2021, 6, 22), 12), (D(2021, 7, 1), 8))),
    line("A-0005", "medecin", rpps=DOCTOR, professional="Dr Camille Morel", requested=4),
    line("A-0006", "sage_femme", rpps=MIDWIFE, professional="Élodie Le Goff", vaccine="astrazeneca",
         deliveries=((D(2021, 6, 23), 10),)),
)


def confirmation(lines=OFFICINE_LINES, *, kind: str = "officine", recipient: str = OFFICINE,
                 name: str = "Pharmacie de la Gare Morel", address: str = "officine.690012345@pharma.example.fr",
                 run: int = 1, **changes) -> Confirmation:
    return Confirmation(
        session_id="2021-06-14", session_title="Commande de vaccins les 14 et 15 juin",
        reference="DGS-URGENT N°2021_60", run_version=run, recipient_id=recipient, recipient_kind=kind,
        name=name, email=address, sender=SENDER, message_id=f"<2021-06-14.{run}.{recipient}@vialflow>",
        lines=tuple(lines), **changes)


def doctor_confirmation(**changes) -> Confirmation:
    return confirmation([l for l in OFFICINE_LINES if l.rpps == DOCTOR], kind="medecin", recipient=DOCTOR,
                        name="Dr Camille Morel", address="camille.morel@sante.example.fr", **changes)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def html_of(message) -> str:
    return message.get_body(("html",)).get_content().replace("\r\n", "\n")


def attachment(message, filename: str) -> str:
    [part] = [part for part in message.iter_attachments() if part.get_filename() == filename]
    return part.get_content()


def csv_rows(message) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(attachment(message, "confirmation.csv"), newline="")))


def rows_of(rows, order_id):
    return [row for row in rows if row["order_id"] == order_id]


# -- headers and structure -------------------------------------------------------------------------------

def test_r9_message_has_the_contract_headers_and_no_date():
    raw = render(confirmation())
    message = parse(raw)
    assert message["From"] == SENDER
    assert message["To"] == "Pharmacie de la Gare Morel <officine.690012345@pharma.example.fr>"
    assert message["Subject"] == "Confirmation de votre commande de vaccins – session du 14 juin 2021"
    assert message["Message-ID"] == "<2021-06-14.1.690012345@vialflow.example.fr>"  # on the sending domain
    assert message["X-Vialflow-Session"] == "2021-06-14"
    assert message["X-Vialflow-Run"] == "1"
    assert message["X-Vialflow-Recipient"] == OFFICINE
    assert message["MIME-Version"] == "1.0"
    assert message["Date"] is None and message["Supersedes"] is None and message["References"] is None
    assert message.defects == [] and all(part.defects == [] for part in message.walk())


@pytest.mark.parametrize("sender, domain", [("Vaccination <ne-pas-repondre@ARS.example.org>", "ars.example.org"),
                                            ("noreply@dgs.example.fr", "dgs.example.fr")])
def test_r9_the_message_id_and_the_one_it_replaces_are_on_the_senders_domain(sender, domain):
    letter = confirmation(run=2, replaces="<2021-06-14.1.690012345@vialflow>")
    message = parse(render(dataclasses.replace(letter, sender=sender)))
    assert message["Message-ID"] == f"<2021-06-14.2.690012345@{domain}>"
    assert message["Supersedes"] == message["References"] == f"<2021-06-14.1.690012345@{domain}>"
    assert f"<2021-06-14.2.690012345@{domain}>" in text_of(message) and "@vialflow>" not in text_of(message)


def test_r9_message_is_mixed_with_text_html_csv_and_calendar_parts():
    message = parse(render(confirmation()))
    assert [part.get_content_type() for part in message.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "text/calendar"]
    for part in list(message.walk())[2:]:
        assert part.get_content_charset() == ("utf-8" if part.get_content_maintype() == "text" else None)
    assert [part.get_filename() for part in message.iter_attachments()] == [
        "confirmation.csv", "confirmation.xlsx", "livraisons.ics"]
    assert "<html lang=\"fr\">" in html_of(message)


def test_r9_message_uses_crlf_line_ends_and_short_lines_only():
    raw = render(confirmation())
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    assert max(len(text) for text in raw.split(b"\r\n")) <= 998
    assert raw.endswith(b"\r\n")


def test_r9_date_header_only_when_given():
    when = dt.datetime(2021, 6, 18, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    message = parse(render(confirmation(date=when)))
    assert message["Date"].datetime == when
    with pytest.raises(ValueError):
        render(confirmation(date=dt.datetime(2021, 6, 18, 9, 0)))


def test_r9_rendering_is_reproducible_from_the_same_data():
    assert render(confirmation()) == render(confirmation())
    assert render(confirmation()) != render(confirmation(run=2))


def test_r9_subject_of_a_session_that_is_not_a_date_names_its_title():
    message = parse(render(Confirmation(
        "national-juin", "Commande de vaccins", "REF", 1, OFFICINE, "officine", "P", "p@example.fr", SENDER,
        "<x.1@vialflow>", OFFICINE_LINES)))
    assert message["Subject"] == "Confirmation de votre commande de vaccins – session « Commande de vaccins »"


# -- content: R9, R10 ------------------------------------------------------------------------------------

def test_r9_officine_email_lists_own_and_professionals_lines():
    message = parse(render(confirmation()))
    text, html = text_of(message), html_of(message)
    titles = ["Pour l'officine (pharmacien)", "Pour le Dr Camille Morel (médecin, RPPS 10018938356)",
              "Pour le Dr Sophie Renaud (médecin du travail, RPPS 10451394570)",
              "Pour Élodie Le Goff (sage-femme, RPPS 10999999999)", "Pour les infirmiers rattachés"]
    positions = [text.index(f"== {title} ==") for title in titles]
    assert positions == sorted(positions)  # the officine first, the professionals, the nurse pool last
    for title in titles:
        assert title.replace("'", "&#39;") in html
    # both lines of Dr Morel sit under one heading
    morel = text[positions[1]:positions[2]]
    assert "(commande A-0002)" in morel and "(commande A-0005)" in morel
    assert [row["order_id"] for row in csv_rows(message)] == [
        "A-0001", "A-0002", "A-0002", "A-0003", "A-0004", "A-0004", "A-0005", "A-0006"]


def test_r9_each_line_shows_vaccine_injection_requested_and_served():
    text = text_of(parse(render(confirmation())))
    assert "* AstraZeneca, 1re injection (commande A-0002)\n  Demandé : 8 flacons. Servi : 5 flacons, servie en partie.\n" \
        in text
    assert "* Janssen, 1re injection (commande A-0001)\n  Demandé : 10 flacons. Servi : 10 flacons, servie en totalité.\n" \
        in text


def test_r9_csv_has_the_contract_columns_and_one_row_per_line_and_delivery():
    message = parse(render(confirmation()))
    content = attachment(message, "confirmation.csv")
    assert content.splitlines()[0] == ",".join(CSV_COLUMNS) == (
        "order_id,effector,rpps,vaccine,injection,requested,allocated,status,reason,delivery_date,vials,"
        "earliest_appointment,redistribution_from")
    rows = csv_rows(message)
    assert rows_of(rows, "A-0002") == [
        {"order_id": "A-0002", "effector": "medecin", "rpps": DOCTOR, "vaccine": "astrazeneca", "injection": "first",
         "requested": "8", "allocated": "5", "status": "partial", "reason": "cap", "delivery_date": "2021-06-24",
         "vials": "3", "earliest_appointment": "2021-06-25", "redistribution_from": "2021-07-01"},
        {"order_id": "A-0002", "effector": "medecin", "rpps": DOCTOR, "vaccine": "astrazeneca", "injection": "first",
         "requested": "8", "allocated": "5", "status": "partial", "reason": "cap", "delivery_date": "",
         "vials": "2", "earliest_appointment": "", "redistribution_from": ""},
    ]
    for order_id in {row["order_id"] for row in rows}:
        [source] = [l for l in OFFICINE_LINES if l.order_id == order_id]
        assert sum(int(row["vials"] or 0) for row in rows_of(rows, order_id)) == source.allocated


def test_r9_refused_line_has_one_row_with_empty_delivery_fields_and_a_french_reason():
    message = parse(render(confirmation()))
    assert rows_of(csv_rows(message), "A-0003") == [
        {"order_id": "A-0003", "effector": "medecin_travail", "rpps": OCCUPATIONAL, "vaccine": "moderna",
         "injection": "first", "requested": "10", "allocated": "0", "status": "refused", "reason": "supply",
         "delivery_date": "", "vials": "", "earliest_appointment": "", "redistribution_from": ""}]
    text = text_of(message)
    assert "Servi : 0 flacon, refusée.\n  Motif : Volume disponible épuisé (premier arrivé, premier servi)" in text


def test_r9_pending_remainder_says_date_communiquee_ulterieurement():
    message = parse(render(confirmation()))
    assert "  - 2 flacons : date communiquée ultérieurement.\n" in text_of(message)
    assert "2 flacons : date communiquée ultérieurement" in html_of(message)
    assert "La date de livraison des flacons restants vous sera communiquée dans les meilleurs délais." \
        in text_of(message)
    without_pending = parse(render(confirmation([OFFICINE_LINES[0]])))
    assert "ultérieurement" not in text_of(without_pending)


def test_r9_each_delivery_shows_its_french_date_and_volume():
    text = text_of(parse(render(confirmation())))
    assert "  - Livraison le mardi 22 juin 2021 : 12 flacons." in text
    assert "  - Livraison le jeudi 1er juillet 2021 : 8 flacons." in text


def test_r9_earliest_appointment_is_the_day_after_delivery():
    message = parse(render(confirmation()))
    text = text_of(message)
    assert "Livraison le vendredi 25 juin 2021 : 10 flacons. Rendez-vous à partir du samedi 26 juin 2021." in text
    assert "Livraison le jeudi 1er juillet 2021 : 8 flacons. Rendez-vous à partir du vendredi 2 juillet 2021." in text
    for row in csv_rows(message):
        if row["delivery_date"]:
            assert D.fromisoformat(row["earliest_appointment"]) == D.fromisoformat(row["delivery_date"]) + DAY
    assert "positionnés à partir du lendemain de la date prévisionnelle de livraison" in text


def test_r10_officine_email_shows_redistribution_date():
    message = parse(render(confirmation()))
    text = text_of(message)
    assert ("Livraison le jeudi 24 juin 2021 : 3 flacons. Rendez-vous à partir du vendredi 25 juin 2021.\n"
            "    Flacons non récupérés : proposables à d'autres professionnels à partir du jeudi 1er juillet 2021.") \
        in text
    assert "à partir du jeudi 1er juillet 2021" in html_of(message)
    for row in csv_rows(message):
        if row["delivery_date"]:
            assert D.fromisoformat(row["redistribution_from"]) == D.fromisoformat(row["delivery_date"]) + 7 * DAY
        else:
            assert row["redistribution_from"] == ""


def test_r10_professional_email_leaves_the_redistribution_date_out():
    message = parse(render(doctor_confirmation()))
    assert message["X-Vialflow-Recipient"] == DOCTOR
    assert {row["order_id"] for row in csv_rows(message)} == {"A-0002", "A-0005"}
    assert all(row["redistribution_from"] == "" for row in csv_rows(message))
    text = text_of(message)
    assert "proposables" not in text and "== " not in text  # no per-beneficiary headings either
    assert "commandés pour vous (médecin) par votre officine de rattachement" in text


def test_r10_a_redistribution_value_given_on_the_line_is_written_as_is():
    given = line("A-0007", redistribution_from="2021-07-05")
    rows = list(csv.DictReader(io.StringIO(confirmation_csv(confirmation([given], kind="medecin")).decode())))
    assert [row["redistribution_from"] for row in rows] == ["2021-07-05"]


def test_r9_the_email_says_seul_ce_mail_fait_foi():
    message = parse(render(doctor_confirmation()))
    assert "Seul ce mail fait foi sur la date et les volumes de livraison prévus." in text_of(message)
    assert "Seul ce mail fait foi" in html_of(message)


@pytest.mark.parametrize("reason, phrase", [
    ("cap", "plafond par professionnel atteint"),
    ("unit", "arrondi à la boîte entière"),
    ("supply", "volume disponible épuisé (premier arrivé, premier servi)"),
    ("eligibility", "n'est pas ouvert à la commande"),
    ("window", "en dehors de la période d'ouverture"),
    ("zone", "en dehors de la zone géographique"),
    ("not_attached", "officine de rattachement"),
    ("unknown_pharmacy", "finess inconnu"),
    ("unknown_professional", "rpps absent, inconnu"),
    ("cancelled", "annulée"),
])
def test_r9_reasons_are_plain_french_sentences(reason, phrase):
    refused = line("A-0009", requested=4, allocated=0, reason=reason)
    text = text_of(parse(render(confirmation([refused]))))
    [motif] = [row for row in text.splitlines() if row.startswith("  Motif : ")]
    assert phrase in motif.lower() and motif.endswith(".") and len(motif) > 40


@pytest.mark.parametrize("effector, rpps, cap, said", [
    ("medecin", "10000000001", 5, "Plafond de 5 flacons par médecin atteint"),
    ("pharmacien", "", 5, "Plafond de 5 flacons pour l'officine atteint"),
    ("infirmier", "", 20, "Plafond de 20 flacons pour les infirmiers rattachés à l'officine atteint"),
])
def test_r4_r5_a_line_cut_by_its_cap_says_the_cap_in_vials(effector, rpps, cap, said):
    cut = dataclasses.replace(line("A-0009", effector, rpps=rpps, requested=8, allocated=cap, reason="cap"), cap=cap)
    message = parse(render(confirmation([cut])))
    [motif] = [row for row in text_of(message).splitlines() if row.startswith("  Motif : ")]
    assert motif.startswith(f"  Motif : {said}")
    assert said in html_of(message).replace("&#39;", "'")


def test_r9_injections_are_written_1re_and_2e():
    text = text_of(parse(render(confirmation([line("A-0001"), line("A-0002", injection="second")]))))
    assert "Janssen, 1re injection" in text and "Janssen, 2e injection" in text
    assert "1ère" not in text and "2nde" not in text


def test_r9_a_served_line_shows_no_reason():
    assert "Motif" not in text_of(parse(render(confirmation([OFFICINE_LINES[0]]))))
    assert {reason.value for reason in Reason} == {"ok", "cap", "unit", "supply", "eligibility", "window", "zone",
                                                   "not_attached", "unknown_pharmacy", "unknown_professional",
                                                   "cancelled"}


@pytest.mark.parametrize("day, words", [
    (D(2021, 6, 25), "vendredi 25 juin 2021"), (D(2021, 7, 1), "jeudi 1er juillet 2021"),
    (D(2021, 8, 15), "dimanche 15 août 2021"), (D(2021, 12, 6), "lundi 6 décembre 2021"),
    (D(2022, 2, 1), "mardi 1er février 2022"),
])
def test_dates_are_written_as_a_french_reader_expects(day, words):
    assert french_date(day) == words


def test_r9_calendar_has_one_all_day_event_per_scheduled_delivery_date():
    calendar = attachment(parse(render(confirmation())), "livraisons.ics")
    assert calendar.startswith("BEGIN:VCALENDAR\r\n") and calendar.endswith("END:VCALENDAR\r\n")
    assert all(len(row.encode()) <= 75 for row in calendar.split("\r\n"))
    unfolded = calendar.replace("\r\n ", "")
    events = re.findall(r"BEGIN:VEVENT\r\n(.*?)END:VEVENT", unfolded, re.S)
    starts = [re.search(r"DTSTART;VALUE=DATE:(\d{8})", event).group(1) for event in events]
    assert starts == ["20210622", "20210623", "20210624", "20210625", "20210701"]  # the pending 2 vials: none
    assert len({re.search(r"UID:(\S+)", event).group(1) for event in events}) == len(events)
    assert all("DTSTAMP:" in event and "DTEND;VALUE=DATE:" in event for event in events)
    june_25 = events[3]
    assert "SUMMARY:Livraison de vaccins : 14 flacons\r\n" in june_25
    assert ("DESCRIPTION:Janssen 1re injection : 10 flacons (commande A-0001)\\nJanssen 1re injection\\, "
            "Dr Camille Morel : 4 flacons (commande A-0005)\\nRendez-vous à partir du samedi 26 juin 2021.\r\n") \
        in june_25
    assert "AstraZeneca 1re injection\\, Élodie Le Goff : 10 flacons (commande A-0006)" in events[1]


def test_r11_a_replacement_updates_the_same_calendar_events():
    first = attachment(parse(render(confirmation())), "livraisons.ics").replace("\r\n ", "")
    second = attachment(parse(render(confirmation(run=2, replaces="<2021-06-14.1.690012345@vialflow>"))),
                        "livraisons.ics").replace("\r\n ", "")
    assert re.findall(r"UID:\S+", first) == re.findall(r"UID:\S+", second)
    assert "SEQUENCE:1" in first and "SEQUENCE:2" in second and "SEQUENCE:1" not in second


# -- R11 ---------------------------------------------------------------------------------------------------

def test_r11_replacement_is_marked_annule_et_remplace():
    old = "<2021-06-14.1.690012345@vialflow.example.fr>"
    changes = ("La livraison du jeudi 24 juin 2021 est avancée au mercredi 23 juin 2021.",
               "La commande A-0003 est désormais servie.")
    message = parse(render(confirmation(run=2, replaces=old, changes=changes)))
    assert message["Subject"] == ("Annule et remplace : Confirmation de votre commande de vaccins – "
                                  "session du 14 juin 2021")
    assert message["Supersedes"] == old and message["References"] == old
    assert message["Message-ID"] == "<2021-06-14.2.690012345@vialflow.example.fr>" and message["X-Vialflow-Run"] == "2"
    text = text_of(message)
    assert text.index("ANNULE ET REMPLACE") < text.index("Voici la confirmation")
    assert f"annule et remplace la confirmation qui vous a été envoyée précédemment (référence {old})" in text
    assert "  - La livraison du jeudi 24 juin 2021 est avancée au mercredi 23 juin 2021.\n" in text
    assert "<li>La commande A-0003 est désormais servie.</li>" in html_of(message)


def test_r11_an_invalid_replaced_message_id_is_refused():
    with pytest.raises(ValueError):
        render(confirmation(replaces="<a@b>\r\nBcc: evil@example.org"))


# -- safety ------------------------------------------------------------------------------------------------

def test_header_injection_in_a_name_gives_one_recipient_and_no_extra_header():
    evil = "Pharmacie X\r\nBcc: evil@example.org\r\nX-Injected: 1"
    raw = render(confirmation(name=evil))
    message = parse(raw)
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert [address.addr_spec for address in message["To"].addresses] == ["officine.690012345@pharma.example.fr"]
    assert message["To"].addresses[0].display_name == "Pharmacie X Bcc: evil@example.org X-Injected: 1"
    assert not re.search(rb"^(Bcc|X-Injected):", raw, re.M)
    assert set(message.keys()) == {"From", "To", "Subject", "Message-ID", "X-Vialflow-Session", "X-Vialflow-Run",
                                   "X-Vialflow-Recipient", "MIME-Version", "Content-Type"}


def test_header_injection_in_sender_session_and_professional_names_changes_no_header():
    lines = [line("A-0001", "medecin", rpps=DOCTOR, professional="Dr Evil\r\nBcc: evil@example.org")]
    raw = render(Confirmation(
        "2021-06-14\r\nBcc: evil@example.org", "Titre\nBcc: x@example.org", "REF", 1, f"{OFFICINE}\r\nCc: x@y.org",
        "officine", "P", "p@example.fr", "Vaccination\r\nBcc: evil@example.org <noreply@vialflow.example.fr>",
        "<m.1@vialflow>", tuple(lines)))
    message = parse(raw)
    assert message["Bcc"] is None and message["Cc"] is None
    assert not re.search(rb"^(Bcc|Cc):", raw, re.M)
    assert [address.addr_spec for address in message["From"].addresses] == ["noreply@vialflow.example.fr"]
    assert "Dr Evil Bcc: evil@example.org" in text_of(message)


@pytest.mark.parametrize("address", [
    "a@example.fr, evil@example.org", "<a@example.fr>", "Name <a@example.fr>", "a@example.fr\r\nBcc: e@example.org",
    "a@example.fr\n", "no-at-sign", "", "a b@example.fr", "é@example.fr", "a@@example.fr", "a@example..fr",
    ".a@example.fr", "a@-example.fr", "a@example.fr;b@example.fr", "a\x00@example.fr",
])
def test_an_invalid_recipient_address_raises_value_error(address):
    with pytest.raises(ValueError):
        render(confirmation(address=address))


def test_valid_addresses_pass():
    for address in ("a@example.fr", "o'brien+vaccin@sante.example.fr", "x.y-z@a-b.example", "a@localhost"):
        assert check_address(address) == address


def test_display_names_are_quoted_or_encoded_and_read_back():
    for name in ('Dr "Jo" Dupont, Jr.', "Pharmacie de l'Église Saint-Étienne", "Mme Ñúñez (sage-femme)",
                 "=?utf-8?b?QUJD?=", "Pharmacie " + "Très Longue " * 30, "Élodie Lefèvre-Bénédicte Éléonore"):
        raw = render(confirmation(name=name))
        [address] = parse(raw)["To"].addresses
        assert address.addr_spec == "officine.690012345@pharma.example.fr"
        assert address.display_name == name[:200].strip()
        to = re.search(rb"^To: .*?(?=\r\n\S)", raw, re.M | re.S).group()
        assert all(len(row) <= 78 for row in to.split(b"\r\n"))


def test_plain_words_of_a_display_name_stay_readable():
    raw = render(confirmation(name="Pharmacie de l'Église"))
    assert re.search(rb"^To: Pharmacie de =\?utf-8\?b\?bCfDiWdsaXNl\?=\s+<officine.690012345@pharma.example.fr>\r\n",
                     raw, re.M)
    assert re.search(rb"^Subject: Confirmation de votre commande de vaccins\s+=\?utf-8\?b\?4oCT\?=\s+"
                     rb"session du 14 juin 2021\r\n", raw, re.M)
    assert all(len(row) <= 78 for row in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"))


def test_a_very_long_free_text_falls_back_to_base64():
    long_change = "La livraison change " + "beaucoup " * 200 + "demain."
    raw = render(confirmation(run=2, replaces="<2021-06-14.1.690012345@vialflow>", changes=(long_change,)))
    assert max(len(text) for text in raw.split(b"\r\n")) <= 998
    message = parse(raw)
    assert message.get_body(("plain",))["Content-Transfer-Encoding"] == "base64"
    assert message.get_body(("html",))["Content-Transfer-Encoding"] == "base64"
    assert long_change in text_of(message) and long_change in html_of(message)
    assert message.get_body(("plain",)).get_content().endswith("\r\n")


def test_text_parts_travel_as_readable_8bit_utf8():
    raw = render(confirmation())
    assert "Demandé : 8 flacons. Servi : 5 flacons, servie en partie.".encode() in raw
    assert "A-0002,medecin,10018938356,astrazeneca,first,8,5,partial,cap,2021-06-24,3,2021-06-25,2021-07-01\r\n" \
        .encode() in raw
    message = parse(raw)
    assert [part["Content-Transfer-Encoding"] for part in list(message.walk())[2:]] == ["8bit", "8bit", "7bit", "base64", "8bit"]


def test_an_order_id_forging_the_mime_boundary_cannot_break_the_message():
    import hashlib
    token = hashlib.blake2s(b"<2021-06-14.1.690012345@vialflow.example.fr>", digest_size=12).hexdigest()
    forged = line(f"--=_mixed_{token}")
    message = parse(render(confirmation([forged, OFFICINE_LINES[0]])))
    assert [part.get_filename() for part in message.iter_attachments()] == [
        "confirmation.csv", "confirmation.xlsx", "livraisons.ics"]
    assert [row["order_id"] for row in csv_rows(message)] == [f"--=_mixed_{token}", "A-0001"]


names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)


@settings(max_examples=80, deadline=None)
@given(name=names, professional=names, change=names)
def test_any_name_yields_one_well_formed_message_with_one_recipient(name, professional, change):
    lines = [line("A-0001", "medecin", rpps=DOCTOR, professional=professional)]
    raw = render(confirmation(lines, name=name, run=2, replaces="<2021-06-14.1.690012345@vialflow>",
                              changes=(change,)))
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    assert max(len(text) for text in raw.split(b"\r\n")) <= 998
    message = parse(raw)
    assert message.defects == []
    assert [address.addr_spec for address in message["To"].addresses] == ["officine.690012345@pharma.example.fr"]
    # the standard library reads a space between two adjacent encoded-words (RFC 2047 says to ignore it)
    assert "".join(message["To"].addresses[0].display_name.split()) == "".join(clean(name)[:200].split())
    assert len(message.get_all("To")) == 1 and message["Bcc"] is None and message["Cc"] is None
    assert set(message.keys()) == {"From", "To", "Subject", "Message-ID", "X-Vialflow-Session", "X-Vialflow-Run",
                                   "X-Vialflow-Recipient", "Supersedes", "References", "MIME-Version",
                                   "Content-Type"}
    assert len(list(message.iter_attachments())) == 3


# -- part 4: what a French pharmacist reads -----------------------------------------------------------------

DEPOT = "OCP Répartition (dépôt 69)"


def with_depots(lines, depot: str = DEPOT):
    return [dataclasses.replace(l, depots=tuple(depot for _ in l.deliveries)) for l in lines]


def xlsx_rows(message) -> list[tuple]:
    import openpyxl

    [part] = [part for part in message.iter_attachments() if part.get_filename() == "confirmation.xlsx"]
    sheet = openpyxl.load_workbook(io.BytesIO(part.get_content()), read_only=True).active
    return [tuple(row) for row in sheet.iter_rows(values_only=True)]


def test_r9_the_email_opens_with_totals_of_lines_and_vials():
    message = parse(render(confirmation()))
    text = text_of(message)
    # 6 lines; 10+8+10+20+4+10 requested; 10+5+0+20+4+10 served; of them 2 pending (A-0002)
    totals = ("  Lignes de commande : 6\n  Flacons demandés : 62\n  Flacons servis : 49\n"
              "  dont livraison programmée : 47\n  dont en attente d'une date de livraison : 2\n")
    assert totals in text and text.index("En résumé") < text.index("== Pour l'officine")
    html = html_of(message)
    assert "En résumé" in html and "<td style=\"padding: 3px 12px;\">Flacons servis</td>" in html
    assert html.index("En résumé") < html.index("Pour l&#39;officine")


def test_r8_each_delivery_names_its_wholesaler_and_depot():
    message = parse(render(confirmation(with_depots(OFFICINE_LINES))))
    text = text_of(message)
    assert f"Livraison le jeudi 24 juin 2021 par {DEPOT} : 3 flacons." in text
    assert f"  - 2 flacons à livrer par {DEPOT} : date communiquée ultérieurement.\n" in text
    assert text.count(f"par {DEPOT}") == sum(len(l.deliveries) for l in OFFICINE_LINES)
    assert html_of(message).count(f"Livraison par {DEPOT}") == sum(len(l.deliveries) for l in OFFICINE_LINES)
    assert {row[12] for row in xlsx_rows(message)[1:] if row[11]} == {DEPOT}


GIVEN = dataclasses.replace(OFFICINE_LINES[1], given=(Gift(3, "10278079636", "Dr Julien Girard", "medecin"),))
RECEIVED = Line("A-0002", "medecin", "10278079636", "Dr Julien Girard", "astrazeneca", "AstraZeneca", "first", 3, 3,
                "served", "ok", ((D(2021, 7, 2), 3),), redistribution_from=OFFICINE,
                received_from=f"Pharmacie de la Gare Morel (FINESS {OFFICINE})")


def test_r10_a_redistribution_is_said_on_the_giving_line_of_the_officine_and_of_the_professional():
    lines = (OFFICINE_LINES[0], GIVEN, *OFFICINE_LINES[2:])
    said = "3 flacons non récupérés redistribués au Dr Julien Girard (médecin, RPPS 10278079636)."
    for message in (parse(render(confirmation(lines))),
                    parse(render(confirmation([GIVEN], kind="medecin", recipient=DOCTOR, name="Dr Camille Morel")))):
        text = text_of(message)
        block = text[text.index("(commande A-0002)"):]
        assert f"  - {said}\n" in block.split("\n* ")[0]
        assert said in html_of(message)
        assert [row[15] for row in xlsx_rows(message)[1:] if row[0] == "A-0002"] == [said, said]
    # confirmation.csv keeps the contract's meaning on the officine's rows: the date from which vials may go
    rows = rows_of(csv_rows(parse(render(confirmation(lines)))), "A-0002")
    assert [row["redistribution_from"] for row in rows] == ["2021-07-01", ""]


def test_r10_the_receiving_professional_reads_the_vials_as_a_line_of_their_own_with_the_officine_named():
    own = line("A-0010", "medecin", rpps="10278079636", professional="Dr Julien Girard", vaccine="astrazeneca",
               requested=2)
    message = parse(render(confirmation([own, RECEIVED], kind="medecin", recipient="10278079636",
                                        name="Dr Julien Girard")))
    text = text_of(message)
    assert "== Flacons non récupérés qui vous sont redistribués ==" in text
    assert ("* AstraZeneca, 1re injection (commande A-0002)\n  Demandé : 3 flacons. Servi : 3 flacons, servie en "
            "totalité.\n  3 flacons non récupérés à l'officine Pharmacie de la "
            f"Gare Morel (FINESS {OFFICINE}) vous sont redistribués.\n  - À retirer à l'officine à partir du "
            "vendredi 2 juillet 2021. Rendez-vous à partir du samedi 3 juillet 2021.\n") in text
    assert "  Lignes de commande : 1\n" in text and "  Flacons non récupérés qui vous sont redistribués : 3\n" in text
    assert "Pharmacie de la Gare Morel (FINESS 690012345) vous sont redistribués" in html_of(message)
    rows = csv_rows(message)
    assert [row["redistribution_from"] for row in rows] == ["", OFFICINE]
    assert [rows[1][k] for k in ("order_id", "rpps", "vials", "delivery_date", "earliest_appointment")] == [
        "A-0002", "10278079636", "3", "2021-07-02", "2021-07-03"]
    [received] = [row for row in xlsx_rows(message)[1:] if row[0] == "A-0002"]
    # one truth: the requested and served vials and the status confirmation.csv and the text give it
    assert received[6:9] == (3, 3, "servie en totalité") and received[11] == 3
    assert "Pharmacie de la Gare Morel" in received[15]


def test_r9_confirmation_xlsx_has_french_headings_real_dates_numbers_and_ids_as_text():
    message = parse(render(confirmation(with_depots(OFFICINE_LINES))))
    rows = xlsx_rows(message)
    assert rows[0][:4] == ("Commande", "Effecteur", "Professionnel", "RPPS")
    assert "Date de livraison" in rows[0] and "Rendez-vous à partir du" in rows[0]
    by_csv = csv_rows(message)
    assert len(rows) - 1 == len(by_csv)  # one row per line and delivery, as confirmation.csv
    first = rows[1]
    assert first[0] == "A-0001" and first[6:8] == (10, 10) and isinstance(first[6], int)
    assert first[10] == dt.datetime(2021, 6, 25) and first[13] == dt.datetime(2021, 6, 26)
    cut = [row for row in rows if row[0] == "A-0002"]
    assert cut[0][1] == "médecin" and cut[0][3] == "10018938356" and cut[0][5] == "1re injection"
    # the date column holds dates only; a pending remainder is said in the delivery's status column
    assert cut[1][10] is None and cut[1][11] == 2 and cut[1][16] == "date communiquée ultérieurement"
    assert cut[0][16] == "livraison programmée"
    officine = confirmation([line("A-0001", vaccine="janssen")], recipient="010023456")
    assert xlsx_rows(parse(render(dataclasses.replace(officine, lines=(
        line("010023456", "pharmacien"),)))))[1][0] == "010023456"  # text keeps its leading zero


def test_r4_confirmation_xlsx_says_the_cap_that_cut_the_line():
    cut = dataclasses.replace(line("A-0009", "medecin", rpps=DOCTOR, requested=8, allocated=5, reason="cap"), cap=5)
    [row] = xlsx_rows(parse(render(confirmation([cut]))))[1:]
    assert row[9] == "plafond de 5 flacons atteint"


def test_r9_confirmation_xlsx_is_the_same_bytes_for_the_same_message_and_text_stays_text():
    formula = line("=HYPERLINK(\"http://x\")")
    first = render(confirmation([formula]))
    assert first == render(confirmation([formula]))
    assert xlsx_rows(parse(first))[1][0] == '=HYPERLINK("http://x")'


def test_r9_no_french_ordinal_is_written_the_old_way_anywhere_in_the_email():
    raw = render(confirmation(with_depots(OFFICINE_LINES))).decode("utf-8", "replace")
    for old in ("1ère", "1ere", "2ème", "2eme", "2nde", "1er injection"):
        assert old not in raw


# -- what each recipient opens: no empty calendar, one truth per line, doses beside vials ----------------------

def test_r9_no_calendar_is_attached_when_nothing_has_a_date_and_the_email_says_so():
    nothing = [line("A-0003", "medecin_travail", rpps=OCCUPATIONAL, professional="Dr Sophie Renaud",
                    vaccine="moderna", allocated=0, reason="supply"),
               line("A-0008", requested=4, deliveries=((None, 4),))]  # served, its date still to come (R8)
    message = parse(render(confirmation(nothing)))
    assert [part.get_filename() for part in message.iter_attachments()] == ["confirmation.csv", "confirmation.xlsx"]
    text, html = text_of(message), html_of(message)
    assert "livraisons.ics" not in text and "livraisons.ics" not in html
    said = "Aucune livraison n'a de date pour l'instant : ce mail ne joint donc pas de calendrier des livraisons."
    assert said in text and said in html
    # one dated delivery is enough for the calendar, and the email then points to it
    dated = parse(render(confirmation([*nothing, line("A-0001")])))
    assert [part.get_filename() for part in dated.iter_attachments()][-1] == "livraisons.ics"
    assert "les dates de livraison dans livraisons.ics" in text_of(dated) and said not in text_of(dated)


@pytest.mark.parametrize("rpps, heading", [
    ("", "Pour un professionnel non reconnu (médecin, sans numéro RPPS)"),
    ("10000000001", "Pour un professionnel non reconnu (médecin, RPPS 10000000001)")])
def test_r2_a_refused_line_whose_professional_is_unknown_is_headed_as_such(rpps, heading):
    unknown = line("A-0011", "medecin", rpps=rpps, allocated=0, reason="unknown_professional")
    message = parse(render(confirmation([OFFICINE_LINES[0], unknown])))
    text, html = text_of(message), html_of(message)
    assert f"== {heading} ==\n\n* Janssen, 1re injection (commande A-0011)\n" in text
    assert f">{heading}</h2>" in html
    assert "Pour RPPS" not in text and "Pour RPPS" not in html and "RPPS )" not in text


def test_r9_doses_are_said_beside_vials_in_the_totals_and_on_each_line():
    per_vial = {"janssen": 5, "astrazeneca": 10, "moderna": 10}
    lines = [dataclasses.replace(l, doses_per_vial=per_vial[l.vaccine]) for l in OFFICINE_LINES]
    message = parse(render(confirmation(lines)))
    text = text_of(message)
    requested = sum(l.requested * per_vial[l.vaccine] for l in lines)
    served = sum(l.allocated * per_vial[l.vaccine] for l in lines)
    assert f"  Flacons demandés : 62 ({requested} doses)\n  Flacons servis : 49 ({served} doses)\n" in text
    assert "  dont en attente d'une date de livraison : 2 (20 doses)\n" in text
    assert ("* AstraZeneca, 1re injection (commande A-0002)\n  Demandé : 8 flacons (80 doses). Servi : 5 flacons "
            "(50 doses), servie en partie.\n") in text
    assert "Livraison le jeudi 24 juin 2021 : 3 flacons (30 doses)." in text
    assert "  - 2 flacons (20 doses) : date communiquée ultérieurement.\n" in text
    assert "Demandé : 10 flacons (100 doses). Servi : 0 flacon, refusée.\n" in text  # never "0 dose"
    assert "5 flacons (50 doses), servie en partie" in html_of(message)
    calendar = attachment(message, "livraisons.ics").replace("\r\n ", "")
    assert "AstraZeneca 1re injection\\, Dr Camille Morel : 3 flacons (30 doses) (commande A-0002)" in calendar
    rows = xlsx_rows(message)
    column = {name: index for index, name in enumerate(rows[0])}
    for row in rows[1:]:
        [source] = [l for l in lines if l.order_id == row[0]]
        assert row[column["Doses demandées"]] == source.requested * source.doses_per_vial
        assert row[column["Doses servies"]] == source.allocated * source.doses_per_vial
        vials = row[column["Flacons de la livraison"]]
        assert row[column["Doses de la livraison"]] == (None if vials is None else vials * source.doses_per_vial)


def test_r10_a_redistributed_line_says_the_same_vials_and_status_in_the_csv_spreadsheet_text_and_html():
    received = dataclasses.replace(RECEIVED, doses_per_vial=10)
    message = parse(render(confirmation([received], kind="medecin", recipient="10278079636",
                                        name="Dr Julien Girard")))
    [row] = csv_rows(message)
    [sheet] = xlsx_rows(message)[1:]
    assert (row["requested"], row["allocated"], row["status"]) == ("3", "3", "served")
    assert sheet[6:9] == (3, 3, "servie en totalité")  # the status the vocabulary says of `served`
    said = "Demandé : 3 flacons (30 doses). Servi : 3 flacons (30 doses), servie en totalité."
    assert said in text_of(message)
    html = html_of(message)
    assert "<td>3 flacons (30 doses)</td>" in html and "3 flacons (30 doses), servie en totalité" in html
    assert "redistribution)" not in html and "&mdash;</td><td>3 flacons" not in html
