"""Database outages: a throwaway PostgreSQL cluster this test starts, stops and restarts.

No mocks: the app talks to a real server that really goes away.
"""

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from blog import create_app, db
from flask import Flask
from sqlalchemy.orm import Session

from flask_gatehouse import User, signals, testing
from flask_gatehouse.models import Event, OutboxMessage, Token
from tests.conftest import PASSWORD, TEST_CONFIG, csrf_token, login


class Cluster:
    """A PostgreSQL cluster in a temporary folder, run as the postgres user."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.bin = Path(bins[-1])
        self.dir = Path(tempfile.mkdtemp(prefix="gatehouse-pg-"))
        self.dir.chmod(0o755)
        postgres = pwd.getpwnam("postgres")
        os.chown(self.dir, postgres.pw_uid, postgres.pw_gid)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / tool), *args],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        data, log = str(self.dir / "data"), str(self.dir / "log")
        self._run("pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    cluster.start()
    yield cluster
    with contextlib.suppress(subprocess.CalledProcessError):  # stopped by a failed test
        cluster.stop()
    cluster.remove()


@pytest.fixture
def outage_app(cluster: Cluster) -> Iterator[Flask]:
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": cluster.url})
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    testing.stop_mail(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def count_users(app: Flask, email: str) -> int:
    with app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count()).select_from(User).where(User.email == email)
        )


def test_pages_answer_503_while_the_database_is_down_and_recover(
    cluster: Cluster, outage_app: Flask, user_factory
) -> None:
    from flask_gatehouse.services import users

    with outage_app.app_context():
        users.register(
            email="reader@example.com",
            username="reader",
            password="a long passphrase here",
            confirmed=True,
        )
        db.session.commit()
    reader, visitor = outage_app.test_client(), outage_app.test_client()
    assert login(reader, "reader@example.com", "a long passphrase here").status_code == 302
    token = csrf_token(visitor.get("/register"))

    cluster.stop()
    try:
        page = reader.get("/blogs")
        assert page.status_code == 503
        assert page.headers["Retry-After"] == "5"
        assert "briefly unavailable" in page.text
        for leak in ("psycopg", "OperationalError", "Traceback", "5432", str(cluster.port)):
            assert leak not in page.text
        api = reader.get("/blogs", headers={"Accept": "application/json"})
        assert api.status_code == 503
        assert api.json == {
            "error": {
                "code": 503,
                "message": "The service is briefly unavailable. Please try again shortly.",
            }
        }
        signup = visitor.post(
            "/register",
            data={
                "csrf_token": token,
                "email": "newcomer@example.com",
                "username": "newcomer",
                "password": "another long passphrase",
            },
        )
        assert signup.status_code == 503
        assert reader.get("/readyz").status_code == 503
        assert reader.get("/healthz").status_code == 200
    finally:
        cluster.start()

    page = reader.get("/blogs")
    assert page.status_code == 200
    assert "Hi reader" in page.text
    assert reader.get("/readyz").json["database"] == "ok"
    assert count_users(outage_app, "newcomer@example.com") == 0


def test_rate_limited_actions_answer_503_while_the_counter_storage_is_down(
    app: Flask, make_app
) -> None:
    """Nothing listens on port 1: login is refused (not let through unlimited), pages
    without limits still work, and readiness reports the storage. (The ``app`` fixture
    builds the test's first app, whose counters the fixtures empty.)"""
    app = make_app(GATEHOUSE_RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    client = app.test_client()
    token = csrf_token(client.get("/login"))
    response = client.post(
        "/login", data={"csrf_token": token, "email": "a@example.com", "password": "x" * 20}
    )
    assert response.status_code == 503
    assert "briefly unavailable" in response.text
    assert "redis" not in response.text.lower()
    assert client.get("/register").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["ratelimit_storage"] == "unavailable"
    assert ready.json["database"] == "ok"


def test_a_database_lost_in_the_middle_of_a_sign_up_leaves_nothing_half_written(
    cluster: Cluster, outage_app: Flask
) -> None:
    """The database stops once the sign-up's confirmation link is written (after the account
    row, before the commit): the sign-up answers 503 and, with the database back, no part of
    it exists (one transaction per action), so the address can sign up again."""
    visitor = outage_app.test_client()
    form = {
        "csrf_token": csrf_token(visitor.get("/register")),
        "email": "midway@example.com",
        "username": "midway",
        "password": "another long passphrase",
    }

    def stop_once_the_link_is_written(session: object, _context: object) -> None:
        if any(isinstance(row, Token) for row in session.new):  # type: ignore[attr-defined]
            sa.event.remove(Session, "after_flush", stop_once_the_link_is_written)
            cluster.stop()

    heard: list[object] = []
    sa.event.listen(Session, "after_flush", stop_once_the_link_is_written)
    try:
        with signals.security_event.connected_to(lambda *a, **k: heard.append(k), outage_app):
            response = visitor.post("/register", data=form)
    finally:
        if sa.event.contains(Session, "after_flush", stop_once_the_link_is_written):
            sa.event.remove(Session, "after_flush", stop_once_the_link_is_written)
        cluster.start()
    assert response.status_code == 503
    assert heard == []  # no signal (nor log line) tells of a sign-up that did not happen

    with outage_app.app_context():
        for model in (User, Token, Event, OutboxMessage):
            assert db.session.scalar(sa.select(sa.func.count()).select_from(model)) == 0
    form["csrf_token"] = csrf_token(visitor.get("/register"))
    assert visitor.post("/register", data=form).status_code == 302
    assert count_users(outage_app, "midway@example.com") == 1


def test_attempts_the_database_could_not_check_count_nothing(
    cluster: Cluster, outage_app: Flask
) -> None:
    """Logins answered 503 while the database is down checked no password: once it is back,
    the right password gets in at once (no lockout built from the server's own failure)."""
    from flask_gatehouse.services import users

    email, password = "reader@example.com", "a long passphrase here"
    with outage_app.app_context():
        users.register(email=email, username="reader", password=password, confirmed=True)
        db.session.commit()
    client = outage_app.test_client()
    form = {"csrf_token": csrf_token(client.get("/login")), "email": email, "password": password}
    cluster.stop()
    try:
        for _ in range(8):  # more than the lockout's five
            assert client.post("/login", data=form).status_code == 503
    finally:
        cluster.start()
    assert login(client, email, password).status_code == 302
    assert "Hi reader" in client.get("/blogs").text


class RedisProxy:
    """A TCP proxy to the real Redis that can be cut, as a Redis server dying would."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut.is_set():  # accepted while being cut
                client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", 6379))
            self.connections += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)

    def close(self) -> None:
        self.cut.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self.listener.close()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()


def test_redis_dying_once_a_login_has_committed_leaves_it_signed_in(
    app: Flask, make_app: Any, user: Any
) -> None:
    """Redis goes away right after the login committed (its signal goes out after the
    commit): nothing after that point may read the counters, so the login answers as the
    login it was, not with a 500."""
    proxy = RedisProxy()
    redis_app = make_app(GATEHOUSE_RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{proxy.port}/15")
    client = redis_app.test_client()
    try:
        with signals.user_logged_in.connected_to(lambda *a, **k: proxy.close(), redis_app):
            response = login(client, user.email, PASSWORD)
    finally:
        proxy.close()
    assert response.status_code == 302
    assert response.headers["Location"] == "/blogs"
    assert "Hi alice" in client.get("/blogs").text
