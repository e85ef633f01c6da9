"""Fuzzing: whatever a client sends, the answer is below 500.

Every POST, PATCH and DELETE endpoint of the app (read from its URL map, so a new page or
API route joins by itself) gets
every kind of hostile body: random, broken UTF-8, duplicated and huge form fields, files
instead of fields, JSON of the wrong shape or types, JSON nested past the parser's limits, raw
bytes under odd content types. Every GET endpoint gets random query strings. Each request may
also carry hostile headers (Host, Content-Type, Accept, cookies, X-Forwarded-For, User-Agent,
a lying Content-Length), and goes out as a stranger, as a signed-in user and in the middle of
a pending sign-in (/login/new-password, /login/two-factor, /login/two-factor/setup), with the
visitor's real CSRF token most of the time so that the forms' validators and flows run, not
only the CSRF check. The JSON API's routes also get an app client, signed in or at its
two-factor stage, with its real ``X-Session-Token`` most of the time.

The generator is seeded: the same requests on every run. GATEHOUSE_FUZZ_SEED picks other
ones, GATEHOUSE_FUZZ_ROUNDS sends more. The app runs with TESTING, so an exception reaches the
test with its traceback (and the request that caused it) instead of becoming a 500 page.
"""

import json
import os
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any
from urllib.parse import quote_from_bytes

import pyotp
import pytest
from flask import Flask
from flask.testing import EnvironBuilder, FlaskClient
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.routing import Rule
from werkzeug.test import encode_multipart, run_wsgi_app

from flask_gatehouse.config import DEFAULTS
from flask_gatehouse.testing import captured_mail
from tests.conftest import PASSWORD, Account, csrf_token, login
from tests.saml_idp import SamlIdp, saml_idp, saml_idp_server
from tests.social_providers import (
    GitHubLikeProvider,
    OidcProvider,
    github,
    github_provider,
    oidc,
    oidc_provider,
)
from tests.test_saml import providers as saml_providers
from tests.test_social_login import providers

__all__ = ["github", "github_provider", "oidc", "oidc_provider", "saml_idp", "saml_idp_server"]

SEED = int(os.environ.get("GATEHOUSE_FUZZ_SEED", "10"))
ROUNDS = int(os.environ.get("GATEHOUSE_FUZZ_ROUNDS", "1"))

#: Every field name Gatehouse's forms read, and some they don't.
FIELDS = [
    "csrf_token",
    "email",
    "username",
    "password",
    "current_password",
    "remember",
    "next",
    "code",
    "trust_browser",
    "name",
    "passkey_assertion",
    "credential",
]
HOSTILE_TEXT = [
    "",
    " ",
    "\x00",
    "\x00@example.com",
    "fuzz1@example.com",  # the signed-in visitor's address (the pending one's is fuzz2@)
    " FUZZ2@EXAMPLE.COM ",
    "\uff41\uff4c\uff49\uff43\uff45@example.com",  # full-width
    "a" * 65 + "@example.com",
    "x@" + "a" * 300 + ".com",
    "é@é.fr",
    "a@[127.0.0.1]",
    '"quoted local"@example.com',
    "<script>alert(1)</script>",
    "'; DROP TABLE gatehouse_users; --",
    "../../../../etc/passwd",
    "%00%ff",
    "\u202e\u200b\ufeff",
    "y",
    "true",
    PASSWORD,
    "a fresh passphrase for the fuzzer",
    "123456",
    " 12 34 56 ",
    "abcd-efgh-jkmn",
    "OIL0-oil1-----",
    "a" * 5000,
]
NEXT_URLS = ["//evil.test", "/\\evil.test", "\\\\evil.test", "javascript:alert(1)", "/blogs", "/"]
HOSTS = [
    "a" * 64 + ".example.com",
    "",
    "[::1",
    "localhost:99999",
    "localhost:abc",
    "exa mple.com",
    "a..b",
    ".",
    "xn--",
    "xn--a.com",
    "é.example",
    "evil.test",
    "localhost:80:80",
    "user@localhost",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=latin-1",
    "application/vnd.api+json",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-16",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=x",
    "text/plain",
    "text/html; charset=nope",
    "application/octet-stream",
    "*/*",
    "garbage",
    "",
]
ACCEPTS = [
    "application/json",
    "text/html",
    "*/*",
    "application/json;q=abc, text/html;q=",
    "text/html;q=0.1, application/json;q=0.9",
    ";;;,,,",
    "",
]
COOKIE_NAMES = [
    "remember_token",
    "session",
    "__Host-gatehouse_session",
    "__Host-gatehouse_device",
    "__Host-gatehouse_pending_login",
    "csrf_token",
]
BODY_KINDS = [
    "token only",
    "form",
    "broken utf-8",
    "duplicated",
    "huge",
    "files",
    "json",
    "deep json",
    "raw bytes",
]
#: ``<converter:name>`` in a rule's pattern.
_ARGUMENT = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")


