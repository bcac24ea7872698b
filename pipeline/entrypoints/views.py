"""The views of `vialflow lookup`, `vialflow runs` and `vialflow reallocate --preview` for a terminal."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from pipeline.domain.french import french_date, vials
from pipeline.services.support import PENDING, STAMPS


# Terminal rendering. Every cell and title is a `Text`, so that a `[` in a name is not read as markup.
# `lookup` speaks French, with dates as a French reader writes them and instants in the session's time zone.

KINDS = {"pharmacien": "pharmacien", "medecin": "médecin", "medecin_travail": "médecin du travail",
         "sage_femme": "sage-femme", "infirmier": "infirmiers"}
INJECTIONS = {"first": "1re inj.", "second": "2e inj."}  # injection, abbreviated to fit its column
STATUSES = {"served": "servie", "partial": "servie en partie", "refused": "refusée"}
REASONS = {"cap": "plafond", "unit": "arrondi à la boîte", "supply": "stock épuisé", "eligibility": "non éligible",
           "window": "hors période", "zone": "hors zone", "not_attached": "non rattaché",
           "unknown_pharmacy": "officine inconnue", "unknown_professional": "professionnel inconnu",
           "cancelled": "annulée"}
SESSION_STATES = {"open": "ouverte", "closed": "close"}
STEPS = {"allocating": "allocation en cours", "allocated": "allouée", "scheduled": "livraisons planifiées",
         "prepared": "emails prêts", "sending": "emails envoyés"}
EMAIL_STATES = {"pending": "en attente", "queued": "confié à la file", "claimed": "pris en charge",
                "sending": "en cours d'envoi", "sent": "envoyé", "retry": "nouvel essai prévu", "failed": "échec",
                "unknown": "issue inconnue"}


def lookup_table(data: dict) -> RenderableType:
    """What `lookup` returned, as tables in French: the officine, then per run its lines and emails."""
    parts: list[RenderableType] = []
    for session in data["sessions"]:
        officine = session["officine"]
        zone = session.get("timezone") or "Europe/Paris"
        head = Table.grid(padding=(0, 2))
        head.add_column(style="bold")
        head.add_column()
        head.add_row(Text("Session"), Text(f"{session['session_id']}  {session['title']}"))
        head.add_row(Text("Clôture"), Text(f"{_instant(session['closes_at'], zone)}, "
                                           f"session {SESSION_STATES.get(session['state'], session['state'])}"))
        if officine is None:
            head.add_row(Text("Officine"), Text(f"{data['finess']} : absente du registre des officines de la session"))
        else:
            head.add_row(Text("Officine"),
                         Text(f"{officine['finess']}  {officine['name']}  département {officine['department']}"))
            head.add_row(Text("E-mail"), Text(officine["email"] or ""))
            depot, wholesaler = officine["depot_name"] or "", officine["wholesaler"] or "inconnu"
            head.add_row(Text("Dépôt"), Text(f"{officine['depot_id']}  {depot}" + (
                "" if depot.startswith(wholesaler) else f"  (grossiste-répartiteur : {wholesaler})")))
        parts.extend([Text(""), head])
        if not session["runs"]:
            parts.append(Text("Aucune version : la session n'est pas encore close.", style="italic"))
        depot = officine["depot_id"] if officine else None
        for run in session["runs"]:
            parts.append(_lines_table(run, depot, zone, session.get("vaccines") or {}))
            parts.extend(Text(f"Redistribution : {vials(int(item.get('vials') or 0))} de la commande "
                              f"{item.get('order_id')} au professionnel RPPS {item.get('to_rpps')}")
                         for item in run.get("redistributions", []))
            parts.append(_emails_table(run, zone))
    return Group(*parts)


def _lines_table(run: dict, depot: str | None, zone: str, labels: dict[str, str]) -> Table:
    title = (f"Version {run['version']} · {_instant(run['created_at'], zone)} · {run['operator']} · {run['reason']} · "
             f"{STEPS.get(run['step'], run['step'])}")
    table = Table(title=Text(title), title_justify="left", show_lines=True, pad_edge=False,
                  caption=Text("Flacons : servis sur demandés."), caption_justify="left")
    # Order ids, volumes and dates are what an adviser reads out: never cut; the rest wraps. Fits 80 columns.
    for heading, keep, least in (("Commande", True, None), ("Ligne", False, 11), ("Flacons", True, None),
                                 ("Statut", False, 7), ("Livraisons", True, None)):
        table.add_column(heading, no_wrap=keep, overflow="fold", min_width=least)
    for line in run["lines"]:
        who = "\n".join(x for x in (KINDS.get(line["effector"], line["effector"]), line["professional"], line["rpps"],
                                    labels.get(line["vaccine"], line["vaccine"]),
                                    INJECTIONS.get(line["injection"], line["injection"])) if x)
        # The depot is the officine's (shown above) unless the register says otherwise.
        days = "\n".join(f"{_day(d['date']) if d['date'] else PENDING} : {d['vials']}"
                         + (f"\n  (dépôt {d['depot_id']})" if d["depot_id"] != depot else "") for d in line["deliveries"])
        status = STATUSES.get(line["status"], line["status"])
        if line["reason"] != "ok":
            status += f"\n{REASONS.get(line['reason'], line['reason'])}"
        cells = (line["order_id"], who, f"{line['allocated']} sur {line['requested']}", status, days or "—")
        table.add_row(*(Text(x) for x in cells))
    if not run["lines"]:
        table.caption = Text("aucune ligne de cette officine dans cette version")
    return table


def _emails_table(run: dict, zone: str) -> RenderableType:
    if not run["emails"]:
        return Text(f"Version {run['version']} : aucun email à cette officine.", style="italic")
    table = Table(title=Text(f"Emails de la version {run['version']}"), title_justify="left", show_lines=True)
    table.add_column("Message-ID", no_wrap=True)
    for heading in ("État", "Essais", "Détail"):
        table.add_column(heading, overflow="fold")
    for email in run["emails"]:
        message = email["message_id"] + (f"\nannule et remplace\n{email['replaces']}" if email["replaces"] else "")
        state = EMAIL_STATES.get(email["state"], email["state"]) + (
            f"\n{_instant(email['sent_at'], zone)}" if email["sent_at"] else "")
        table.add_row(*(Text(x) for x in (message, state, str(email["attempts"]), email["detail"] or "")))
    return table


def _day(iso: str) -> str:
    """`lundi 21 juin 2021` for an ISO date."""
    return french_date(dt.date.fromisoformat(iso[:10]))


def _instant(iso: str | None, zone: str) -> str:
    """An ISO instant (UTC when naive) in the session's time zone: `mardi 15 juin 2021 à 23:00 (heure de Paris)`."""
    if not iso:
        return ""
    when = dt.datetime.fromisoformat(iso)
    local = (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).astimezone(ZoneInfo(zone))
    where = "heure de Paris" if zone == "Europe/Paris" else f"heure de {zone}"
    return f"{french_date(local.date())} à {local:%H:%M} ({where})"


