"""What DKIM signing costs per email: unsigned, RSA-2048 and Ed25519 sent in turns in the same run.

    .venv/bin/python -m bench dkim [--count 2000] [--connections 8] [--repeat 3]

Each turn renders and sends the same typical confirmations over `send_all` (the sink as in
`bench mail`); the signer is the one the workers use. Also the signing alone, per message.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import tempfile
import time
from pathlib import Path

import nacl.signing

from pipeline.adapters.mail import render as mail
from pipeline.adapters.mail.signing import Signer
from pipeline.adapters.mail.smtp import Outcome, SmtpTarget, send_all_sync

from .bench_mail import ENVELOPE_SENDER, _yardstick, sink, typical


def keys(folder: Path) -> dict[str, Signer]:
    rsa = folder / "rsa.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(rsa)],
                   check=True, capture_output=True)
    ed = folder / "ed25519.pem"
    der = bytes.fromhex("302e020100300506032b657004220420") + bytes(nacl.signing.SigningKey.generate())
    ed.write_bytes(b"-----BEGIN PRIVATE KEY-----\n" + base64.encodebytes(der) + b"-----END PRIVATE KEY-----\n")
    return {"rsa-2048": Signer.from_file(rsa, "bench", "vialflow.example.fr"),
            "ed25519": Signer.from_file(ed, "bench", "vialflow.example.fr")}


def turn(target: SmtpTarget, confirmations, connections: int) -> tuple[float, int]:
    """Emails per second rendering while sending (as the email task does), and how many were not sent."""
    start = time.perf_counter()
    items = ((n, ENVELOPE_SENDER, c.email, mail.render(c)) for n, c in enumerate(confirmations))
    outcomes = send_all_sync(target, items, connections=connections)
    return len(confirmations) / (time.perf_counter() - start), sum(o != Outcome.SENT for o, _ in outcomes.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    confirmations = typical(args.count)
    rendered = [mail.render(c) for c in confirmations[:200]]
    print(f"{args.count} typical confirmations; load average {os.getloadavg()[0]:.2f}; "
          f"sum(range(1000)) in {_yardstick():.1f} µs")
    with tempfile.TemporaryDirectory() as folder:
        signers = keys(Path(folder))
    for name, signer in signers.items():
        start = time.process_time()
        for message in rendered:
            signer(message)
        print(f"signing alone, {name:8}: {(time.process_time() - start) / len(rendered) * 1e3:6.2f} ms of CPU per email")
    with sink() as (host, port, sink_name):
        plain = SmtpTarget(host, port, "none")
        targets = {"unsigned": plain, **{name: SmtpTarget(host, port, "none", sign=s) for name, s in signers.items()}}
        send_all_sync(plain, [(0, ENVELOPE_SENDER, confirmations[0].email, rendered[0])])  # warm-up
        best: dict[str, float] = {}
        unsent = 0
        for _ in range(args.repeat):  # in turns, so that a noisy moment hits all three alike
            for name, target in targets.items():
                rate, missed = turn(target, confirmations, args.connections)
                best[name] = max(best.get(name, 0.0), rate)
                unsent += missed
    print(f"sink: {sink_name}; best of {args.repeat} turns each; {unsent} not sent")
    for name, rate in best.items():
        extra = 1e3 / rate - 1e3 / best["unsigned"]
        print(f"{name:9}: {rate:7.0f} emails/s = {rate / best['unsigned']:.2f}x unsigned"
              + ("" if name == "unsigned" else f"; {extra:+.2f} ms per email"))


if __name__ == "__main__":
    main()
