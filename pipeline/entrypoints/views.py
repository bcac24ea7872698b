"""The views of `vialflow lookup`, `runs`, `emails`, `run` and `reallocate --preview` for a terminal, in French.

Every cell and title is a `Text`, so that a `[` in a name is not read as markup. Codes are said with the
vocabulary's labels, dates as a French reader writes them, instants in the session's time zone (Paris when
the view does not know it), to the minute.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from pipeline.domain.french import french_date, number, vials
from pipeline.domain.vocabulary import Delivery, EmailState, Injection, Kind, Reason, RunStep, SessionState, Status
from pipeline.services.chain import RUN, SEND

PARIS = "Europe/Paris"


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
                                           f"session {SessionState.labelled(session['state'])}"))
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
             f"dernière étape : {RunStep.labelled(run['step'])}")
    table = Table(title=Text(title), title_justify="left", show_lines=True, pad_edge=False,
                  caption=Text("Flacons : servis sur demandés."), caption_justify="left")
    # Order ids, volumes and dates are what an adviser reads out: never cut; the rest wraps. Fits 80 columns.
    # The labels are the vocabulary's, whole: the line's column fits `1re injection`, and its outcome (vials,
    # status and reason in one column) the longest word of a reason.
    for heading, keep, least in (("Commande", True, None), ("Ligne", False, 13), ("Servis", False, 9),
                                 ("Livraisons", True, None)):
        table.add_column(heading, no_wrap=keep, overflow="fold", min_width=least)
    for line in run["lines"]:
        who = "\n".join(x for x in (Kind.labelled(line["effector"]), line["professional"], line["rpps"],
                                    labels.get(line["vaccine"], line["vaccine"]),
                                    Injection.labelled(line["injection"])) if x)
        # The depot is the officine's (shown above) unless the register says otherwise.
        days = "\n".join(f"{_day(d['date']) if d['date'] else Delivery.PENDING.short} : {d['vials']}"
                         + (f"\n  (dépôt {d['depot_id']})" if d["depot_id"] != depot else "") for d in line["deliveries"])
        outcome = f"{line['allocated']} sur {line['requested']}\n{Status.labelled(line['status'])}"
        if line["reason"] != Reason.OK:
            outcome += f"\n{Reason.labelled(line['reason'])}"
        cells = (line["order_id"], who, outcome, days or "—")
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
        state = EmailState.labelled(email["state"]) + (
            f"\n{_instant(email['sent_at'], zone)}" if email["sent_at"] else "")
        table.add_row(*(Text(x) for x in (message, state, str(email["attempts"]), email["detail"] or "")))
    return table


def _day(iso: str) -> str:
    """`lundi 21 juin 2021` for an ISO date."""
    return french_date(dt.date.fromisoformat(iso[:10]))


def _instant(value, zone: str, seconds: bool = False) -> str:
    """An instant (ISO text or datetime, UTC when naive) in the time zone `zone`:
    `mardi 15 juin 2021 à 23:00 (heure de Paris)`, to the second with `seconds`."""
    if value is None or value == "" or (not isinstance(value, str) and pd.isna(value)):
        return ""
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else pd.Timestamp(value).to_pydatetime()
    local = (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).astimezone(ZoneInfo(zone))
    where = "heure de Paris" if zone == PARIS else f"heure de {zone}"
    return f"{french_date(local.date())} à {local:%H:%M:%S}" if seconds else \
        f"{french_date(local.date())} à {local:%H:%M} ({where})"


def runs_table(runs: list[dict]) -> RenderableType:
    """What `list_runs` returned: one table per version, oldest first."""
    if not runs:
        return Text("Aucune version : la session n'est pas encore close.", style="italic")
    parts = []
    for run in runs:
        counts = run["counts"]
        table = Table(title=Text(f"Version {run['version']} · {_instant(run['created_at'], PARIS)} · "
                                 f"{run['operator']}"), title_justify="left", show_header=False,
                      caption=Text("Instants en heure de Paris."), caption_justify="left")
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        rows = [
            ("Motif", run["reason"]),
            ("Modifications", changes_text(run["changes"]) or "—"),
            ("Empreinte", run["input_hash"]),
            ("Étapes", _steps(run) or "—"),
            ("Lignes", number(counts["lines"])),
            ("Flacons", f"{number(counts['allocated_vials'])} servis : {number(counts['scheduled_vials'])} avec une "
                        f"date de livraison, {number(counts['pending_vials'])} en attente d'une date"),
            ("Emails", ", ".join(f"{EmailState.labelled(state)} : {n}" for state, n in counts["emails"].items())
             or "—"),
        ]
        if run["error"]:
            step = RunStep.of(run.get("failed_step"))
            rows.append(("Échec", (f"{step.short} : " if step else "") + run["error"]))
        if run.get("view_failure"):
            rows.append(("Vue non écrite", run["view_failure"] + " (les fichiers de données sont écrits)"))
        for name, value in rows:
            table.add_row(Text(name), Text(value))
        parts.append(table)
    return Group(*parts)


def _steps(run: dict) -> str:
    """Each step the run has stored, in the order they happened, and when its emails had all settled."""
    done = [(run[step.stamp], step.code.short) for step in (*RUN, SEND) if step.stamp and run.get(step.stamp)]
    if run.get("settled_at"):
        done.append((run["settled_at"], "emails tous traités"))
    return "\n".join(f"{said} : {_instant(at, PARIS, seconds=True)}" for at, said in sorted(done))


def changes_text(changes: dict) -> str:
    """A run's changes (R10, R11) as an operator reads them, one per line."""
    said = [f"effet au {_day(changes['effective'])}"] if changes.get("effective") else []
    said += [f"stock de {key} : {vials(n)}" for key, n in (changes.get("supply") or {}).items()]
    if changes.get("cancel"):
        said.append(f"lignes annulées : {', '.join(changes['cancel'])}")
    said += [f"dépôt {d['depot_id']} le {_day(d['date'])} : " + ("fermé" if not d["capacity_vials"] else
                                                                  vials(d["capacity_vials"]))
             for d in changes.get("depot_days") or ()]
    said += [f"redistribution de {vials(r['vials'])} de la ligne {r['order_id']} au professionnel RPPS {r['to_rpps']}"
             for r in changes.get("redistribution") or ()]
    return "\n".join(said)


