"""How the whole deployed path grows with the work, and what more email workers buy.

    python -m bench scale [--sizes 1000,10000,140000,1000000] [--workers 1,2,4] [--beat 1]

Each size is a generated session sent through the deployed form as it runs in production: a fresh
PostgreSQL database, its own RabbitMQ vhost, `celery -A workers worker` processes (one pipeline
worker of 2 processes, one email worker of N processes), `celery -A workers beat` (which closes
the session and hands its emails over) and Postfix's `smtp-sink` (the aiosmtpd sink when Postfix
is not installed, said so). Beat ticks every `--beat` seconds (30 s in production) so that its
wait does not hide the steps at small sizes.

Each stage's time is the step's own duration from the workers' JSON log lines; the send stage runs
from the first email task's start to the last one's end; close → last email is that end less the
close step's start, with every queue and beat wait in between. The national session (about
140,000 lines) is sent again with each count of `--workers` email processes, against the fast
path (render + send from one process, no database) on the same emails in the same run, and is
then reallocated (one vaccine's supply raised) through `vialflow reallocate`.

Linux only: the workers' CPU time and peak resident memory (VmHWM) come from /proc through psutil.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import text

from bench import ratios, stamp
from bench.bench_mail import sink
from bench.bench_pipeline import AMQP, ROOT, drop_database, fresh_database
from pipeline.adapters.db import make_engine, migrate, outbox, runs, sessions
from pipeline.adapters.mail.render import render
from pipeline.adapters.mail.smtp import Outcome, SmtpTarget, send_all_sync
from pipeline.entrypoints.runner import load_into
from pipeline.generator.generate import generate_scenario
from pipeline.services.letters import confirmations
from pipeline.settings import Settings

SIZES = (1_000, 10_000, 140_000, 1_000_000)
NATIONAL = 140_000
LINES_PER_OFFICINE = 142_725 / 20_500  # what the generator draws on average
STAGES = ("load", "close", "allocate", "schedule", "prepare", "send", "export")
STEP_NAMES = {"close": "close", "allocate": "allocate", "schedule": "schedule",
              "prepare": "prepare_confirmations", "export": "export"}
SENDER = Settings.mail_from
NOW = dt.datetime(2021, 6, 16, tzinfo=dt.timezone.utc)


@dataclass
class Result:
    lines: int
    email_workers: int
    emails: int = 0
    stages: dict[str, float] = field(default_factory=dict)
    close_to_last: float = 0.0
    email_cpu: float = 0.0          # CPU-seconds of the email worker's processes while sending
    peak_rss: dict[str, float] = field(default_factory=dict)  # MiB, the largest process of each worker
    idle_rss: dict[str, float] = field(default_factory=dict)  # MiB, the same processes once started
    lines_mib: float = 0.0          # the session's order lines as one pandas frame
    connections: int = 0            # the most PostgreSQL connections to the session's database at once
    realloc: dict = field(default_factory=dict)
    fast_path: float = 0.0

    @property
    def rate(self) -> float:
        return self.emails / self.stages["send"] if self.stages.get("send") else 0.0


# -- the deployed form, one per measurement ------------------------------------------------------------

class Deployment:
    """A database, a vhost, the workers and beat, for one session; `close()` takes everything down."""

    def __init__(self, folder: Path, email_workers: int, smtp_url: str, beat: float) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.url = fresh_database()
        self.vhost = f"vialflow-scale-{os.getpid()}-{time.monotonic_ns() % 10**8}"
        _rabbitmqctl("add_vhost", self.vhost)
        _rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        self.broker = f"{AMQP}/{self.vhost}"
        self.engine = make_engine(self.url)
        migrate(self.engine)  # `vialflow migrate`, before any worker starts
        self.env = {**os.environ, "VIALFLOW_DATABASE_URL": self.url, "VIALFLOW_BROKER_URL": self.broker,
                    "VIALFLOW_SMTP_URL": smtp_url, "VIALFLOW_EXPORT_DIR": str(folder / "exports"),
                    "VIALFLOW_LOG_FORMAT": "json", "VIALFLOW_BEAT_SECONDS": str(beat)}
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs = {name: folder / f"{name}.log" for name in ("pipeline", "email", "beat")}
        self._start("pipeline", "worker", "-Q", "vialflow.pipeline", "--concurrency", "2", "-n", "pipeline@%h")
        self._start("email", "worker", "-Q", "vialflow.email", "--concurrency", str(email_workers), "-n", "email@%h")
        for name in ("pipeline", "email"):
            _wait(lambda name=name: " ready." in self.logs[name].read_text(errors="replace"), 60,
                  f"the {name} worker did not start: see {self.logs[name]}")
        time.sleep(0.5)  # the pool's children finish their imports
        self.idle = {name: self.tree(name) for name in ("pipeline", "email")}
        self.idle_rss = {name: max(_rss(p) for p in procs) for name, procs in self.idle.items()}
        self.idle_cpu = sum(_cpu(p) for p in self.idle["email"])
        self._start("beat", "beat", "--schedule", str(folder / "beat-schedule"))

    def _start(self, name: str, *command: str) -> None:
        extra = ("--without-gossip", "--without-mingle", "--loglevel", "INFO") if command[0] == "worker" else (
            "--loglevel", "INFO")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", *command, *extra], cwd=ROOT, env=self.env,
            stdout=self.logs[name].open("w"), stderr=subprocess.STDOUT)

    def tree(self, name: str) -> list[psutil.Process]:
        parent = psutil.Process(self.processes[name].pid)
        return [parent, *parent.children(recursive=True)]

    def events(self) -> list[dict]:
        found = []
        for name in ("pipeline", "email"):
            for line in self.logs[name].read_text(errors="replace").splitlines():
                if line.startswith("{") and '"step"' in line:
                    event = json.loads(line)
                    event["at"] = dt.datetime.fromisoformat(event["time"]).timestamp()
                    found.append(event)
        return found

    def close(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        self.engine.dispose()
        drop_database(self.url)
        _rabbitmqctl("delete_vhost", self.vhost, check=False)


def measure(scenario: Path, lines: int, workers: int, folder: Path, smtp_url: str, beat: float,
            reallocate: bool = False, timeout: float = 3600) -> tuple[Result, Deployment]:
    """One session through a fresh deployment; the deployment is left running for the caller to close."""
    result = Result(lines, workers)
    deployment = Deployment(folder, workers, smtp_url, beat)
    started = time.perf_counter()
    session_id = load_into(scenario, deployment.url, NOW)  # `vialflow load`: beat closes it at its next tick
    result.stages["load"] = time.perf_counter() - started
    engine = deployment.engine

    def settled():
        result.connections = max(result.connections, _connections(engine))
        return _settled_run(engine, session_id)

    run = _wait(settled, timeout, f"session {session_id} did not settle")
    _wait(lambda: sum(1 for e in deployment.events() if e.get("step") == "export" and e.get("event") == "end"
                      and e.get("run_id") == run) >= 2, 120, "the settled run was not exported again")
    result.email_cpu = sum(_cpu(p) for p in deployment.tree("email")) - deployment.idle_cpu
    for name in ("pipeline", "email"):
        result.peak_rss[name] = max(_peak(p) for p in deployment.tree(name))
    result.idle_rss = deployment.idle_rss
    events = deployment.events()
    result.emails = _steps(result, events, session_id, run)
    with engine.connect() as c:
        frame = sessions.session_orders(c, session_id)
    result.lines_mib = frame.memory_usage(deep=True).sum() / 2**20
    return result, deployment


def _connections(engine) -> int:
    """Connections to this database, the asking one included."""
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")).scalar()


def _settled_run(engine, session_id: str) -> int | None:
    with engine.connect() as c:
        row = c.execute(text("SELECT id FROM runs WHERE session_id = :s AND version = 1 AND settled_at IS NOT NULL"),
                        {"s": session_id}).first()
        error = c.execute(text("SELECT error FROM runs WHERE session_id = :s AND error IS NOT NULL"),
                          {"s": session_id}).scalar()
    if error:
        raise RuntimeError(f"the pipeline failed: {error}")
    return row.id if row else None


def _steps(result: Result, events: list[dict], session_id: str, run: int) -> int:
    """Fill the stages of `run` from the workers' log events; returns how many emails were sent."""
    def ends(step: str, **where) -> list[dict]:
        return [e for e in events if e.get("step") == step and e.get("event") == "end"
                and all(e.get(k) == v for k, v in where.items())]

    close = ends("close", session=session_id)[0]
    result.stages["close"] = close["duration_s"]
    for stage in ("allocate", "schedule", "prepare"):
        result.stages[stage] = ends(STEP_NAMES[stage], run_id=run)[0]["duration_s"]
    result.stages["export"] = ends("export", run_id=run)[0]["duration_s"]  # the one after prepare
    first, last, sent = _send_span(events, run)
    result.stages["send"] = last - first
    result.close_to_last = last - (close["at"] - close["duration_s"])
    return sent