@dataclass
class Visitor:
    """Who sends a request: the Cookie header their browser sends, and their CSRF token; or
    an app client's session token."""

    kind: str
    cookie: str
    token: str
    app_token: str = ""
    #: A request carrying the token was sent: it may have signed out or finished the sign-in.
    stale: bool = False


class Visitors:
    """A stranger, a signed-in user and a pending sign-in, made again when a request may
    have ended them (signed out, account deleted, new password chosen)."""

    KINDS = ("stranger", "signed_in", "pending", "two_factor", "enrolment")
    #: The API's routes get app clients too.
    API_KINDS = (*KINDS, "app", "app_two_factor")

    def __init__(self, app: Flask, user_factory: Callable[..., Account]) -> None:
        self.app = app
        self.user_factory = user_factory
        self.accounts = 0
        self.made: dict[str, Visitor] = {}

    def __getitem__(self, kind: str) -> Visitor:
        found = self.made.get(kind)
        if found is None or (found.stale and not self._unchanged(found)):
            found = self.made[kind] = getattr(self, f"_{kind}")()
        found.stale = False
        return found

    def _unchanged(self, visitor: Visitor) -> bool:
        if visitor.app_token:
            headers = {"X-Session-Token": visitor.app_token}
            client = self.app.test_client(use_cookies=False)
            answer = client.get("/api/v1/app/auth/session", headers=headers)
            return answer.status_code == 200 or "pending" in (answer.json or {})
        page = {
            "signed_in": "/account",
            "pending": "/login/new-password",
            "two_factor": "/login/two-factor",
            "enrolment": "/login/two-factor/setup",
        }.get(visitor.kind)
        if page is None:
            return True
        client = self.app.test_client(use_cookies=False)
        return client.get(page, headers={"Cookie": visitor.cookie}).status_code == 200

    def _account(self, *, temporary: bool = False, prefix: str = "fuzz") -> Account:
        self.accounts += 1
        name = f"{prefix}{self.accounts}"
        account = self.user_factory(email=f"{name}@example.com", username=name)
        if temporary:
            command = ["gatehouse", "set-password", account.email, "--temporary"]
            result = self.app.test_cli_runner().invoke(args=[*command, "--password", PASSWORD])
            assert result.exit_code == 0, result.output
        return account

    @staticmethod
    def _visitor(kind: str, client: FlaskClient, page: str) -> Visitor:
        response = client.get(page)
        assert response.status_code == 200, page
        cookie = client.get("/healthz").request.headers["Cookie"]  # what the browser now sends
        return Visitor(kind, cookie, csrf_token(response))

    def _stranger(self) -> Visitor:
        return self._visitor("stranger", self.app.test_client(), "/login")

    def _signed_in(self) -> Visitor:
        client = self.app.test_client()
        assert login(client, self._account().email).status_code == 302
        return self._visitor("signed_in", client, "/account")

    def _pending(self) -> Visitor:
        client = self.app.test_client()
        response = login(client, self._account(temporary=True).email)
        assert response.headers["Location"] == "/login/new-password"
        return self._visitor("pending", client, "/login/new-password")

    def _app(self) -> Visitor:
        """An app client's session."""
        client = self.app.test_client(use_cookies=False)
        body = {"email": self._account().email, "password": PASSWORD}
        answer = client.post("/api/v1/app/auth/login", json=body)
        assert answer.status_code == 200, answer.text
        return Visitor("app", "", "", answer.json["meta"]["session_token"])

    def _app_two_factor(self) -> Visitor:
        """An app client's pending sign-in waiting for the code."""
        account = self._enrolled()
        client = self.app.test_client(use_cookies=False)
        body = {"email": account.email, "password": PASSWORD}
        answer = client.post("/api/v1/app/auth/login", json=body)
        assert answer.json["pending"]["stage"] == "two_factor", answer.text
        return Visitor("app_two_factor", "", "", answer.json["meta"]["session_token"])

    def _two_factor(self) -> Visitor:
        """A pending sign-in waiting for the code of an account that enrolled an app."""
        client = self.app.test_client()
        assert login(client, self._enrolled().email).headers["Location"] == "/login/two-factor"
        return self._visitor("two_factor", client, "/login/two-factor")

    def _enrolled(self) -> Account:
        """A new account with an authenticator app."""
        client = self.app.test_client()
        account = self._account()
        assert login(client, account.email).status_code == 302
        page = client.get("/account/two-factor")
        key = re.search(r'class="totp-key">([A-Z2-7 ]+)<', page.text)
        assert key
        code = pyotp.TOTP(key.group(1).replace(" ", "")).now()
        form = {"csrf_token": csrf_token(page), "code": code}
        assert client.post("/account/two-factor", data=form).status_code == 200
        return account

    def _enrolment(self) -> Visitor:
        """A pending sign-in held at the enrolment the policy requires (``fuzz_app``'s
        GATEHOUSE_MFA_REQUIRED picks the "mfa" accounts)."""
        client = self.app.test_client()
        response = login(client, self._account(prefix="mfa").email)
        assert response.headers["Location"] == "/login/two-factor/setup"
        return self._visitor("enrolment", client, "/login/two-factor/setup")