def emails_table(session_id: str, listed: pd.DataFrame) -> RenderableType:
    """`vialflow emails`: the outbox rows (version, recipient, kind, state, attempts, sent, next attempt, last
    reply; the address only when listed), instants in Paris time."""
    table = Table(title=Text(f"Session {session_id} : {len(listed)} email(s)"), title_justify="left",
                  caption=Text("Instants en heure de Paris."), caption_justify="left")
    headings = {"version": "Version", "recipient_id": "Destinataire", "recipient_kind": "Type", "state": "État",
                "attempts": "Essais", "sent_at": "Envoyé le", "next_attempt_at": "Prochain essai",
                "detail": "Dernière réponse", "email": "Adresse"}
    columns = [column for column in headings if column in listed.columns]
    for column in columns:
        table.add_column(headings[column], overflow="fold")
    for row in listed[columns].astype(object).where(listed[columns].notna(), None).to_dict("records"):
        cells = {**row, "recipient_kind": "officine" if row["recipient_kind"] == "officine"
                 else Kind.labelled(row["recipient_kind"]),
                 "state": EmailState.labelled(row["state"]),
                 "sent_at": _instant(row["sent_at"], PARIS, seconds=True),
                 "next_attempt_at": _instant(row["next_attempt_at"], PARIS, seconds=True)}
        table.add_row(*(Text("" if cells[column] is None else str(cells[column])) for column in columns))
    return table


def summary_table(summary: dict) -> RenderableType:
    """The vials of a run per vaccine, as `vialflow run` and `reallocate` print them when done."""
    table = Table(title=Text(f"Session {summary['session']}, version {summary['run']}"), title_justify="left")
    for heading in ("Vaccin", "Lignes", "Flacons demandés", "Servis", "Avec une date de livraison",
                    "En attente d'une date"):
        table.add_column(heading, justify="left" if heading == "Vaccin" else "right")
    for key, v in summary["vaccines"].items():
        table.add_row(*(Text(x) for x in (key, number(v["lines"]), number(v["requested"]), number(v["allocated"]),
                                          number(v["scheduled_vials"]), number(v["pending_vials"]))))
    return table


def preview_text(found: dict) -> str:
    """A reallocation's preview as an operator reads it, in French: nothing of it is written yet. A line whose
    deliveries move says how."""
    moved = {item["order_id"]: item for item in found.get("deliveries", [])}
    out = [f"Aperçu de la version {found['version']} de la session {found['session']} (rien n'est enregistré) :",
           f"  lignes modifiées : {len(found['lines'])}"]
    for line in found["lines"]:
        before, after = line["allocated_before"], line["allocated_after"]
        said = f"    {line['order_id']}  " + (f"{before} → {vials(after)}" if before != after else vials(after))
        if line["reason_before"] != line["reason_after"]:
            said += f"  ({Reason.labelled(line['reason_before'])} → {Reason.labelled(line['reason_after'])})"
        if line["order_id"] in moved:
            days = moved[line["order_id"]]
            said += f"  livraisons : {_days(days['before'])} → {_days(days['after'])}"
        out.append(said)
    out.append("  flacons servis : " + ", ".join(f"{key} {v['before']} → {v['after']}"
                                               for key, v in found["vials"].items()))
    out.append(f"  lignes dont les livraisons changent : {len(found['deliveries'])}")
    out.append(f"  destinataires d'un email « annule et remplace » : {len(found['recipients'])}"
               + (f" ({', '.join(found['recipients'])})" if found["recipients"] else ""))
    out.append("  équité (taux de service des départements, le plus bas / le plus haut, indice de Gini ; "
               "officines sans rien) :")
    for key, both in found.get("fairness", {}).items():
        out.append(f"    {key} : {_fairness(both['before'])} → {_fairness(both['after'])}")
    return "\n".join(out)


def _fairness(figures: dict) -> str:
    """`62,5 % / 71,4 %, Gini 0,0235 ; 0,0 %`, or `aucune demande`."""
    if figures["gini"] is None:
        return "aucune demande"
    return (f"{_percent(figures['fill_rate_min'])} / {_percent(figures['fill_rate_max'])}, "
            f"Gini {figures['gini']:.4f}".replace(".", ",") + f" ; {_percent(figures['officines_unserved_share'])}")


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %".replace(".", ",")


def _days(days: list[dict]) -> str:
    """A line's deliveries: `lundi 21 juin 2021 : 10, en attente : 5`; `aucune` when it has none."""
    return ", ".join(f"{_day(d['date']) if d['date'] else Delivery.PENDING.short} : {d['vials']}" for d in days) \
        or "aucune"
