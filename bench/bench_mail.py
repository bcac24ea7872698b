"""Confirmation emails per second from one process: render + send over persistent connections, against
the naive path (the standard `email` package and one `smtplib` connection per message) in the same run.

    .venv/bin/python -m bench.bench_mail [--count 5000] [--naive 300] [--connections 8]

The sink is Postfix's `smtp-sink` (Debian package `postfix`) when installed: it is not the bottleneck.
Otherwise the aiosmtpd MailSink stands in, with a note: it saturates a core well before our sender does.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import shutil
import smtplib
import socket
import subprocess
import time
import timeit
from contextlib import contextmanager
from email.headerregistry import Address
from email.message import EmailMessage

from bench import ratios, stamp
from pipeline.adapters.mail import render as mail
from pipeline.domain.confirmation import Confirmation, Line
from pipeline.adapters.mail.sink import MailSink
from pipeline.adapters.mail.smtp import Outcome, SmtpTarget, send_all_sync

SENDER = "Vaccination <noreply@vialflow.example.fr>"
ENVELOPE_SENDER = "noreply@vialflow.example.fr"
VACCINES = (("janssen", "Janssen", ("first",)), ("astrazeneca", "AstraZeneca", ("first", "second")),
            ("moderna", "Moderna", ("first",)))
FIRST_NAMES = ("Camille", "Julien", "Sophie", "Élodie", "Léa", "Hugo", "Chloé", "Théo", "Inès", "Noël")
LAST_NAMES = ("Morel", "Girard", "Renaud", "Le Goff", "Fontaine", "Lefèvre", "Bonnet", "Lambert", "Dupré")
REASONS = ("cap", "unit", "supply")
DOSES_PER_VIAL = {"janssen": 5, "astrazeneca": 10, "moderna": 10}  # the fixtures' session.toml
DEPOT = "OCP Répartition (dépôt 69)"


def typical(count: int, seed: int = 14) -> list[Confirmation]:
    """`count` confirmations of 3 to 10 lines: 60 % officines (own, doctors', nurses' lines), 40 % doctors."""
    rng = random.Random(seed)
    out = []
    for number in range(count):
        officine = rng.random() < 0.6
        recipient = f"{690000000 + number}" if officine else f"{10000000000 + number}"
        lines = []
        for index in range(rng.randint(3, 10)):
            key, label, injections = rng.choice(VACCINES)
            effector = rng.choice(("pharmacien", "medecin", "infirmier", "sage_femme")) if officine else "medecin"
            named = effector in ("medecin", "sage_femme")
            rpps = (f"{10100000000 + rng.randrange(10**6)}" if officine else recipient) if named else ""
            name = f"Dr {rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}" if named else ""
            requested = rng.randint(1, 10)
            roll = rng.random()
            allocated = requested if roll < 0.7 else 0 if roll < 0.8 else rng.randint(1, requested)
            status = "served" if allocated == requested else "partial" if allocated else "refused"
            first = dt.date(2021, 6, 17) + dt.timedelta(days=rng.randrange(9))
            if allocated == 0:
                deliveries = ()
            elif rng.random() < 0.15:
                deliveries = ((first, allocated - allocated // 2), (None, allocated // 2)) if allocated > 1 \
                    else ((None, allocated),)
            else:
                deliveries = ((first, allocated),)
            lines.append(Line(f"A-{number:06d}-{index}", effector, rpps, name, key, label, rng.choice(injections),
                              requested, allocated, status, "ok" if status == "served" else rng.choice(REASONS),
                              deliveries, depots=tuple(DEPOT for _ in deliveries),
                              doses_per_vial=DOSES_PER_VIAL[key]))
        name = (f"Pharmacie {rng.choice(LAST_NAMES)}" if officine
                else f"Dr {rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}")
        out.append(Confirmation(
            "2021-06-14", "Commande de vaccins les 14 et 15 juin", "DGS-URGENT N°2021_60", 1, recipient,
            "officine" if officine else "medecin", name,
            f"{'officine' if officine else 'dr'}.{recipient}@{'pharma' if officine else 'sante'}.example.fr",
            SENDER, f"<2021-06-14.1.{recipient}@vialflow>", tuple(lines)))
    return out


def naive_message(c: Confirmation) -> EmailMessage:
    """The same email built the usual way: EmailMessage, its policy's header folding and encoders."""
    text, html = mail.bodies(c)
    message = EmailMessage()
    message["From"] = Address("Vaccination", addr_spec=ENVELOPE_SENDER)
    message["To"] = Address(c.name, addr_spec=c.email)
    message["Subject"] = mail.subject(c)
    message["Message-ID"] = c.message_id
    message["X-Vialflow-Session"] = c.session_id
    message["X-Vialflow-Run"] = str(c.run_version)
    message["X-Vialflow-Recipient"] = c.recipient_id
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    message.add_attachment(mail.confirmation_csv(c), maintype="text", subtype="csv", filename="confirmation.csv")
    message.add_attachment(mail.confirmation_xlsx(c), maintype="application",
                           subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet", filename="confirmation.xlsx")
    if c.scheduled:  # no calendar without an event
        message.add_attachment(mail.calendar(c), maintype="text", subtype="calendar", filename="livraisons.ics")
    return message


@contextmanager
def sink():
    """(host, port, name) of Postfix's smtp-sink on loopback, or of the aiosmtpd MailSink without it."""
    program = shutil.which("smtp-sink")
    if program is None:
        print("note: smtp-sink not found (Debian package `postfix`); using the aiosmtpd MailSink, a thread of "
              "this process that becomes the bottleneck near 1000 messages/s: the figures below understate the "
              "sender (apt-get install postfix gives smtp-sink)")
        with MailSink(None, keep=False) as mail_sink:
            yield "127.0.0.1", mail_sink.port, "aiosmtpd MailSink"
        return
    port = _free_port()
    command = [program, *(["-u", "nobody"] if os.geteuid() == 0 else []), f"127.0.0.1:{port}", "1024"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(port)
        yield "127.0.0.1", port, "Postfix smtp-sink"
    finally:
        process.terminate()
        process.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="messages on the fast path (default 5000)")
    parser.add_argument("--naive", type=int, default=300, help="messages on the naive path (default 300)")
    parser.add_argument("--connections", type=int, default=8, help="SMTP connections of send_all (default 8)")
    parser.add_argument("--pharmacies", type=int, default=1700,
                        help="officines of the generated session whose emails go through the outbox (default 1700)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fast path, the best counts (default 3)")
    parser.add_argument("--embedded", type=int, default=0, metavar="PHARMACIES",
                        help="also time `vialflow run` (embedded) on a generated session of that many officines "
                             "against the fast path on its emails (20500: the national session, a few minutes)")
    args = parser.parse_args(argv)
    confirmations = typical(args.count)
    print(stamp())
    print(f"{args.count} typical confirmations (3-10 lines); load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs; this interpreter's speed: {_yardstick():.1f} µs for sum(range(1000)) "
          "(about 10 on a quiet core)")
    with sink() as (host, port, name):
        print(f"sink: {name} on {host}:{port}")
        target = SmtpTarget(host, port, "none", None, None)
        send_all_sync(target, [(0, ENVELOPE_SENDER, confirmations[0].email, mail.render(confirmations[0]))])  # warm-up

        # 1. render everything, then send everything; best of `--repeat` runs (the machine may be shared)
        runs = [_render_then_send(target, confirmations, args.connections) for _ in range(args.repeat)]
        best = max(runs, key=lambda run: run["rate"])
        # 2. each message rendered when a connection is ready for it (send_all takes a generator)
        streamed_start = time.perf_counter()
        lazily = ((number, ENVELOPE_SENDER, c.email, mail.render(c)) for number, c in enumerate(confirmations))
        streamed_outcomes = send_all_sync(target, lazily, connections=args.connections)
        streamed = args.count / (time.perf_counter() - streamed_start)
        unsent = sum(run["unsent"] for run in runs) + sum(o != Outcome.SENT for o, _ in streamed_outcomes.values())

        subset = confirmations[:args.naive]
        naive_start = time.perf_counter()
        for c in subset:
            message = naive_message(c)
            with smtplib.SMTP(host, port) as client:
                client.send_message(message, from_addr=ENVELOPE_SENDER, to_addrs=[c.email])
        naive_time = time.perf_counter() - naive_start
        build_start = time.perf_counter()
        for c in subset[:100]:
            bytes(naive_message(c))
        naive_build = (time.perf_counter() - build_start) / min(100, len(subset))
        outbox_path = _through_the_outbox(target, args.pharmacies, args.repeat)
        embedded = _embedded(target, args.embedded) if args.embedded else None
    naive = len(subset) / naive_time
    xlsx_cpu, xlsx_size = _xlsx_cost(confirmations[:1000])
    fast = max(best["rate"], streamed)
    print(f"fast path : {fast:8.0f} emails/s  (render + send_all over {args.connections} connections; "
          f"{unsent} not sent)")
    rates = ", ".join(f"{run['rate']:.0f}" for run in runs)
    print(f"  render all, then send: {rates}"
          f" emails/s; best: {best['per_cpu_second']:.0f} per CPU-second of this process")
    print(f"  render while sending : {streamed:6.0f} emails/s (a generator fed to send_all)")
    print(f"  render : {best['render_wall']:6.0f} µs per message, {best['render_cpu']:.0f} µs of CPU "
          f"(mean {best['size'] / 1024:.1f} KiB)")
    print(f"  xlsx   : {xlsx_cpu:6.0f} µs of CPU per message for confirmation.xlsx alone (in the render above: "
          f"{xlsx_cpu / best['render_cpu']:.0%} of it; {xlsx_size / 1024:.1f} KiB before base64)")
    print(f"  send   : {best['send_rate']:6.0f} emails/s (send_all alone), "
          f"{best['send_cpu']:.0f} µs of CPU per message")
    print(f"naive path: {naive:8.0f} emails/s  (EmailMessage + smtplib, one connection per message, "
          f"{len(subset)} messages; building alone {naive_build * 1e3:.2f} ms per message)")
    print(f"ratio     : {fast / naive:8.1f}x   target: >= 1500 emails/s and >= 10x")
    print(f"outbox    : {outbox_path['outbox']:8.0f} emails/s  (the email task's path: claim rows, read the stored run, "
          f"render, send, record each outcome; {outbox_path['sent']} emails, SQLite) = {outbox_path['outbox'] / naive:.1f}x "
          f"naive; the same emails on the fast path, in turns with it: {outbox_path['fast']:.0f} emails/s")
    if embedded:
        print(f"embedded  : `vialflow run` on {embedded['lines']:,} lines, {embedded['emails']:,} emails: "
              f"{embedded['run']:.1f} s (load to prepare {embedded['steps']:.1f} s, then its emails and files "
              f"{embedded['sending']:.1f} s); "
              f"the same emails on the fast path {embedded['fast']:.1f} s; peak {embedded['peak_mib']:.0f} MiB")
    send_alone = best["send_rate"]
    ratios([
        ("fast path / send alone (`fast path` ÷ `send`)", fast / send_alone, ">= 0.50", fast / send_alone >= 0.5),
        ("outbox path / fast path, same emails", outbox_path["outbox"] / outbox_path["fast"], ">= 0.85",
         outbox_path["outbox"] / outbox_path["fast"] >= 0.85),
        ("fast path / naive path", fast / naive, ">= 10", fast / naive >= 10),
        ("embedded `vialflow run` / its emails' fast path", embedded and embedded["run"] / embedded["fast"], "<= 1.5",
         embedded and embedded["run"] / embedded["fast"] <= 1.5),
    ])


def _through_the_outbox(target: SmtpTarget, pharmacies: int, repeat: int) -> dict:
    """Every email of a generated session sent as the email tasks send them, chunk by chunk, in turns
    with the same emails on the fast path (read first, then rendered and sent with no database);
    the best of `repeat` turns each, every turn on a fresh copy of the prepared database."""
    import sqlite3
    import tempfile
    from pathlib import Path

    from pipeline.services import confirmations as outbox, runs as services
    from pipeline.generator.generate import generate_scenario
    from pipeline.entrypoints.runner import load_into
    from pipeline.adapters.db import make_engine
    from workers.tasks import CHUNK

    now = dt.datetime(2021, 6, 18, 9, tzinfo=dt.timezone.utc)
    with tempfile.TemporaryDirectory() as folder:
        generate_scenario(Path(folder) / "scenario", seed=5, pharmacies=pharmacies, depots=20)
        prepared = Path(folder) / "prepared.db"
        session_id = load_into(Path(folder) / "scenario", f"sqlite:///{prepared}", now)
        engine = make_engine(f"sqlite:///{prepared}")
        run = services.close_session(engine, session_id, now)
        for step in (services.allocate_run, services.schedule_run, outbox.prepare_confirmations):
            step(engine, run, now)
        engine.dispose()
        best = {"outbox": 0.0, "fast": 0.0, "sent": 0}
        for turn in range(repeat):
            copy = Path(folder) / f"turn-{turn}.db"
            with sqlite3.connect(prepared) as source, sqlite3.connect(copy) as target_file:
                source.backup(target_file)  # the WAL's pages too
            engine = make_engine(f"sqlite:///{copy}")
            ids = outbox.due(engine, run, now)
            letters = _letters_of(engine, run)
            start = time.perf_counter()
            send_all_sync(target, ((n, ENVELOPE_SENDER, c.email, mail.render(c)) for n, c in enumerate(letters)),
                          connections=8)
            best["fast"] = max(best["fast"], len(letters) / (time.perf_counter() - start))
            start = time.perf_counter()
            for number, first in enumerate(range(0, len(ids), CHUNK)):
                outbox.send_chunk(engine, ids[first:first + CHUNK], f"bench-{number}", now, target, SENDER)
            elapsed = time.perf_counter() - start
            sent = outbox.outbox_counts(engine, run).get("sent", 0)
            best["outbox"], best["sent"] = max(best["outbox"], sent / elapsed), sent
            engine.dispose()
    return best


def _letters_of(engine, run: int) -> list[Confirmation]:
    """The emails of a run's outbox rows, as the email tasks build them."""
    from pipeline.adapters.db import outbox, runs
    from pipeline.services.letters import confirmations

    with engine.connect() as c:
        row = runs.run_row(c, run)
        rows = outbox.outbox_listing(c, row.session_id, run, None, False)
        rows["replaces"] = None
        return confirmations(c, row, rows, SENDER)


def _embedded(target: SmtpTarget, pharmacies: int) -> dict:
    """`vialflow run` as it runs by default (the embedded mode: an in-process worker, SQLite, the loopback
    SMTP server writing each email into the run folder; with an outside server it would also write
    each email's copy there) on a generated session; then the same emails on the fast path into the sink. The run's steps end once its outbox is written
    (`prepared_at`); the rest of the command is its emails (and its files, written meanwhile)."""
    import sys
    import tempfile
    from pathlib import Path

    import psutil
    from sqlalchemy import text

    from pipeline.adapters.db import make_engine
    from pipeline.generator.generate import generate_scenario
    from pipeline.settings import DATABASE_FILE

    with tempfile.TemporaryDirectory() as folder:
        made = generate_scenario(Path(folder) / "scenario", seed=1, pharmacies=pharmacies)
        out = Path(folder) / "out"
        command = [str(Path(sys.executable).with_name("vialflow")), "run", str(Path(folder) / "scenario"),
                   "--out", str(out)]
        start = time.time()
        process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak = 0.0
        while process.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, process.memory_info().rss)
            time.sleep(0.2)
        elapsed = time.time() - start
        if process.returncode:
            raise RuntimeError(f"vialflow run failed: {process.stderr.read().decode()[-500:]}")
        engine = make_engine(f"sqlite:///{out / DATABASE_FILE}")
        with engine.connect() as c:
            run, handed = c.execute(text("SELECT id, prepared_at FROM runs WHERE version = 1")).one()
        handed = dt.datetime.fromisoformat(str(handed)).replace(tzinfo=dt.timezone.utc).timestamp()
        letters = _letters_of(engine, run)
        engine.dispose()
        fast_start = time.perf_counter()
        send_all_sync(target, ((n, ENVELOPE_SENDER, c.email, mail.render(c)) for n, c in enumerate(letters)),
                      connections=8)
        fast = time.perf_counter() - fast_start
    return {"lines": made["order_lines"], "emails": len(letters), "run": elapsed, "steps": handed - start,
            "sending": start + elapsed - handed, "fast": fast, "peak_mib": peak / 2**20}


