"""Rate-limit and lockout counters in the app's database (GATEHOUSE_RATELIMIT_STORAGE_URI
"database", the default): one count for every worker on the database, atomic, self-cleaning.

Every test here uses the database storage on the run's database (SQLite, or PostgreSQL with
--database-url), whatever --ratelimit-storage-uri says.
"""

import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from threading import Barrier
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
import time_machine
from blog import db
from flask import Flask
from limits.storage import MemoryStorage

from flask_gatehouse import state, testing
from flask_gatehouse.models import RateLimitCounter, RateLimitEntry
from flask_gatehouse.services import users
from flask_gatehouse.services.counters import DatabaseStorage
from tests.conftest import PASSWORD, TEST_CONFIG, login, minimal_host
from tests.smtp import SMTPServer, free_port
from tests.test_recovery import WRONG
from tests.test_scale_out import browser, demo_server, post_form

T = TypeVar("T")


@pytest.fixture
def app(make_app: Any) -> Flask:
    app: Flask = make_app(GATEHOUSE_RATELIMIT_STORAGE_URI="database")
    return app


def storage_of(app: Flask) -> DatabaseStorage:
    storage = state.get(app).limiter.storage
    assert isinstance(storage, DatabaseStorage)
    return storage


# The storage keeps limits' own semantics: a script of calls answers as limits' memory storage.


def script(storage: Any, clock: Any) -> list[object]:
    """Counters up and down (the lockout counts attempts in flight that way), expiries, moving
    windows, clearing: every answer, at times away from any window's edge."""
    answers: list[object] = [storage.incr("c", 10), storage.incr("c", 10, -1)]
    clock.shift(3)
    answers += [storage.incr("c", 10, 2), storage.get_expiry("c"), storage.incr("c", 10, -3)]
    answers += [storage.get("c"), storage.get_expiry("c")]
    clock.shift(11)
    answers += [storage.get("c"), storage.incr("c", 10, -1), storage.get("c")]
    answers += [[storage.acquire_entry("w", 3, 10) for _ in range(4)]]
    answers += [storage.get_moving_window("w", 3, 10)]
    clock.shift(4)
    answers += [storage.acquire_entry("w", 3, 10, amount=2), storage.acquire_entry("w", 3, 10)]
    clock.shift(7)
    # An empty window's start means nothing (limits' memory storage gives a stale one).
    answers += [storage.get_moving_window("w", 3, 10)[1], storage.acquire_entry("w", 3, 10, 2)]
    answers += [storage.acquire_entry("w", 3, 10, 4), storage.get_moving_window("w", 3, 10)]
    storage.clear("w")
    storage.clear("c")
    answers += [storage.get("c"), storage.get_moving_window("w", 3, 10)[1]]
    return answers


def test_answers_as_limits_memory_storage_does(app: Flask) -> None:
    start = datetime(2026, 12, 1, 12, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        expected = script(MemoryStorage(), clock)
    with time_machine.travel(start, tick=False) as clock:
        assert script(storage_of(app), clock) == expected
    assert expected[:3] == [1, 0, 2]  # the script exercises what it should


def test_parallel_calls_are_atomic(app: Flask) -> None:
    """Separate connections at once: each increment sees its own count, and a window never
    takes more entries than its limit."""
    storage = storage_of(app)
    workers = 12
    barrier = Barrier(workers)

    def at_once(call: Callable[[], T]) -> list[T]:
        def run(_: int) -> T:
            barrier.wait(timeout=30)
            return call()

        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(run, range(workers)))

    assert sorted(at_once(lambda: storage.incr("flight", 60))) == list(range(1, workers + 1))
    assert sorted(at_once(lambda: storage.incr("flight", 60, -1))) == list(range(workers))
    assert storage.get("flight") == 0
    assert at_once(lambda: storage.acquire_entry("window", 5, 60)).count(True) == 5
    assert storage.get_moving_window("window", 5, 60)[1] == 5


# Through the pages.