def runs_table(runs: list[dict]) -> RenderableType:
    """What `list_runs` returned: one field/value table per version, oldest first."""
    if not runs:
        return Text("No run yet: the session is not closed.", style="italic")
    parts = []
    for run in runs:
        counts = run["counts"]
        table = Table(title=Text(f"Run {run['version']} · {_when(run['created_at'])} · {run['operator']}"),
                      title_justify="left", show_header=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        rows = [
            ("Reason", run["reason"]),
            ("Changes", json.dumps(run["changes"], ensure_ascii=False, sort_keys=True) if run["changes"] else "—"),
            ("Input hash", run["input_hash"]),
            ("Steps", "\n".join(f"{n[:-3]} {_when(run[n])}" for n in STAMPS if run[n]) or "—"),
            ("Lines", str(counts["lines"])),
            ("Vials", f"{counts['allocated_vials']} allocated: {counts['scheduled_vials']} scheduled, "
                      f"{counts['pending_vials']} {PENDING}"),
            ("Emails", ", ".join(f"{state} {n}" for state, n in counts["emails"].items()) or "—"),
        ]
        if run["error"]:
            rows.append(("Error", run["error"]))
        if run.get("view_failure"):
            rows.append(("View not written", run["view_failure"] + " (the data files are written)"))
        for name, value in rows:
            table.add_row(Text(name), Text(value))
        parts.append(table)
    return Group(*parts)


def _when(iso: str | None) -> str:
    """An ISO instant in UTC as `YYYY-MM-DD HH:MM UTC`."""
    return f"{iso[:16].replace('T', ' ')} UTC" if iso else ""


def preview_text(found: dict) -> str:
    """A reallocation's preview as an operator reads it, in French: nothing of it is written yet."""
    out = [f"Aperçu de la version {found['version']} de la session {found['session']} (rien n'est enregistré) :",
           f"  lignes modifiées : {len(found['lines'])}"]
    out += [f"    {line['order_id']}  {line['allocated_before']} → {line['allocated_after']} flacon(s)"
            + (f"  ({line['reason_before']} → {line['reason_after']})"
               if line["reason_before"] != line["reason_after"] else "") for line in found["lines"]]
    out.append("  flacons servis : " + ", ".join(f"{key} {v['before']} → {v['after']}"
                                               for key, v in found["vials"].items()))
    out.append(f"  lignes dont les livraisons changent : {len(found['deliveries'])}")
    out.append(f"  destinataires d'un email « annule et remplace » : {len(found['recipients'])}"
               + (f" ({', '.join(found['recipients'])})" if found["recipients"] else ""))
    return "\n".join(out)
