"""Two app servers (gunicorn processes) on one PostgreSQL and one Redis, as in production.

Always PostgreSQL and Redis, whatever the suite's --database-url: this test is about what
the two share. Both run on every machine of this project (see README).
"""

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import (
    HTTPCookieProcessor,
    HTTPRedirectHandler,
    OpenerDirector,
    Request,
    build_opener,
)

import pytest
import sqlalchemy as sa
from blog import create_app, db
from flask import Flask

from flask_gatehouse import User, state
from flask_gatehouse.services import throttle  # noqa: F401
from tests.conftest import PASSWORD, SCALE_OUT_DATABASE_URL, TEST_CONFIG
from tests.smtp import Mailbox, SMTPServer, free_port

PG_URL = SCALE_OUT_DATABASE_URL
REDIS_URL = os.environ.get("GATEHOUSE_SCALE_OUT_REDIS_URL", "redis://127.0.0.1:6379/0")
DEMO = Path(__file__).resolve().parent.parent / "examples" / "blog"
GUNICORN = Path(sys.executable).parent / "gunicorn"


def wait_until_up(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"app server on port {port} exited: {process.stderr.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"app server on port {port} did not start")


@contextmanager
def demo_server(port: int, env: dict[str, str], *options: str) -> Iterator[None]:
    """The demo under gunicorn on ``port`` (``options`` such as ``-w 2``), until exit."""
    process = subprocess.Popen(
        [str(GUNICORN), *options, "-b", f"127.0.0.1:{port}", "blog:create_app()"],
        cwd=DEMO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_up(port, process)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)
        assert process.stderr is not None
        process.stderr.close()


@pytest.fixture(scope="module")
def shared_app() -> Iterator[Flask]:
    """An app on the shared database, for setting up tables and reading results."""
    app = create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": PG_URL,
            "GATEHOUSE_RATELIMIT_STORAGE_URI": REDIS_URL,
        }
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def running_servers(shared_app: Flask, smtp_server: SMTPServer) -> Iterator[list[str]]:
    """Two gunicorn app servers (two workers each) mailing the test SMTP server; yields
    their base URLs."""
    with shared_app.app_context():
        db.drop_all()
        db.create_all()
    env = {
        **os.environ,
        "FLASK_SECRET_KEY": TEST_CONFIG["SECRET_KEY"],
        "FLASK_SQLALCHEMY_DATABASE_URI": PG_URL,
        "FLASK_GATEHOUSE_RATELIMIT_STORAGE_URI": REDIS_URL,
        "FLASK_GATEHOUSE_ARGON2_TIME_COST": "1",
        "FLASK_GATEHOUSE_ARGON2_MEMORY_COST": "8",
        "FLASK_GATEHOUSE_SIGNUP_EMAIL_LIMIT": '"100 per hour"',
        "FLASK_GATEHOUSE_BASE_URL": "https://gatehouse.test",
        "FLASK_MAIL_SERVER": "127.0.0.1",
        "FLASK_MAIL_PORT": str(smtp_server.port),
    }
    ports = [free_port(), free_port()]
    with contextlib.ExitStack() as servers:
        for port in ports:
            servers.enter_context(demo_server(port, env, "-w", "2"))
        yield [f"http://127.0.0.1:{port}" for port in ports]


@pytest.fixture
def servers(shared_app: Flask, running_servers: list[str]) -> list[str]:
    """The running servers, with every table and counter emptied for this test."""
    with shared_app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        state.get(shared_app).limiter.reset()
    return running_servers


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def browser() -> OpenerDirector:
    """One browser: a cookie jar shared across both servers (cookies ignore the port).

    The cookies are Secure; these servers speak plain HTTP on loopback."""
    jar = CookieJar(DefaultCookiePolicy(secure_protocols=("http", "https")))
    return build_opener(HTTPCookieProcessor(jar), _NoRedirect())


def get(opener: OpenerDirector, url: str) -> tuple[int, str]:
    try:
        with opener.open(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as answer:
        return answer.code, answer.read().decode()


def post_form(opener: OpenerDirector, url: str, fields: dict[str, str]) -> int:
    _, page = get(opener, url)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, page
    body = urlencode({**fields, "csrf_token": token.group(1)}).encode()
    try:
        with opener.open(Request(url, data=body), timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as answer:
        return answer.code


def register(app: Flask, email: str) -> None:
    from flask_gatehouse.services import users

    with app.app_context():
        users.register(email=email, username="reader", password=PASSWORD, confirmed=True)
        db.session.commit()


def test_a_session_opened_on_one_server_works_and_ends_on_both(
    shared_app: Flask, servers: list[str]
) -> None:
    first, second = servers
    register(shared_app, "reader@example.com")
    reader = browser()
    login = {"email": "reader@example.com", "password": PASSWORD}
    assert post_form(reader, f"{first}/login", login) == 302
    status, page = get(reader, f"{second}/blogs")
    assert status == 200
    assert "Hi reader" in page
    assert post_form(reader, f"{second}/logout", {}) == 302
    assert get(reader, f"{first}/blogs")[0] == 302
    assert get(reader, f"{second}/blogs")[0] == 302


def test_lockout_counts_are_shared(shared_app: Flask, servers: list[str]) -> None:
    register(shared_app, "target@example.com")
    attacker = browser()
    for attempt in range(5):
        server = servers[attempt % 2]
        wrong = {"email": "target@example.com", "password": f"wrong guess number {attempt}"}
        assert post_form(attacker, f"{server}/login", wrong) == 400
    for server in servers:
        right = {"email": "target@example.com", "password": PASSWORD}
        assert post_form(attacker, f"{server}/login", right) == 429


def test_parallel_sign_ups_across_servers_make_one_account(
    shared_app: Flask, servers: list[str], mailbox: Mailbox
) -> None:
    barrier = threading.Barrier(8)
    fields = {"email": "race@example.com", "username": "racer", "password": PASSWORD}

    def sign_up(index: int) -> int:
        opener = browser()
        url = f"{servers[index % 2]}/register"
        _, page = get(opener, url)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        assert token
        body = urlencode({**fields, "csrf_token": token.group(1)}).encode()
        barrier.wait(timeout=30)
        try:
            with opener.open(Request(url, data=body), timeout=30) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as answer:
            return answer.code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(sign_up, range(8)))
    assert statuses == [302] * 8
    # One confirmation link for the account made, seven "you already have an account" mails.
    subjects = sorted(str(message["Subject"]) for message in mailbox.wait_for(8))
    assert subjects.count("The Blog: Someone tried to create an account with your address") == 7
    assert sum(subject.startswith("The Blog: Confirm your email") for subject in subjects) == 1
    with shared_app.app_context():
        count = db.session.scalar(
            sa.select(sa.func.count()).select_from(User).where(User.email == "race@example.com")
        )
    assert count == 1
