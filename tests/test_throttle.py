"""Rate limits and login lockout, attacked through HTTP.

Per-IP failed logins, forwarded headers, per-account lockout with backoff and a hard stop,
known devices, parallel guesses over a real socket, sign-up limits, and counters shared
between two app servers through Redis.

Tests that move the clock build their app on ``memory://`` counters (time-machine moves
``time.time()``, which in-memory counters read; Redis uses its own clock).
"""

import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, Request, build_opener

import pytest
import sqlalchemy as sa
import time_machine
from argon2 import PasswordHasher
from blog import db
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeSerializer
from itsdangerous.encoding import base64_encode
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from flask_gatehouse.errors import MESSAGES
from flask_gatehouse.models import Event
from flask_gatehouse.services import throttle, users
from tests.conftest import (
    PASSWORD,
    TEST_CONFIG,
    csrf_token,
    login,
    logout,
    session_cookie,
    user_row,
)

WRONG = "not the password, but long enough"
NEW_PASSWORD = "a completely different passphrase"
LOCKED = "Too many failed attempts. Try again in"
DEVICE_COOKIE = "__Host-gatehouse_device"
#: A Redis database of this test's own: other runs with ``--ratelimit-storage-uri redis://...``
#: empty database 0 at the start of every test (``limiter.reset()``), which would wipe the
#: counters of a test running beside them.
REDIS_URI = "redis://127.0.0.1:6379/13"
GENERIC_429 = MESSAGES[429][1]


# --- helpers ---------------------------------------------------------------------------------