def _send_span(events: list[dict], run: int) -> tuple[float, float, int]:
    sends = [e for e in events if e.get("step") == "send" and e.get("run_id") == run]
    ends = [e for e in sends if e.get("event") == "end"]
    sent = sum((e.get("counts") or {}).get("sent", 0) for e in ends)
    return min(e["at"] for e in sends if e.get("event") == "start"), max(e["at"] for e in ends), sent


# -- the fast path and the reallocation, on the national deployment -----------------------------------

def fast_path(deployment: Deployment, run: int, host: str, port: int) -> tuple[float, int]:
    """The same emails rendered and sent from this one process, with no database on the way."""
    with deployment.engine.connect() as c:
        row = runs.run_row(c, run)
        rows = outbox.outbox_listing(c, row.session_id, run, None, False)
        rows["replaces"] = None
        letters = confirmations(c, row, rows, SENDER)
    target = SmtpTarget(host, port, "none", None, None)
    sender = "ne-pas-repondre@vialflow.example.fr"
    start = time.perf_counter()
    outcomes = send_all_sync(target, ((n, sender, c.email, render(c)) for n, c in enumerate(letters)), connections=8)
    elapsed = time.perf_counter() - start
    return elapsed, sum(outcome == Outcome.SENT for outcome, _ in outcomes.values())


