"""Does sending mail cost a response anything? Pages that mail, with the SMTP server up,
slow or down, against the same page for an address that gets no mail.

    .venv/bin/python bench/mail.py [--requests 200]

The demo app (SQLite file, production argon2 parameters) is driven in-process through
Flask's test client; mail goes to a real SMTP server (aiosmtpd, in a process of its own) on
127.0.0.1:

* ``up``: accepts every message at once;
* ``slow``: takes 0.25 s per message, so a queue builds up (a struggling relay);
* ``down``: nothing listens on the port (connection refused; retries back off).

For each, ``POST /forgot`` and ``POST /confirm/resend`` are timed for an address that gets a
mail and for an unknown address (no mail: the baseline). Mail is sent from the background
thread, so the figures should match across the three servers and between the two addresses;
the last column says how many messages the server received during the timed requests. Each
case starts once the previous one's mail is sent (or given up).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import re
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "examples" / "blog"), str(ROOT)]

from aiosmtpd.controller import Controller  # noqa: E402
from blog import create_app, db  # noqa: E402
from blogs import markdown  # noqa: E402

from flask_gatehouse import mail, users  # noqa: E402
from tests.smtp import free_port  # noqa: E402

KNOWN = "known@example.com"
UNCONFIRMED = "pending@example.com"
UNKNOWN = "nobody@example.com"
PASSWORD = "velvet harbour quartz lantern 1971"
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


class Handler:
    """Counts the messages it accepts in a counter shared with the benchmark process."""

    def __init__(self, delay: float, received: Synchronized[int]) -> None:
        self.delay = delay
        self.received = received

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.received.get_lock():
            self.received.value += 1
        return "250 OK"


def serve_smtp(port: int, delay: float, received: Synchronized[int], stop: Event) -> None:
    """An SMTP server in a process of its own (as a real one would be): it must not compete
    with the app for this interpreter's lock."""
    controller = Controller(Handler(delay, received), hostname="127.0.0.1", port=port)
    controller.start()
    stop.wait()
    controller.stop()


@contextlib.contextmanager
def smtp_server(port: int, delay: float | None) -> Iterator[Synchronized[int]]:
    """A server on ``port`` taking ``delay`` seconds a message; None: nothing listens."""
    received: Synchronized[int] = multiprocessing.Value("i", 0)
    if delay is None:
        yield received
        return
    stop = multiprocessing.Event()
    process = multiprocessing.Process(target=serve_smtp, args=(port, delay, received, stop))
    process.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        time.sleep(0.05)
    try:
        yield received
    finally:
        stop.set()
        process.join(timeout=10)


def build(tmp: Path, port: int) -> Any:
    app = create_app(
        {
            "SECRET_KEY": "bench-secret-key-long-enough",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'mail.db'}",
            "GATEHOUSE_BASE_URL": "https://bench.example",
            "GATEHOUSE_EMAIL_REQUEST_IP_LIMIT": "1000000 per hour",
            "GATEHOUSE_EMAIL_REQUEST_ADDRESS_LIMIT": "1000000 per hour",
            "GATEHOUSE_MAIL_RETRY_DELAY": timedelta(seconds=1),
            "GATEHOUSE_MAIL_ATTEMPTS": 2,
            "MAIL_BACKEND": "smtp",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": port,
        }
    )
    with app.app_context():
        db.drop_all()
        db.create_all()
        users.register(email=KNOWN, username="known", password=PASSWORD, confirmed=True)
        users.register(email=UNCONFIRMED, username="pending", password=PASSWORD)
        db.session.commit()
    return app


def timed(client: Any, path: str, email: str, requests: int) -> list[float]:
    token = _CSRF.search(client.get(path).get_data(as_text=True))
    assert token
    form = {"csrf_token": token.group(1), "email": email}
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.post(path, data=form)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 302, response.status_code
    return times


def summary(times: list[float]) -> tuple[str, str]:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"{statistics.median(ordered):.2f}", f"{p95:.2f}"


def run(requests: int) -> list[list[str]]:
    rows = []
    cases: list[tuple[str, str, str]] = [
        ("/forgot", KNOWN, "reset mail"),
        ("/forgot", UNKNOWN, "none"),
        ("/confirm/resend", UNCONFIRMED, "confirmation mail"),
        ("/confirm/resend", UNKNOWN, "none"),
    ]
    servers: list[tuple[str, float | None]] = [
        ("up", 0.0),
        ("slow (0.25 s a message)", 0.25),
        ("down", None),
    ]
    for label, delay in servers:
        port = free_port()
        with smtp_server(port, delay) as received, tempfile.TemporaryDirectory() as tmp:
            app = build(Path(tmp), port)
            client = app.test_client()
            for path, email, sends in cases:
                # Each case starts with an idle sending thread (no backlog of the last).
                mail.wait_until_sent(timeout=300)
                before = received.value
                median, p95 = summary(timed(client, path, email, requests))
                rows.append([label, path, sends, median, p95, str(received.value - before)])
            # Let queued mail finish or fail before the server goes away.
            mail.wait_until_sent(timeout=300)
            with app.app_context():
                db.engine.dispose()
    return rows


def main() -> None:
    # Lost mail (the "down" server) is logged at ERROR, once per message: expected here.
    logging.getLogger("flask_gatehouse.mail").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    rows = run(args.requests)
    header = ["SMTP server", "page", "mail sent", "median ms", "p95 ms", "received meanwhile"]
    print("\n".join(markdown(header, rows)))


if __name__ == "__main__":
    main()