def _render_then_send(target: SmtpTarget, confirmations: list[Confirmation], connections: int) -> dict:
    count = len(confirmations)
    cpu, start = time.process_time(), time.perf_counter()
    batch = [(number, ENVELOPE_SENDER, c.email, mail.render(c)) for number, c in enumerate(confirmations)]
    rendered, render_cpu = time.perf_counter(), time.process_time() - cpu
    outcomes = send_all_sync(target, batch, connections=connections)
    end, cpu = time.perf_counter(), time.process_time() - cpu
    return {"rate": count / (end - start), "per_cpu_second": count / cpu,
            "render_wall": (rendered - start) / count * 1e6, "render_cpu": render_cpu / count * 1e6,
            "send_rate": count / (end - rendered), "send_cpu": (cpu - render_cpu) / count * 1e6,
            "size": sum(len(item[3]) for item in batch) / count,
            "unsent": sum(outcome != Outcome.SENT for outcome, _ in outcomes.values())}


def _xlsx_cost(confirmations: list[Confirmation]) -> tuple[float, float]:
    """CPU µs and bytes per confirmation.xlsx, best of 3 passes: the spreadsheet's share of rendering."""
    best = float("inf")
    for _ in range(3):
        cpu = time.process_time()
        sizes = [len(mail.confirmation_xlsx(c)) for c in confirmations]
        best = min(best, (time.process_time() - cpu) / len(confirmations) * 1e6)
    return best, sum(sizes) / len(sizes)


def _yardstick() -> float:
    """A fixed piece of pure Python work, timed: shows how much of a core this run is getting."""
    return min(timeit.repeat("sum(range(1000))", number=200, repeat=20)) / 200 * 1e6


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"smtp-sink did not listen on port {port}") from None
            time.sleep(0.05)


if __name__ == "__main__":
    main()