def reallocation(deployment: Deployment, session_id: str, scenario: Path) -> dict:
    """`vialflow reallocate` raising the one limited vaccine's supply to its demand: from the command's
    start to the last changed recipient's email sent."""
    rules = (scenario / "session.toml").read_text(encoding="utf-8")
    with deployment.engine.connect() as c:
        demand = c.execute(text("SELECT sum(vials) FROM orders WHERE session_id = :s AND vaccine = 'moderna'"),
                           {"s": session_id}).scalar()
    changes = deployment.folder / "changes.toml"
    changes.write_text(f'effective = "2021-06-21"\nsupply = {{ moderna = {int(demand)} }}\n', encoding="utf-8")
    assert "[vaccines.moderna]" in rules
    env = {key: value for key, value in deployment.env.items() if key != "VIALFLOW_SMTP_URL"}
    command = [str(Path(sys.executable).with_name("vialflow")), "reallocate", session_id, str(changes),
               "--operator", "bench", "--reason", "more Moderna", "--out", str(deployment.folder / "realloc"),
               "--database-url", deployment.url, "--broker-url", deployment.broker]
    start = time.time()
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    command_seconds = time.time() - start
    if finished.returncode:
        raise RuntimeError(f"vialflow reallocate failed: {finished.stderr.strip()[-500:]}")
    with deployment.engine.connect() as c:
        run = c.execute(text("SELECT id FROM runs WHERE session_id = :s AND version = 2"), {"s": session_id}).scalar()
    _first, last, sent = _send_span(deployment.events(), run)
    return {"turnaround": last - start, "command": command_seconds, "emails": sent}


