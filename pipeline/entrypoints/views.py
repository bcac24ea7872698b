"""The views of `vialflow lookup`, `vialflow runs` and `vialflow reallocate --preview` for a terminal."""

from __future__ import annotations

import json

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from pipeline.services.support import PENDING, STAMPS


# Terminal rendering. Every cell and title is a `Text`, so that a `[` in a name is not read as markup.

def lookup_table(data: dict) -> RenderableType:
    """What `lookup` returned, as tables: the officine, then per run its lines and emails."""
    parts: list[RenderableType] = []
    for session in data["sessions"]:
        officine = session["officine"]
        head = Table.grid(padding=(0, 2))
        head.add_column(style="bold")
        head.add_column()
        head.add_row(Text("Session"), Text(f"{session['session_id']}  {session['title']}"))
        head.add_row(Text("Closes"), Text(f"{_when(session['closes_at'])} ({session['state']})"))
        if officine is None:
            head.add_row(Text("Officine"), Text(f"{data['finess']}: not in this session's pharmacies register"))
        else:
            head.add_row(Text("Officine"),
                         Text(f"{officine['finess']}  {officine['name']}  dept {officine['department']}"))
            head.add_row(Text("Email"), Text(officine["email"] or ""))
            head.add_row(Text("Depot"), Text(f"{officine['depot_id']}  {officine['depot_name'] or ''}  "
                                             f"({officine['wholesaler'] or 'unknown wholesaler'})"))
        parts.extend([Text(""), head])
        if not session["runs"]:
            parts.append(Text("No run yet: the session is not closed.", style="italic"))
        depot = officine["depot_id"] if officine else None
        for run in session["runs"]:
            parts.append(_lines_table(run, depot))
            parts.extend(Text(f"Redistributed: {item.get('vials')} vial(s) of {item.get('order_id')} "
                              f"to RPPS {item.get('to_rpps')}") for item in run.get("redistributions", []))
            parts.append(_emails_table(run))
    return Group(*parts)


def _lines_table(run: dict, depot: str | None) -> Table:
    title = f"Run {run['version']} · {_when(run['created_at'])} · {run['operator']} · {run['reason']} · {run['step']}"
    table = Table(title=Text(title), title_justify="left", show_lines=True,
                  caption=Text("Vials: allocated of requested."), caption_justify="left")
    # Order ids, volumes and dates are what an adviser reads out: never cut; the rest wraps. Fits 80 columns.
    for heading, keep, least in (("Order", True, None), ("Effector", False, 11), ("Vaccine", False, 11),
                                 ("Vials", True, None), ("Status", False, 7), ("Deliveries", True, None)):
        table.add_column(heading, no_wrap=keep, overflow="fold", min_width=least)
    for line in run["lines"]:
        who = "\n".join(x for x in (line["effector"], line["professional"], line["rpps"]) if x)
        # The depot is the officine's (shown above) unless the register says otherwise.
        days = "\n".join(f"{d['date'] or PENDING}: {d['vials']}"
                         + (f" ({d['depot_id']})" if d["depot_id"] != depot else "") for d in line["deliveries"])
        status = line["status"] if line["reason"] == "ok" else f"{line['status']}\n{line['reason']}"
        cells = (line["order_id"], who, f"{line['vaccine']}\n{line['injection']}",
                 f"{line['allocated']} of {line['requested']}", status, days or "—")
        table.add_row(*(Text(x) for x in cells))
    if not run["lines"]:
        table.caption = Text("no line of this officine in this run")
    return table


def _emails_table(run: dict) -> RenderableType:
    if not run["emails"]:
        return Text(f"Run {run['version']}: no email to this officine.", style="italic")
    table = Table(title=Text(f"Emails of run {run['version']}"), title_justify="left", show_lines=True)
    table.add_column("Message-ID", no_wrap=True)
    for heading in ("State", "Tries", "Detail"):
        table.add_column(heading, overflow="fold")
    for email in run["emails"]:
        message = email["message_id"] + (f"\nannule et remplace\n{email['replaces']}" if email["replaces"] else "")
        state = email["state"] + (f"\n{_when(email['sent_at'])}" if email["sent_at"] else "")
        table.add_row(*(Text(x) for x in (message, state, str(email["attempts"]), email["detail"] or "")))
    return table


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