def test_a_lockout_is_one_count_for_every_app_on_the_database(make_app: Any, user: Any) -> None:
    """Two apps on one database stand for two worker processes: the attempts made on either
    count together (with memory:// each would allow five)."""
    first, second = (
        make_app(GATEHOUSE_RATELIMIT_STORAGE_URI="database"),
        make_app(GATEHOUSE_RATELIMIT_STORAGE_URI="database"),
    )
    attacker = [first.test_client(), second.test_client()]
    for attempt in range(5):
        assert login(attacker[attempt % 2], user.email, WRONG).status_code == 400
    assert login(first.test_client(), user.email).status_code == 429
    assert login(second.test_client(), user.email).status_code == 429


def test_expired_counts_are_deleted(app: Flask, user: Any) -> None:
    """Keys that are never used again (a client IP seen once) do not stay in the tables."""
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        for number in range(3):
            client = app.test_client()
            client.environ_base["REMOTE_ADDR"] = f"198.51.100.{number}"
            assert login(client, user.email, WRONG).status_code == 400
        assert any("198.51.100.0" in key for key in stored_keys(app))
        clock.shift(timedelta(days=1, minutes=1))  # past every window, the longest a day
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "203.0.113.7"
        assert login(client, user.email, WRONG).status_code == 400
        keys = stored_keys(app)
    assert keys
    assert not [key for key in keys if "198.51.100." in key]


def stored_keys(app: Flask) -> list[str]:
    with app.app_context():
        counters = db.session.scalars(sa.select(RateLimitCounter.key)).all()
        entries = db.session.scalars(sa.select(RateLimitEntry.key)).all()
    return [*counters, *entries]


def test_lost_counter_tables_answer_503(app: Flask, user: Any) -> None:
    with app.app_context():
        RateLimitEntry.__table__.drop(db.engine)
    assert not storage_of(app).check()
    assert login(app.test_client(), user.email).status_code == 503


# The proof: the demo under gunicorn, two workers, the default counter storage.


class Pin:
    """Keeps one of the server's sync workers busy: it has accepted a request whose headers
    have not ended, and reads on. Connections are accepted in order, so requests made while
    one worker is pinned go to the other."""

    def __init__(self, port: int) -> None:
        self._socket = socket.create_connection(("127.0.0.1", port), timeout=30)
        self._socket.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        # Until a worker has taken the connection, the worker released next may take it
        # instead (a loaded machine is slow to get back to accept()).
        assert wait_until_accepted(port), "no worker took the pinning connection"

    def release(self) -> None:
        self._socket.sendall(b"Connection: close\r\n\r\n")
        while self._socket.recv(65536):
            pass
        self._socket.close()


def wait_until_accepted(port: int, timeout: float = 10.0) -> bool:
    """Wait until the server's listening socket has no connection waiting to be accepted
    (Linux: a listening socket's rx_queue in /proc/net/tcp is its accept queue)."""
    local = f":{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
        listening = [
            line.split()
            for line in lines
            if line.split()[1].endswith(local) and line.split()[3] == "0A"
        ]
        if listening and all(int(fields[4].split(":")[1], 16) == 0 for fields in listening):
            return True
        time.sleep(0.005)
    return False


def on_both_workers(port: int, first: Callable[[], None], second: Callable[[], None]) -> None:
    """Run ``first`` on one worker and ``second`` on the other."""
    one = Pin(port)
    first()  # on the worker ``one`` does not hold
    two = Pin(port)  # the only free worker: the one that ran ``first``
    one.release()
    second()
    two.release()