# -- the whole bench ---------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="order lines of each session")
    parser.add_argument("--workers", default="1,2,4", help="email worker processes for the national session")
    parser.add_argument("--beat", type=float, default=1, help="seconds between beat's ticks (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the folders (logs, exports) and say where")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    counts = [int(count) for count in args.workers.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="vialflow-scale-"))
    print(f"{stamp()}; {psutil.virtual_memory().total / 2**30:.0f} GiB; beat every {args.beat:g} s", flush=True)
    results: list[Result] = []
    with sink() as (host, port, name):
        print(f"sink: {name}", flush=True)
        smtp_url = f"smtp://{host}:{port}"
        for size in sizes:
            scenario = folder / f"scenario-{size}"
            made = generate_scenario(scenario, seed=1, pharmacies=max(1, round(size / LINES_PER_OFFICINE)))
            national = size == NATIONAL
            for workers in (counts if national else [2]):
                result, deployment = measure(scenario, made["order_lines"], workers,
                                             folder / f"{size}-{workers}", smtp_url, args.beat)
                try:
                    if national and workers == 2:
                        run = _settled(deployment)
                        result.fast_path, _ = fast_path(deployment, run, host, port)
                        result.realloc = reallocation(deployment, _session(deployment), scenario)
                finally:
                    deployment.close()
                results.append(result)
                _row(result)
    report(results)
    if args.keep:
        print(f"logs and exports kept in {folder}")
    else:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def _settled(deployment: Deployment) -> int:
    with deployment.engine.connect() as c:
        return c.execute(text("SELECT id FROM runs WHERE version = 1")).scalar_one()


def _session(deployment: Deployment) -> str:
    with deployment.engine.connect() as c:
        return c.execute(text("SELECT id FROM sessions")).scalar_one()


def _row(r: Result) -> None:
    stages = " ".join(f"{stage} {r.stages.get(stage, 0):.2f}" for stage in STAGES)
    print(f"  {r.lines:>9,} lines, {r.emails:>7,} emails, {r.email_workers} email processes: {stages}; "
          f"close -> last email {r.close_to_last:.1f} s", flush=True)


def report(results: list[Result]) -> None:
    ladder = sorted((r for r in results if r.email_workers == 2), key=lambda r: r.lines)
    print("\nstage seconds (2 email processes)")
    header = f"{'lines':>10} {'emails':>8} " + " ".join(f"{s:>9}" for s in STAGES) + f" {'close→last':>11}"
    print(header)
    for r in ladder:
        print(f"{r.lines:>10,} {r.emails:>8,} " + " ".join(f"{r.stages[s]:>9.2f}" for s in STAGES)
              + f" {r.close_to_last:>11.1f}")
    print("\ngrowth per 10x lines (target: at most 12x from the national session to 1,000,000 lines)")
    for small, big in zip(ladder, ladder[1:]):
        power = 1 / math.log10(big.lines / small.lines)
        growth = " ".join(f"{(big.stages[s] / small.stages[s]) ** power if small.stages[s] > 0 else math.nan:>9.1f}"
                          for s in STAGES)
        close = (big.close_to_last / small.close_to_last) ** power
        print(f"{small.lines:>10,} → {big.lines:<10,} {growth} {close:>11.1f}")
    print("\nshare of the work (stage time / sum of stage times)")
    for r in ladder:
        total = sum(r.stages[s] for s in STAGES)
        print(f"{r.lines:>10,} " + " ".join(f"{r.stages[s] / total:>9.0%}" for s in STAGES))
    print("\npeak resident memory, MiB: the largest process of each worker (its size once started), the session's"
          "\nlines as one pandas frame, and the pipeline worker's growth over the smallest session in frames of lines")
    for r in ladder:
        extra = r.lines_mib - ladder[0].lines_mib
        copies = f"{(r.peak_rss['pipeline'] - ladder[0].peak_rss['pipeline']) / extra:.1f}" if extra > 1 else "-"
        print(f"{r.lines:>10,} pipeline {r.peak_rss['pipeline']:>6.0f} ({r.idle_rss['pipeline']:.0f}), "
              f"email {r.peak_rss['email']:>5.0f} ({r.idle_rss['email']:.0f}); lines {r.lines_mib:>5.0f}; "
              f"copies {copies}")
    national = sorted((r for r in results if r.lines > 100_000 and r.lines < 200_000), key=lambda r: r.email_workers)
    _national(national)
    _targets(ladder, national)