def browser(app: Flask, ip: str = "127.0.0.1") -> FlaskClient:
    """A test client whose TCP peer address is ``ip``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def attempt(
    client: FlaskClient,
    email: str,
    password: str = PASSWORD,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """A login through the form, sending ``headers`` with both the GET and the POST."""
    headers = headers or {}
    token = csrf_token(client.get("/login", headers=headers))
    return client.post(
        "/login",
        data={"csrf_token": token, "email": email, "password": password},
        headers=headers,
    )


def without_csrf(html: str) -> str:
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", html)


def retry_after(response: TestResponse) -> int:
    values = response.headers.getlist("Retry-After")
    assert len(values) == 1, values
    return int(values[0])


def fail(client: FlaskClient, email: str, times: int = 5) -> None:
    for _ in range(times):
        assert attempt(client, email, WRONG).status_code == 400


def count_verifies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every argon2 verification (thread-safe: list.append under a lock)."""
    calls: list[str] = []
    lock = threading.Lock()
    original = PasswordHasher.verify

    def counting_verify(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        with lock:
            calls.append(str(hash))
        return original(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    return calls


@contextmanager
def frozen() -> Iterator[Any]:
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        yield clock


@pytest.fixture
def memory_app(make_app: Any, user: Any) -> Flask:
    """An app on in-memory counters, built after ``user`` so the limiter ends up bound to it."""
    app: Flask = make_app(GATEHOUSE_RATELIMIT_STORAGE_URI="memory://")
    return app


# --- per-IP failed logins --------------------------------------------------------------------


def test_ten_failures_from_one_ip_refuse_the_eleventh_even_when_right(
    memory_app: Flask, user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = browser(memory_app)
    with frozen() as clock:
        for n in range(10):
            assert attempt(client, f"nobody{n}@example.com", WRONG).status_code == 400
        calls = count_verifies(monkeypatch)

        refused = attempt(client, user.email)
        assert refused.status_code == 429
        assert 1 <= retry_after(refused) <= 60
        assert "<h1>Too many requests</h1>" in refused.text
        assert GENERIC_429 in refused.text
        assert LOCKED not in refused.text
        assert session_cookie(client) is None

        token = csrf_token(client.get("/login"))
        api = client.post(
            "/login",
            data={"csrf_token": token, "email": user.email, "password": PASSWORD},
            headers={"Accept": "application/json"},
        )
        assert api.status_code == 429
        assert api.is_json
        assert api.get_json() == {"error": {"code": 429, "message": GENERIC_429}}
        assert 1 <= retry_after(api) <= 60
        assert calls == []  # the view never ran: no hashing for a refused request

        clock.shift(61)
        assert attempt(client, user.email).status_code == 302


def test_successful_logins_do_not_count_against_the_ip(client: FlaskClient, user: Any) -> None:
    fail(client, "nobody@example.com", times=1)
    for n in range(8):
        assert attempt(client, f"nobody{n}@example.com", WRONG).status_code == 400
    for _ in range(5):
        assert login(client, user.email).status_code == 302
        assert logout(client).status_code == 302
    assert attempt(client, "tenth@example.com", WRONG).status_code == 400
    assert attempt(client, user.email).status_code == 429


# --- client IP and forwarding headers ------------------------------------------------------


def test_spoofed_forwarded_for_is_ignored_without_trusted_proxies(
    client: FlaskClient, user: Any
) -> None:
    for n in range(10):
        spoofed = {"X-Forwarded-For": f"203.0.113.{n}"}
        assert attempt(client, f"nobody{n}@example.com", WRONG, spoofed).status_code == 400
    refused = attempt(client, user.email, headers={"X-Forwarded-For": "198.51.100.77"})
    assert refused.status_code == 429
    assert GENERIC_429 in refused.text


def test_untrusted_forwarded_headers_change_neither_ip_nor_scheme(
    client: FlaskClient, user: Any
) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    assert "Strict-Transport-Security" not in client.get("/login", headers=forwarded).headers
    assert attempt(client, user.email, headers=forwarded).status_code == 302
    page = client.get("/account", headers=forwarded)
    assert '<td data-label="IP address">127.0.0.1</td>' in page.text
    assert "203.0.113.9" not in page.text


def test_behind_one_trusted_proxy_the_last_hop_is_the_client(make_app: Any, user: Any) -> None:
    app = make_app(GATEHOUSE_TRUSTED_PROXIES=1)
    client = app.test_client()
    # The first hop is whatever the client wrote; the proxy appended the real address.
    for n in range(10):
        hops = {"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.5"}
        assert attempt(client, f"nobody{n}@example.com", WRONG, hops).status_code == 400
    same_client = {"X-Forwarded-For": "198.51.100.99, 203.0.113.5"}
    assert attempt(client, user.email, headers=same_client).status_code == 429

    other_client = {"X-Forwarded-For": "203.0.113.6"}
    assert attempt(client, "nobody@example.com", WRONG, other_client).status_code == 400
    assert attempt(client, user.email, headers=other_client).status_code == 302
    page = client.get("/account", headers=other_client)
    assert '<td data-label="IP address">203.0.113.6</td>' in page.text
    assert "127.0.0.1" not in page.text


def test_trusted_proxy_forwarded_proto_turns_on_hsts(make_app: Any) -> None:
    client = make_app(GATEHOUSE_TRUSTED_PROXIES=1).test_client()
    assert "Strict-Transport-Security" not in client.get("/login").headers
    https = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert https.headers["Strict-Transport-Security"].startswith("max-age=")


# --- per-account lockout ---------------------------------------------------------------------


def test_five_failures_lock_the_account_even_for_the_right_password(
    memory_app: Flask, user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = browser(memory_app)
    with frozen() as clock:
        fail(client, user.email)
        calls = count_verifies(monkeypatch)
        locked = attempt(client, user.email)
        assert locked.status_code == 429
        assert 299 <= retry_after(locked) <= 300
        assert f"{LOCKED} 5 minutes." in locked.text
        assert calls == []
        assert session_cookie(client) is None

        clock.shift(301)
        assert attempt(client, user.email).status_code == 302
        assert len(calls) == 1


def test_lockout_of_a_missing_account_looks_the_same(memory_app: Flask, user: Any) -> None:
    answers = []
    with frozen():
        for ip, email in (("10.0.0.1", user.email), ("10.0.0.2", "nobody@example.com")):
            client = browser(memory_app, ip)
            fail(client, email)
            answers.append((email, attempt(client, email)))
    (real_email, real), (missing_email, missing) = answers
    assert real.status_code == missing.status_code == 429
    assert retry_after(real) == retry_after(missing)
    assert LOCKED in real.text
    assert without_csrf(real.text).replace(real_email, "X") == without_csrf(missing.text).replace(
        missing_email, "X"
    )


def test_lockout_keys_on_the_normalised_address(client: FlaskClient, user: Any) -> None:
    for spelling in ("ALICE@example.com", " alice@EXAMPLE.com ", "Alice@Example.Com"):
        fail(client, spelling, times=1)
    fail(client, user.email, times=2)
    assert attempt(client, "ALICE@EXAMPLE.COM").status_code == 429


def test_repeated_lockouts_last_longer(memory_app: Flask, user: Any) -> None:
    """After the first unlock, five more failures in the hour keep the account locked for the
    hour tier, not just another five minutes."""
    client = browser(memory_app)
    with frozen() as clock:
        fail(client, user.email)
        clock.shift(301)
        fail(client, user.email)
        assert attempt(client, user.email).status_code == 429
        clock.shift(301)
        still = attempt(client, user.email)
        assert still.status_code == 429
        assert retry_after(still) > 300
        clock.shift(3600 - 602 + 1)
        assert attempt(client, user.email).status_code == 302


def test_retry_after_reports_the_longest_full_tier(memory_app: Flask, user: Any) -> None:
    """Ten failures in the hour fill the hour tier: the refusal must say so (about 55
    minutes), not promise the five-minute tier's 300 seconds after which it is still locked.

    LIBRARY BUG (once): the lockout returned the wait of the first tier whose hit failed and
    never looked at the longer tiers behind it.
    """
    client = browser(memory_app)
    with frozen() as clock:
        fail(client, user.email)
        clock.shift(301)
        fail(client, user.email)
        locked = attempt(client, user.email)
        assert locked.status_code == 429
        assert retry_after(locked) == pytest.approx(3600 - 301, abs=1)
        assert f"{LOCKED} 55 minutes." in locked.text


def test_twenty_failures_in_a_day_lock_for_the_day(memory_app: Flask, user: Any) -> None:
    client = browser(memory_app)
    with frozen() as clock:
        elapsed = 0
        # Four bursts of five, spaced so that neither the 5-minute nor the hour tier refuses.
        for gap in (0, 301, 3601, 301):
            clock.shift(gap)
            elapsed += gap
            fail(client, user.email)
        clock.shift(3601)
        elapsed += 3601
        locked = attempt(client, user.email)
        assert locked.status_code == 429
        assert retry_after(locked) == pytest.approx(86400 - elapsed, abs=1)
        assert LOCKED in locked.text
        clock.shift(86400 - elapsed + 1)
        assert attempt(client, user.email).status_code == 302


def test_set_password_from_the_cli_lifts_the_lockout(
    app: Flask, client: FlaskClient, runner: Any, user: Any
) -> None:
    fail(client, user.email)
    assert attempt(client, user.email).status_code == 429
    result = runner.invoke(
        args=["gatehouse", "set-password", user.email, "--password", NEW_PASSWORD]
    )
    assert result.exit_code == 0, result.output
    assert attempt(client, user.email, NEW_PASSWORD).status_code == 302


# --- known devices ---------------------------------------------------------------------------


def test_lockout_does_not_block_a_known_device(app: Flask, user: Any) -> None:
    owner = browser(app, "10.0.0.1")
    assert login(owner, user.email).status_code == 302
    assert owner.get_cookie(DEVICE_COOKIE) is not None
    assert logout(owner).status_code == 302

    attacker = browser(app, "10.0.0.2")
    fail(attacker, user.email)
    assert attempt(attacker, user.email, WRONG).status_code == 429
    assert attempt(attacker, user.email).status_code == 429

    assert attempt(owner, user.email).status_code == 302
    assert logout(owner).status_code == 302
    # The owner's browser has a budget of its own, not an exemption.
    fail(owner, user.email)
    locked = attempt(owner, user.email)
    assert locked.status_code == 429
    assert LOCKED in locked.text


def _forged_device_cookies(app: Flask, user_factory: Any, email: str) -> dict[str, str]:
    owner = browser(app, "10.0.0.1")
    assert login(owner, email).status_code == 302
    genuine = owner.get_cookie(DEVICE_COOKIE).value
    payload, signature = genuine.rsplit(".", 1)
    identifier = throttle.identifier_key(email)[:32]
    rewritten = base64_encode(json.dumps([identifier, "attackers-device"])).decode()

    other = user_factory(email="bob@example.com", username="bob")
    bob = browser(app, "10.0.0.9")
    assert login(bob, other.email).status_code == 302
    return {
        "other payload, genuine signature": f"{rewritten}.{signature}",
        "signed with another key": URLSafeSerializer(
            "not-the-app-secret-key", salt="gatehouse.device"
        ).dumps([identifier, "attackers-device"]),
        "another account's cookie": bob.get_cookie(DEVICE_COOKIE).value,
        "garbage": "x" * 40,
        "genuine payload, no signature": payload,
    }


def test_forged_device_cookies_give_no_exemption(app: Flask, user: Any, user_factory: Any) -> None:
    forged = _forged_device_cookies(app, user_factory, user.email)
    fail(browser(app, "10.0.0.2"), user.email)
    for n, (label, value) in enumerate(forged.items()):
        client = browser(app, f"10.0.1.{n}")
        client.set_cookie(DEVICE_COOKIE, value)
        response = attempt(client, user.email)
        assert response.status_code == 429, label
        assert LOCKED in response.text, label


# --- parallel guesses ------------------------------------------------------------------------


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> Any:
    # The cookies are Secure; the local test servers speak plain HTTP.
    jar = CookieJar(DefaultCookiePolicy(secure_protocols=("http", "https")))
    return build_opener(HTTPCookieProcessor(jar), _NoRedirect())


def _login_over_http(
    base_url: str, email: str, password: str, barrier: threading.Barrier | None = None
) -> tuple[int, str]:
    opener = _opener()
    with opener.open(f"{base_url}/login", timeout=30) as page:
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.read().decode())
    assert token
    body = urlencode({"email": email, "password": password, "csrf_token": token.group(1)})
    if barrier is not None:
        barrier.wait(timeout=30)
    post = Request(f"{base_url}/login", data=body.encode())  # noqa: S310 - local test server
    try:
        with opener.open(post, timeout=30) as response:
            return int(response.status), response.read().decode()
    except HTTPError as answer:
        with answer:
            return answer.code, answer.read().decode()


class TestParallelGuesses:
    @pytest.fixture
    def app(self, make_app: Any) -> Flask:
        # One socket peer (127.0.0.1) for every thread: lift the per-IP limit out of the way.
        # Production's hash cost, so that the parallel checks really overlap.
        app: Flask = make_app(
            GATEHOUSE_LOGIN_IP_LIMIT="1000 per minute",
            GATEHOUSE_ARGON2_MEMORY_COST=19 * 1024,
            GATEHOUSE_ARGON2_TIME_COST=2,
        )
        return app

    def test_fifty_parallel_guesses_get_at_most_five_password_checks(
        self, user: Any, live_server: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        threads = 50
        calls = count_verifies(monkeypatch)
        barrier = threading.Barrier(threads)
        with ThreadPoolExecutor(threads) as pool:
            futures = [
                pool.submit(_login_over_http, live_server, user.email, WRONG, barrier)
                for _ in range(threads)
            ]
            answers = [future.result() for future in futures]
        statuses = Counter(status for status, _ in answers)
        assert set(statuses) <= {400, 429}, statuses
        assert statuses[400] == len(calls) <= 5
        assert statuses[429] == threads - statuses[400]
        assert all(LOCKED in body for status, body in answers if status == 429)

    def test_ten_browsers_with_the_right_password_at_once_all_get_in(
        self, user: Any, live_server: str
    ) -> None:
        """Attempts that find the tiers full only because of attempts still being checked
        wait for them rather than fail: only wrong passwords lock an account."""
        threads = 10
        barrier = threading.Barrier(threads)
        with ThreadPoolExecutor(threads) as pool:
            futures = [
                pool.submit(_login_over_http, live_server, user.email, PASSWORD, barrier)
                for _ in range(threads)
            ]
            statuses = [future.result()[0] for future in futures]
        assert statuses == [302] * threads


# --- sign-up limits --------------------------------------------------------------------------


def sign_up(client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
    token = csrf_token(client.get("/register"))
    return client.post(
        "/register",
        data={"csrf_token": token, "email": email, "username": "bob", "password": password},
    )


def test_fourth_sign_up_for_an_address_within_the_hour_is_refused(app: Flask, user: Any) -> None:
    """Taken and fresh addresses hit the limit alike, so the limit reveals nothing."""
    answers = {}
    for ip, address in (("10.0.0.1", "alice@example.com"), ("10.0.0.2", "fresh@example.com")):
        client = browser(app, ip)
        local, domain = address.split("@")
        spellings = [address, f"{local.upper()}@{domain}", f" {local}@{domain.upper()} "]
        statuses = [sign_up(client, spelling).status_code for spelling in spellings]
        refused = sign_up(client, address)
        assert statuses == [302, 302, 302], address
        assert refused.status_code == 429, address
        assert 3500 <= retry_after(refused) <= 3600
        assert GENERIC_429 in refused.text
        answers[address] = refused.text
    assert answers["alice@example.com"] == answers["fresh@example.com"]


def test_invalid_sign_up_forms_do_not_count_for_the_address(client: FlaskClient) -> None:
    for _ in range(5):
        assert sign_up(client, "fresh@example.com", password="short").status_code == 400
    for _ in range(3):
        assert sign_up(client, "fresh@example.com").status_code == 302
    assert sign_up(client, "fresh@example.com").status_code == 429


def test_eleventh_sign_up_from_one_ip_is_refused(app: Flask, client: FlaskClient) -> None:
    # Twenty-one submissions in a minute: this test is about accepted sign-ups only.
    app.config["GATEHOUSE_SIGNUP_ATTEMPT_LIMIT"] = "100 per minute"
    for n in range(10):
        assert sign_up(client, f"bad{n}@example.com", password="short").status_code == 400
        assert sign_up(client, f"person{n}@example.com").status_code == 302
    refused = sign_up(client, "person10@example.com")
    assert refused.status_code == 429
    assert 3500 <= retry_after(refused) <= 3600
    assert user_row(app, "person10@example.com") is None  # the view did not run
    assert sign_up(browser(app, "10.0.0.3"), "person10@example.com").status_code == 302


def test_every_sign_up_submission_counts_against_the_ip(app: Flask) -> None:
    """Refused forms are not free to repeat: after 20 in a minute the next submission is
    refused unread, valid or not; another IP is unaffected, and a minute later it is over."""
    client = browser(app, "10.0.0.4")
    with frozen() as clock:
        for n in range(20):
            assert sign_up(client, f"bad{n}@example.com", password="short").status_code == 400
        refused = sign_up(client, "valid@example.com")
        assert refused.status_code == 429
        assert 1 <= retry_after(refused) <= 60
        assert GENERIC_429 in refused.text
        assert user_row(app, "valid@example.com") is None  # the view did not run
        assert sign_up(client, "bad@example.com", password="short").status_code == 429
        assert sign_up(browser(app, "10.0.0.5"), "valid@example.com").status_code == 302

        clock.shift(61)
        assert sign_up(client, "valid@example.com").status_code == 302


def test_accepted_sign_ups_count_as_submissions_too(app: Flask) -> None:
    """With both limits set alike, each keeps its own counter: 10 accepted sign-ups use up
    10 of the 20 submissions, not 20."""
    app.config["GATEHOUSE_SIGNUP_IP_LIMIT"] = "20 per minute"
    client = browser(app, "10.0.0.6")
    with frozen():
        for n in range(10):
            assert sign_up(client, f"person{n}@example.com").status_code == 302
        for n in range(10):
            assert sign_up(client, f"bad{n}@example.com", password="short").status_code == 400
        assert sign_up(client, "person10@example.com").status_code == 429


# --- counters shared between app servers (Redis) ---------------------------------------------


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


_SERVE = """
import json, sys
from blog import create_app
from werkzeug.serving import make_server

server = make_server("127.0.0.1", 0, create_app(json.loads(sys.argv[1])), threaded=True)
print(server.server_port, flush=True)
server.serve_forever()
"""


@contextmanager
def serving_in_another_process(config: dict[str, Any]) -> Iterator[str]:
    """The demo app with ``config`` in its own interpreter (so nothing in memory is shared)."""
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root / "examples" / "blog"), str(root)]),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE, json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://localhost:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_lockout_counters_are_shared_between_servers_through_redis(
    make_app: Any, database_url: str
) -> None:
    make_app()  # the fixture's first app owns the database reset
    shared = {
        # The other process gets its config as JSON (the mail retry delay is a timedelta and
        # no mail is sent here).
        **{key: value for key, value in TEST_CONFIG.items() if not isinstance(value, timedelta)},
        "SQLALCHEMY_DATABASE_URI": database_url,
        "GATEHOUSE_RATELIMIT_STORAGE_URI": REDIS_URI,
        "GATEHOUSE_LOGIN_IP_LIMIT": "1000 per minute",
    }
    app = make_app(**shared)
    email, other = (f"redis-{uuid.uuid4().hex}@example.com" for _ in range(2))
    with app.app_context():
        for address in (email, other):
            assert users.register(
                email=address, username="redis", password=PASSWORD, confirmed=True
            )
        db.session.commit()
    try:
        with serving(app) as one, serving_in_another_process(shared) as two:
            for base in (one, two, one, two, one):
                assert _login_over_http(base, email, WRONG)[0] == 400
            for base in (one, two):
                status, body = _login_over_http(base, email, PASSWORD)
                assert status == 429
                assert LOCKED in body
            # Another account on the same servers is untouched.
            assert _login_over_http(two, other, PASSWORD)[0] == 302
    finally:
        with app.test_request_context():
            throttle.clear_lockout(email)


def test_a_locked_account_under_attack_writes_one_event_per_five_minutes(
    memory_app: Flask, user: Any
) -> None:
    def blocked_events() -> int:
        with memory_app.app_context():
            query = sa.select(sa.func.count()).select_from(Event).where(Event.outcome == "blocked")
            return db.session.scalar(query)

    with frozen() as clock:
        attacker = browser(memory_app, "192.0.2.90")
        fail(attacker, user.email)
        for _ in range(8):
            assert attempt(attacker, user.email, WRONG).status_code == 429
        assert blocked_events() == 1
        clock.shift(timedelta(minutes=4))
        assert attempt(attacker, user.email, WRONG).status_code == 429
        assert blocked_events() == 1
        clock.shift(timedelta(minutes=1, seconds=1))
        # The 5-minute tier has room again; the hour tier (10) is not full yet.
        fail(attacker, user.email)
        assert attempt(attacker, user.email, WRONG).status_code == 429
        assert blocked_events() == 2