class Fuzzer:
    """Hostile values, drawn from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def chance(self, probability: float) -> bool:
        return self.random.random() < probability

    def text(self, max_size: int = 40) -> str:
        """Text that may hold anything: NUL, controls, astral characters, lone surrogates."""
        if self.chance(0.5):
            return self.random.choice(HOSTILE_TEXT)
        points = [
            self.random.choice(
                [self.random.randrange(0x20, 0x7F), self.random.randrange(0, 0x110000)]
            )
            for _ in range(self.random.randrange(max_size + 1))
        ]
        return "".join(map(chr, points))

    def raw(self, max_size: int = 40) -> bytes:
        """Bytes, mostly not UTF-8."""
        if self.chance(0.2):
            return b"\xff\xfe\xc3\x28\xed\xa0\x80"  # invalid lead, truncated, a surrogate
        return self.random.randbytes(self.random.randrange(max_size + 1))

    def name(self) -> str:
        return self.random.choice(FIELDS) if self.chance(0.8) else self.text(12)

    def value(self, token: str) -> str:
        return token if self.chance(0.1) else self.text() if self.chance(0.9) else token + "x"

    def header(self) -> str:
        """What a header value can carry: Latin-1 without line breaks."""
        length = self.random.randrange(60)
        return "".join(chr(self.random.choice(range(0x20, 0x100))) for _ in range(length))

    def path_values(self, rule: Rule) -> dict[str, Any]:
        return {
            name: self._path_value(converter, arguments, name)
            for converter, arguments, name in _ARGUMENT.findall(rule.rule)
        }

    def _path_value(self, converter: str, arguments: str, name: str) -> Any:
        if converter in ("int", "row_id"):
            return self.number()
        if converter == "any":  # the API's client kinds
            return self.random.choice([item.strip() for item in arguments.split(",")])
        if name == "provider":  # mostly social login's configured providers
            return self.random.choice(["oidc", "github", "corp", "open", clean(self.text()) or "x"])
        return clean(self.text()) or "x"

    def number(self) -> int:
        """Small, or past what a database integer holds."""
        return self.random.choice([self.random.randrange(9), 2**31 - 1, 2**31, 2**63, 10**30])

    def query(self) -> str:
        pairs = [
            (
                self.random.choice([b"next", encoded(self.name())]),
                self.random.choice(
                    [
                        self.random.choice(NEXT_URLS).encode(),
                        encoded(self.text()),
                        self.raw(),
                    ]
                ),
            )
            for _ in range(self.random.randrange(6))
        ]
        return percent_encoded(pairs)

    def json_value(self, depth: int = 0) -> Any:
        choices: list[Callable[[], Any]] = [
            lambda: None,
            lambda: self.chance(0.5),
            lambda: self.random.randrange(-(2**70), 2**70),
            lambda: self.random.choice([1.5, float("inf"), float("nan"), -0.0]),
            self.text,
        ]
        if depth < 3:
            choices.append(lambda: [self.json_value(depth + 1) for _ in range(3)])
            choices.append(
                lambda: {self.name(): self.json_value(depth + 1) for _ in range(3)},
            )
        return self.random.choice(choices)()

    def body(self, kind: str, token: str) -> tuple[bytes, str]:
        """A body of ``kind``, and the content type that goes with it."""
        form = "application/x-www-form-urlencoded"
        fields = [(self.name(), self.value(token)) for _ in range(self.random.randrange(9))]
        if self.chance(0.6):  # the right token, so that validators and flows run
            fields.insert(0, ("csrf_token", token))
        if kind == "token only":  # the likeliest to get past the form, into the flow
            return percent_encoded([(b"csrf_token", token.encode())]).encode(), form
        if kind == "form":
            return percent_encoded(utf8(fields)).encode(), form
        if kind == "broken utf-8":
            return percent_encoded([(name, self.raw()) for name, _ in utf8(fields)]).encode(), form
        if kind == "duplicated":
            name = self.name()
            copies = [(name, self.value(token)) for _ in range(self.random.randrange(2, 50))]
            return percent_encoded(utf8(fields + copies)).encode(), form
        if kind == "huge":
            size = self.random.choice([100_000, 1024 * 1024 + 1])  # the latter over the limit
            many = [(f"f{number}", "x") for number in range(self.random.choice([1, 5000]))]
            huge = [*fields, (self.name(), "a" * size), *many]
            return percent_encoded(utf8(huge)).encode(), form
        if kind == "files":  # (Werkzeug's encoder takes only text that UTF-8 can carry)
            parts = MultiDict(
                (
                    clean(name),
                    FileStorage(BytesIO(self.raw()), filename=clean(self.text(20)))
                    if self.chance(0.6)
                    else clean(value),
                )
                for name, value in fields or [("email", "")]
            )
            boundary, data = encode_multipart(parts, boundary="fuzz-boundary")
            return data, f"multipart/form-data; boundary={boundary}"
        if kind == "json":
            found = self.json_value()
            if self.chance(0.7):
                found = dict(fields) | {self.name(): self.json_value(1)}
            return json.dumps(found).encode("utf-8", "surrogatepass"), "application/json"
        if kind == "deep json":
            depth = self.random.choice([1000, 100_000])
            deep = self.random.choice(
                [
                    "[" * depth + "]" * depth,
                    '{"email": ' * depth + "1" + "}" * depth,
                    '{"email": "\\ud800@x.test", "password": "\\udfff", "username": "\\ud800"}',
                    '{"email": "a@b.c", "email": 1}',
                    "{" * depth,
                    "NaN",
                    "",
                ]
            )
            return deep.encode(), "application/json"
        return self.raw(300), self.random.choice(CONTENT_TYPES)

    def headers(self, visitor: Visitor) -> dict[str, str]:
        found: dict[str, str] = {}
        if self.chance(0.15):
            found["Host"] = self.random.choice([*HOSTS, self.header()])
        if self.chance(0.4):
            found["Accept"] = self.random.choice([*ACCEPTS, self.header()])
        if self.chance(0.6):  # the passkey ceremonies' JSON endpoints read it from here
            found["X-CSRFToken"] = visitor.token
        if visitor.app_token and self.chance(0.8):
            found["X-Session-Token"] = visitor.app_token
        elif self.chance(0.05):
            found["X-Session-Token"] = self.header()
        if self.chance(0.1):
            found["X-Forwarded-For"] = self.header()
        if self.chance(0.1):
            found["User-Agent"] = self.header()
        cookies = [visitor.cookie]
        for _ in range(self.random.choice([0, 0, 1, 3])):
            name = self.random.choice([*COOKIE_NAMES, self.header()[:10]])
            cookies.insert(self.random.randrange(len(cookies) + 1), f"{name}={self.header()}")
        found["Cookie"] = "; ".join(cookies)
        return found


def utf8(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Encoded as a browser would; lone surrogates become the bytes no decoder accepts."""
    return [(encoded(name), encoded(value)) for name, value in pairs]


def encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def clean(text: str) -> str:
    """``text`` without lone surrogates, for encoders that refuse them."""
    return text.encode("utf-8", "replace").decode()


def percent_encoded(pairs: list[tuple[bytes, bytes]]) -> str:
    return "&".join(f"{quote_from_bytes(k)}={quote_from_bytes(v)}" for k, v in pairs)


def _mfa_accounts(user: Any) -> bool:
    return str(user.username).startswith("mfa")


@pytest.fixture
def fuzz_app(
    make_app: Any, oidc: OidcProvider, github: GitHubLikeProvider, saml_idp: SamlIdp
) -> Iterator[Flask]:
    """The demo with every rate limit and lockout raised out of the way (the fuzzer must reach
    the forms, not a 429), its mail caught in a list rather than sent over SMTP, and social
    login's providers and SAML's IdPs (real ones: tests/social_providers.py, saml_idp.py)."""
    limits = {
        key: "1000000 per minute"
        for key in DEFAULTS
        if key.startswith("GATEHOUSE_") and key.endswith(("_LIMIT", "_LIMITS"))
    }
    app: Flask = make_app(
        **limits,
        GATEHOUSE_MFA_REQUIRED=_mfa_accounts,
        GATEHOUSE_OIDC_PROVIDERS=providers(oidc, github),
        GATEHOUSE_SAML_PROVIDERS=saml_providers(saml_idp),
    )
    with captured_mail(app):
        yield app


