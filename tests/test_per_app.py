"""Two Gatehouse apps in one process share nothing: counters, sessions and mail queues are
each app's own (state lives in ``app.extensions["gatehouse"]``, never at module level)."""

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_gatehouse import state, testing
from flask_gatehouse.models import OutboxMessage
from flask_gatehouse.services import users
from tests.conftest import PASSWORD, csrf_token, login, minimal_host, session_cookie
from tests.smtp import Mailbox, SMTPServer, free_port


@pytest.fixture
def two_apps(tmp_path: Path, smtp_server: SMTPServer, mailbox: Mailbox) -> Iterator[Any]:
    """Two hosts in this process, each on its own SQLite file and in-memory counters; the
    first mails the test SMTP server, the second a port where nothing listens."""
    built = []
    for name, port in (("a", smtp_server.port), ("b", free_port())):
        app, db = minimal_host(
            f"sqlite:///{tmp_path / name}.db",
            MAIL_PORT=port,
            GATEHOUSE_RATELIMIT_STORAGE_URI="memory://",
            GATEHOUSE_MAIL_ATTEMPTS=100,
        )
        with app.app_context():
            db.create_all()
            users.register(
                email="hana@example.com", username=name, password=PASSWORD, confirmed=True
            )
            db.session.commit()
        built.append((app, db))
    yield [app for app, _ in built]
    for app, db in built:
        testing.stop_mail(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_each_app_has_its_own_state(two_apps: list[Flask]) -> None:
    a, b = two_apps
    assert state.get(a) is not state.get(b)
    assert state.get(a).limiter is not state.get(b).limiter
    assert state.get(a).outbox is not state.get(b).outbox


def test_a_lockout_on_one_app_leaves_the_other_alone(two_apps: list[Flask]) -> None:
    a, b = two_apps
    attacker = a.test_client()
    for _ in range(5):
        assert (
            login(attacker, "hana@example.com", "a wrong password, long enough").status_code == 400
        )
    assert login(attacker, "hana@example.com").status_code == 429
    assert login(b.test_client(), "hana@example.com").status_code == 302


def test_a_session_of_one_app_means_nothing_to_the_other(two_apps: list[Flask]) -> None:
    a, b = two_apps
    on_a = a.test_client()
    assert login(on_a, "hana@example.com").status_code == 302
    on_b = b.test_client()
    on_b.set_cookie("__Host-gatehouse_session", session_cookie(on_a) or "")
    assert on_b.get("/dashboard").status_code == 302
    assert on_a.get("/dashboard").text == "Dashboard of a"


def test_each_app_sends_its_own_mail(two_apps: list[Flask], mailbox: Mailbox) -> None:
    a, b = two_apps
    for app, address in ((a, "ann@example.com"), (b, "bea@example.com")):
        client = app.test_client()
        form = {
            "csrf_token": csrf_token(client.get("/register")),
            "email": address,
            "username": "someone",
            "password": PASSWORD,
        }
        assert client.post("/register", data=form).status_code == 302
    assert testing.wait_for_mail(a)
    assert [message["To"] for message in mailbox.wait_for(1)] == ["ann@example.com"]
    # b's SMTP server is down: its message waits in b's own outbox, retried there.
    testing.stop_mail(b)
    with b.app_context():
        row = b.extensions["sqlalchemy"].session.scalar(sa.select(OutboxMessage))
    assert (row.recipient, row.status) == ("bea@example.com", "pending")
    assert [message["To"] for message in mailbox.messages] == ["ann@example.com"]


def test_a_forked_child_rebuilds_locks_threads_and_pools(
    two_apps: list[Flask], mailbox: Mailbox
) -> None:
    """A pre-forking server forks a process whose threads are busy: in the child, a lock held
    at the fork, the parent's database connections and its mail thread must not be reused.
    The child signs in (counters, database, a new-device notice) and exits 0 only if all
    of it worked in time."""
    app = two_apps[0]
    assert login(app.test_client(), "hana@example.com").status_code == 302  # pools, worker
    storage = state.get(app).limiter.storage
    held, release = threading.Event(), threading.Event()

    def busy() -> None:
        with storage.locks["gatehouse-lockout/busy"]:  # as a request thread mid-count
            held.set()
            release.wait(10)

    thread = threading.Thread(target=busy)
    thread.start()
    held.wait(5)
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        code = 1
        try:
            signal.alarm(20)
            fresh = app.test_client()
            signed_in = login(fresh, "hana@example.com").status_code == 302
            unlocked = storage.locks["gatehouse-lockout/busy"].acquire(timeout=2)
            code = 0 if signed_in and unlocked and testing.wait_for_mail(app, 10) else 1
        finally:
            os._exit(code)
    release.set()
    thread.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    notices = [m for m in mailbox.wait_for(1) if "new sign-in" in m["Subject"].lower()]
    assert len(notices) == 1