def _national(national: list[Result]) -> None:
    if not national:
        return
    print(f"\nnational session, {national[0].emails:,} emails, by email worker processes "
          f"({os.cpu_count()} CPUs on this machine)")
    one = next((r for r in national if r.email_workers == 1), None)
    for r in national:
        speedup = f", {r.rate / one.rate:.2f}x one process" if one else ""
        print(f"{r.email_workers:>3} processes: {r.rate:>6.0f} emails/s, {r.emails / r.email_cpu:>6.0f} per CPU-second"
              f"{speedup}; close -> last email {r.close_to_last:.1f} s; at most {r.connections} connections to "
              "PostgreSQL")
    two = next((r for r in national if r.email_workers == 2 and r.fast_path), None)
    if two:
        print(f"fast path (render + send from one process, no database): {two.fast_path:.1f} s "
              f"({two.emails / two.fast_path:.0f} emails/s); close -> last email with 2 processes "
              f"{two.close_to_last / two.fast_path:.2f}x it (target at most 1.5x)")
        turnaround = two.realloc["turnaround"]
        print(f"reallocation (Moderna supply raised): {two.realloc['emails']:,} emails; command start -> last email "
              f"{turnaround:.1f} s (the command returned after {two.realloc['command']:.1f} s) = "
              f"{turnaround / two.close_to_last:.2f}x the national close (target under 0.25x)")
    if one and os.cpu_count() < 4:
        print(f"note: {os.cpu_count()} CPUs: beyond {os.cpu_count()} email processes, the sink, PostgreSQL and the "
              "pipeline worker share the same cores")


def _targets(ladder: list[Result], national: list[Result]) -> None:
    """The issue's ratios beside their targets, for whatever sizes this run measured."""
    rows = []
    if len(ladder) >= 2:
        small, big = ladder[-2], ladder[-1]
        power = 1 / math.log10(big.lines / small.lines)
        for stage in STAGES:
            growth = (big.stages[stage] / small.stages[stage]) ** power if small.stages[stage] > 0 else math.nan
            rows.append((f"{stage} growth per 10x lines, {small.lines:,} → {big.lines:,}", growth, "<= 12",
                         growth <= 12))
        close = (big.close_to_last / small.close_to_last) ** power
        rows.append(("close → last email growth per 10x lines", close, "<= 12", close <= 12))
    if ladder and ladder[-1].lines_mib > 0:
        big = ladder[-1]
        copies = (big.peak_rss["pipeline"] - big.idle_rss["pipeline"]) / big.lines_mib
        rows.append((f"pipeline worker's peak above idle, in frames of lines ({big.lines:,} lines)", copies, "<= 2",
                     copies <= 2))
    one = next((r for r in national if r.email_workers == 1), None)
    two = next((r for r in national if r.email_workers == 2), None)
    if one and two and one.rate:
        rows.append(("national: 2 email processes / 1", two.rate / one.rate, ">= 1.6", two.rate / one.rate >= 1.6))
    if two and two.fast_path:
        rows.append(("national: close → last email / its emails' fast path", two.close_to_last / two.fast_path,
                     "<= 1.5", two.close_to_last / two.fast_path <= 1.5))
    if two and two.realloc:
        share = two.realloc["turnaround"] / two.close_to_last
        rows.append(("national: reallocation turnaround / national close", share, "< 0.25", share < 0.25))
    if rows:
        ratios(rows)


def _rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", *args], check=check, capture_output=True)


def _wait(done, timeout: float, late: str):
    deadline = time.monotonic() + timeout
    while not (found := done()):
        if time.monotonic() > deadline:
            raise RuntimeError(late)
        time.sleep(0.2)
    return found


def _rss(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


def _peak(process: psutil.Process) -> float:
    """VmHWM: the process's peak resident memory, MiB."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def _cpu(process: psutil.Process) -> float:
    with contextlib.suppress(psutil.NoSuchProcess):
        times = process.cpu_times()
        return times.user + times.system
    return 0.0


if __name__ == "__main__":
    main()
