"""The breached-password check (Have I Been Pwned range API) against a local fake of the API:
k-anonymity, padding, refusal of listed passwords, and failing open when the API fails."""

import hashlib
import logging
import re
import socket
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib import request as urllib_request

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import csrf_token, user_row

BREACHED = "This password has appeared in a data breach; choose another."
LISTED = "violet submarine orchestra tuesday"
UNLISTED = "quiet lantern harbour seventeen"
PADDED = "amber tractor whistle november"  # its suffix is only in the answer as padding


def sha1(password: str) -> str:
    normalised = unicodedata.normalize("NFKC", password)
    return hashlib.sha1(normalised.encode(), usedforsecurity=False).hexdigest().upper()


@dataclass
class FakeRangeApi:
    """What the fake API was asked, and how it should answer."""

    url: str = ""
    counts: dict[str, int] = field(default_factory=dict)  # full SHA-1 -> count
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Add-Padding)
    status: int = 200
    delay: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_GET(self) -> None:
        api = self.server.api
        api.requests.append((self.path, self.headers.get("Add-Padding")))
        if api.delay:
            time.sleep(api.delay)
        match = re.fullmatch(r"/range/([0-9A-F]{5})", self.path)
        if api.status != 200 or match is None:
            self.send_error(api.status if api.status != 200 else 404)
            return
        prefix = match.group(1)
        lines = [f"{full[5:]}:{count}" for full, count in api.counts.items() if full[:5] == prefix]
        # Padding: made-up suffixes with a count of 0, as the real API adds them.
        lines += [f"{n:035X}:0" for n in range(1, 40)]
        body = "\r\n".join(lines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a deliberately slow handler must not hold up the test's end
    api: FakeRangeApi

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The slow handler answers after the client gave up: a broken pipe is expected.
        pass


@pytest.fixture
def hibp() -> Iterator[FakeRangeApi]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.api = FakeRangeApi(url=f"http://127.0.0.1:{server.server_port}/range/")
    server.api.counts = {sha1(LISTED): 3_861_493, sha1(PADDED): 0}
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.api
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture
def hibp_app(make_app: Any, hibp: FakeRangeApi) -> Flask:
    app: Flask = make_app(GATEHOUSE_HIBP_URL=hibp.url)
    return app


def sign_up(client: FlaskClient, password: str, email: str = "bob@example.com") -> TestResponse:
    token = csrf_token(client.get("/register"))
    return client.post(
        "/register",
        data={"csrf_token": token, "email": email, "username": "bob", "password": password},
    )


def test_listed_password_is_refused(hibp_app: Flask, hibp: FakeRangeApi) -> None:
    response = sign_up(hibp_app.test_client(), LISTED)
    assert response.status_code == 400
    assert BREACHED in response.text
    assert user_row(hibp_app, "bob@example.com") is None


def test_unlisted_password_is_accepted(hibp_app: Flask, hibp: FakeRangeApi) -> None:
    assert sign_up(hibp_app.test_client(), UNLISTED).status_code == 302
    assert user_row(hibp_app, "bob@example.com") is not None
    assert len(hibp.requests) == 1


def test_padding_entry_with_count_zero_is_accepted(hibp_app: Flask, hibp: FakeRangeApi) -> None:
    assert sign_up(hibp_app.test_client(), PADDED).status_code == 302


def test_listed_password_typed_in_another_form_is_refused(hibp_app: Flask) -> None:
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c != " " else c for c in LISTED)
    assert sha1(fullwidth) == sha1(LISTED)  # NFKC folds fullwidth letters
    response = sign_up(hibp_app.test_client(), fullwidth)
    assert response.status_code == 400
    assert BREACHED in response.text


@pytest.mark.parametrize("password", [LISTED, UNLISTED])
def test_only_a_five_character_prefix_leaves_with_padding_asked(
    hibp_app: Flask, hibp: FakeRangeApi, password: str
) -> None:
    sign_up(hibp_app.test_client(), password)
    digest = sha1(password)
    assert hibp.requests == [(f"/range/{digest[:5]}", "true")]
    path = hibp.requests[0][0]
    assert digest not in path.upper()
    assert digest[5:] not in path.upper()
    assert password not in path


def test_policy_failures_are_not_sent_to_the_api(hibp_app: Flask, hibp: FakeRangeApi) -> None:
    assert sign_up(hibp_app.test_client(), "short").status_code == 400
    assert sign_up(hibp_app.test_client(), "bob@example.com!!").status_code == 400
    assert hibp.requests == []


# --- failing open ----------------------------------------------------------------------------


def _assert_fails_open(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="flask_gatehouse.passwords")
    assert sign_up(app.test_client(), LISTED).status_code == 302
    assert user_row(app, "bob@example.com") is not None
    warnings = [
        r
        for r in caplog.records
        if r.name == "flask_gatehouse.passwords" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1
    assert "failing open" in warnings[0].getMessage()


def test_server_error_fails_open(
    hibp_app: Flask, hibp: FakeRangeApi, caplog: pytest.LogCaptureFixture
) -> None:
    hibp.status = 500
    _assert_fails_open(hibp_app, caplog)
    assert len(hibp.requests) == 1


def test_closed_port_fails_open(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = make_app(GATEHOUSE_HIBP_URL=f"http://127.0.0.1:{port}/range/")
    _assert_fails_open(app, caplog)


def test_slow_server_times_out_and_fails_open(
    make_app: Any, hibp: FakeRangeApi, caplog: pytest.LogCaptureFixture
) -> None:
    hibp.delay = 1.0
    app = make_app(GATEHOUSE_HIBP_URL=hibp.url, GATEHOUSE_HIBP_TIMEOUT=0.2)
    start = time.monotonic()
    _assert_fails_open(app, caplog)
    assert time.monotonic() - start < hibp.delay
    assert len(hibp.requests) == 1


# --- off by default --------------------------------------------------------------------------


def test_check_is_off_by_default(
    app: Flask, hibp: FakeRangeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Any] = []
    monkeypatch.setattr(urllib_request, "urlopen", lambda *a, **k: opened.append(a))
    assert app.config["GATEHOUSE_HIBP_URL"] is None
    assert sign_up(app.test_client(), LISTED).status_code == 302
    assert opened == []
    assert hibp.requests == []