@contextmanager
def two_workers(database_url: str, smtp_port: int, log: Path) -> Iterator[int]:
    """The demo as its README runs it in production, with two workers and no counter
    storage configured; yields its port. Each request's worker goes to ``log``."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("FLASK_")}
    env |= {
        "FLASK_SECRET_KEY": TEST_CONFIG["SECRET_KEY"],
        "FLASK_SQLALCHEMY_DATABASE_URI": database_url,
        "FLASK_GATEHOUSE_BASE_URL": "https://gatehouse.test",
        "FLASK_GATEHOUSE_ARGON2_TIME_COST": "1",
        "FLASK_GATEHOUSE_ARGON2_MEMORY_COST": "8",
        "FLASK_MAIL_SERVER": "127.0.0.1",
        "FLASK_MAIL_PORT": str(smtp_port),
        "FLASK_GATEHOUSE_SIGNUP_ATTEMPT_LIMIT": "3 per minute",
    }
    log_options = ["--access-logfile", str(log), "--access-logformat", "%(p)s %(m)s %(U)s %(s)s"]
    with demo_server(port, env, "-w", "2", *log_options):
        yield port


def workers_that_answered(log: Path, method: str, path: str, status: int) -> set[str]:
    lines = re.findall(rf"^<(\d+)> {method} {path} {status}$", log.read_text(), re.MULTILINE)
    return set(lines)


def register(app: Flask, email: str) -> None:
    with app.app_context():
        users.register(email=email, username="reader", password=PASSWORD, confirmed=True)
        db.session.commit()


def test_the_limits_hold_across_two_workers(
    app: Flask, database_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """The lockout, the failed-login limit per IP and a route limit (sign-up submissions per
    IP, here three a minute), each counted on both workers."""
    register(app, "target@example.com")
    register(app, "bystander@example.com")
    log = tmp_path / "access.log"
    with two_workers(database_url, smtp_server.port, log) as port:
        url = f"http://127.0.0.1:{port}"

        def guess(email: str, times: int) -> Callable[[], None]:
            def run() -> None:
                for number in range(times):
                    fields = {"email": email, "password": f"wrong guess number {number}"}
                    assert post_form(browser(), f"{url}/login", fields) == 400

            return run

        def sign_up(times: int) -> Callable[[], None]:
            def run() -> None:
                for _ in range(times):
                    fields = {"email": "new@example.com", "username": "new", "password": "short"}
                    assert post_form(browser(), f"{url}/register", fields) == 400

            return run

        # The documented lockout: five wrong passwords, then even the right one waits.
        on_both_workers(port, guess("target@example.com", 2), guess("target@example.com", 3))
        right = {"email": "target@example.com", "password": PASSWORD}
        assert post_form(browser(), f"{url}/login", right) == 429

        # Ten failed logins from one IP (five more, on addresses nobody has), then that IP
        # waits, whatever the account.
        on_both_workers(port, guess("nobody1@example.com", 2), guess("nobody2@example.com", 3))
        right = {"email": "bystander@example.com", "password": PASSWORD}
        assert post_form(browser(), f"{url}/login", right) == 429

        on_both_workers(port, sign_up(1), sign_up(2))
        fields = {"email": "new@example.com", "username": "new", "password": PASSWORD}
        assert post_form(browser(), f"{url}/register", fields) == 429
    assert len(workers_that_answered(log, "POST", "/login", 400)) == 2
    assert len(workers_that_answered(log, "POST", "/register", 400)) == 2


def test_an_in_memory_database_counts_in_memory(smtp_server: SMTPServer) -> None:
    """``sqlite://`` lives in one process (on one connection Flask-SQLAlchemy shares between
    threads): its counters stay in that process's memory, where the lockout still holds."""
    host, host_db = minimal_host("sqlite://", MAIL_PORT=smtp_server.port)
    with host.app_context():
        host_db.create_all()
        users.register(email="ann@example.com", username="ann", password=PASSWORD, confirmed=True)
        host_db.session.commit()
    try:
        assert isinstance(state.get(host).limiter.storage, MemoryStorage)
        for _ in range(5):
            assert login(host.test_client(), "ann@example.com", WRONG).status_code == 400
        assert login(host.test_client(), "ann@example.com").status_code == 429
    finally:
        testing.stop_mail(host)
        with host.app_context():
            host_db.session.remove()
            host_db.engine.dispose()