@pytest.fixture
def visitors(fuzz_app: Flask, user_factory: Any) -> Visitors:
    return Visitors(fuzz_app, user_factory)


def send(app: Flask, path: str, **request: Any) -> None:
    """Run one request through the app as a WSGI server would, and check its status.

    Not through the test client: after the app answers, the client parses the Host header
    itself (for its cookie jar), and fails on the hosts the app must survive.
    """
    builder = EnvironBuilder(app, path, environ_base={"REMOTE_ADDR": "127.0.0.1"}, **request)
    case = f"{request.get('method', 'GET')} {path} {request}"[:2000]
    try:
        body, status, _ = run_wsgi_app(app, builder.get_environ(), buffered=True)
    except BaseException as error:
        error.add_note(f"fuzzed request: {case}")
        raise
    finally:
        builder.close()
    assert int(status.split()[0]) < 500, f"{status} for {case}: {b''.join(body)[:300]!r}"


def rules_with(app: Flask, method: str) -> list[Rule]:
    return [rule for rule in app.url_map.iter_rules() if method in (rule.methods or ())]


def kinds_for(rule: Rule) -> tuple[str, ...]:
    """The visitors a route gets: app clients only for the JSON API's routes."""
    return Visitors.API_KINDS if rule.rule.startswith("/api/") else Visitors.KINDS


#: The bodies an API route gets: its guard refuses every body that is not JSON before
#: anything reads it (415), so one form body and one of raw bytes stand for the other kinds.
API_BODY_KINDS = ["form", "json", "deep json", "raw bytes"]


def bodies_for(rule: Rule) -> list[str]:
    return API_BODY_KINDS if rule.rule.startswith("/api/") else BODY_KINDS


def test_every_endpoint_that_acts_answers_every_body_below_500(
    fuzz_app: Flask, visitors: Visitors
) -> None:
    rules = [
        (rule, method)
        for method in ("POST", "PATCH", "DELETE")
        for rule in rules_with(fuzz_app, method)
    ]
    assert len(rules) >= 16  # Gatehouse's forms, and whatever the host adds
    fuzz = Fuzzer(SEED)
    url_map = fuzz_app.url_map.bind("localhost")
    for _ in range(ROUNDS):
        for rule, method in rules:
            for kind in kinds_for(rule):
                for body_kind in bodies_for(rule):
                    visitor = visitors[kind]
                    path = url_map.build(rule.endpoint, fuzz.path_values(rule))
                    if fuzz.chance(0.2):
                        path += "?" + fuzz.query()
                    data, content_type = fuzz.body(body_kind, visitor.token)
                    if fuzz.chance(0.15):
                        content_type = fuzz.random.choice(CONTENT_TYPES)
                    overrides = {}
                    if fuzz.chance(0.05):
                        lengths = ["-1", "abc", "99999999", "0", " 1"]
                        overrides["CONTENT_LENGTH"] = fuzz.random.choice(lengths)
                    headers = fuzz.headers(visitor)
                    send(
                        fuzz_app,
                        path,
                        method=method,
                        data=data,
                        content_type=content_type,
                        headers=headers,
                        environ_overrides=overrides,
                    )
                    visitor.stale |= acted_as(visitor, data, headers)


def acted_as(visitor: Visitor, data: bytes, headers: dict[str, str]) -> bool:
    """Whether a request carried the visitor's real credentials, and so may have signed
    them out or finished their sign-in."""
    if visitor.app_token:
        return headers.get("X-Session-Token") == visitor.app_token
    token = visitor.token
    return token.encode() in data or headers.get("X-CSRFToken") == token


def test_every_get_endpoint_answers_every_query_string_below_500(
    fuzz_app: Flask, visitors: Visitors
) -> None:
    fuzz = Fuzzer(SEED)
    url_map = fuzz_app.url_map.bind("localhost")
    for _ in range(ROUNDS):
        for rule in rules_with(fuzz_app, "GET"):
            for kind in kinds_for(rule):
                for _ in range(3):
                    visitor = visitors[kind]
                    path = url_map.build(rule.endpoint, fuzz.path_values(rule))
                    send(fuzz_app, f"{path}?{fuzz.query()}", headers=fuzz.headers(visitor))
