"""Signing up through POST /register, attacked the way a browser or a script would."""

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from html import unescape
from html.parser import HTMLParser
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, Request, build_opener

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from blog import db
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from flask_gatehouse import User
from tests.conftest import PASSWORD, csrf_token, login, user_row
from tests.smtp import Mailbox, link_path

GOOD = {"email": "bob@example.com", "username": "bob", "password": PASSWORD}


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "input" and named.get("name"):
            self.inputs.setdefault(str(named["name"]), named)


def inputs(response: TestResponse) -> dict[str, dict[str, str | None]]:
    """The attributes of each named <input> on the page."""
    parser = _Inputs()
    parser.feed(response.text)
    return parser.inputs


def text_of(response: TestResponse, element_id: str) -> str:
    match = re.search(rf'id="{re.escape(element_id)}"[^>]*>(.*?)</', response.text, re.S)
    assert match, f"no element #{element_id}"
    return unescape(match.group(1)).strip()


def field_error(response: TestResponse, name: str) -> str:
    """The error message tied to the input ``name`` by aria-describedby ('' when valid)."""
    attrs = inputs(response)[name]
    if attrs.get("aria-invalid") != "true":
        return ""
    described = (attrs.get("aria-describedby") or "").split()
    errors = [text_of(response, i) for i in described if i.endswith("-error")]
    assert errors, f"{name} is invalid but no error is tied to it"
    return " ".join(errors)


def flashes(html: str) -> list[str]:
    return [unescape(m) for m in re.findall(r'<p class="flash[^"]*">(.*?)</p>', html)]


def sign_up(client: FlaskClient, **fields: Any) -> TestResponse:
    form = {"csrf_token": csrf_token(client.get("/register")), **GOOD, **fields}
    return client.post("/register", data=form)


def count_users(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(User)) or 0


def test_sign_up_redirects_to_login_with_a_message(app: Flask, client: FlaskClient) -> None:
    response = sign_up(client, email="Alice@EXAMPLE.com", username="alice")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert "Check your inbox: we sent you a link to confirm your address." in flashes(
        client.get("/login").text
    )
    row = user_row(app, "alice@example.com")
    assert row is not None
    assert row.username == "alice"
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash


def test_new_account_can_sign_in_once_confirmed(client: FlaskClient, mailbox: Mailbox) -> None:
    sign_up(client)
    (message,) = mailbox.wait_for(1)
    confirm = link_path(message, "/confirm/")
    client.post(confirm, data={"csrf_token": csrf_token(client.get(confirm))})
    form = {"csrf_token": csrf_token(client.get("/login")), **GOOD}
    assert client.post("/login", data=form).headers["Location"] == "/blogs"
    assert "Hi bob" in client.get("/blogs").text


@pytest.mark.parametrize(
    ("fields", "invalid", "message"),
    [
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"email": ""}, "email", "This field is required."),
        ({"username": "bo\u200bb"}, "username", "invisible or control characters"),
        ({"username": "   "}, "username", "Enter a username."),
        ({"password": "too short"}, "password", "Use at least 15 characters."),
    ],
)
def test_invalid_field_is_marked_and_the_others_are_kept(
    app: Flask, client: FlaskClient, fields: dict[str, str], invalid: str, message: str
) -> None:
    response = sign_up(client, **fields)
    assert response.status_code == 400
    assert message in field_error(response, invalid)
    error_id = f"{invalid}-error"
    assert error_id in (inputs(response)[invalid].get("aria-describedby") or "").split()
    for name in ("email", "username"):
        if name != invalid:
            assert field_error(response, name) == ""
            assert inputs(response)[name]["value"] == GOOD[name]
    assert count_users(app) == 0


@pytest.mark.parametrize("fields", [{"email": "nope"}, {"password": "Bob Bob Bob Bob Bob Bob"}])
def test_password_is_never_echoed_back(client: FlaskClient, fields: dict[str, str]) -> None:
    response = sign_up(client, **fields)
    assert response.status_code == 400
    password = fields.get("password", PASSWORD)
    assert password not in response.text
    assert inputs(response)["password"].get("value") in (None, "")


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short one", "Use at least 15 characters."),
        ("q1w2e3r4t5y6u7i8o9p0", "This password is too common"),
        ("alice.smith@example.com", "Don't build your password from your email address"),
        ("AliceSmith2024!!", "Don't build your password"),
        ("alicesmith alicesmith", "Don't build your password"),
        ("The Blog The Blog The Blog", "Don't build your password"),
    ],
)
def test_password_policy(client: FlaskClient, password: str, message: str) -> None:
    response = sign_up(
        client, email="alice.smith@example.com", username="alicesmith", password=password
    )
    assert response.status_code == 400
    assert message in field_error(response, "password")


@pytest.mark.parametrize(
    "password", ["123456789012345", "aaaaaaaaaaaaaaa", "qwertyuiopasdfgh", "x" * 1024]
)
def test_guessable_passwords_refused(app: Flask, client: FlaskClient, password: str) -> None:
    response = sign_up(client, password=password)
    assert response.status_code == 400
    assert field_error(response, "password") == (
        "This password is easy to guess; avoid sequences (12345), repeats (aaaa) and keyboard "
        "patterns (qwerty), and try a few unrelated words."
    )
    assert count_users(app) == 0


@pytest.mark.parametrize("password", ["password1", "PASSWORD1", "iloveyou", "sunshine"])
def test_common_passwords_refused_at_the_lowest_minimum(make_app: Any, password: str) -> None:
    client = make_app(GATEHOUSE_PASSWORD_MIN_LENGTH=8).test_client()
    response = sign_up(client, password=password)
    assert response.status_code == 400
    assert field_error(response, "password") == "This password is too common; choose another."


def test_lowest_minimum_accepts_an_uncommon_eight_characters(make_app: Any) -> None:
    client = make_app(GATEHOUSE_PASSWORD_MIN_LENGTH=8).test_client()
    assert sign_up(client, password="vq7#Lm2x").status_code == 302


def test_the_rules_are_explained_next_to_the_password(client: FlaskClient, make_app: Any) -> None:
    page = client.get("/register")
    help_id = "password-help"
    assert help_id in (inputs(page)["password"].get("aria-describedby") or "").split()
    rules = text_of(page, help_id)
    assert "Use 15 to 1,024 characters" in rules
    assert "Common passwords" in rules
    assert "keyboard patterns (qwerty)" in rules
    assert "email address, username" in rules
    relaxed = make_app(GATEHOUSE_PASSWORD_MIN_LENGTH=8).test_client().get("/register")
    assert "Use 8 to 1,024 characters" in text_of(relaxed, help_id)


@pytest.mark.parametrize(
    "username",
    [
        "bo\u200bb",  # zero-width space
        "bo\u202eb",  # right-to-left override
        "bo\u2066b",  # left-to-right isolate
        "bo\x07b",  # bell
        "bo\x1bb",  # escape
        "bo\x00b",  # NUL
        "bo\tb",
        "bo\nb",
    ],
)
def test_invisible_and_control_characters_in_username_refused(
    app: Flask, client: FlaskClient, username: str
) -> None:
    response = sign_up(client, username=username)
    assert response.status_code == 400
    assert "Usernames can" in field_error(response, "username")
    assert count_users(app) == 0


def test_username_is_nfkc_normalised(app: Flask, client: FlaskClient) -> None:
    assert sign_up(client, username="\uff42\uff4f\uff42").status_code == 302  # fullwidth "bob"
    assert user_row(app, "bob@example.com").username == "bob"


@pytest.mark.parametrize(
    ("fields", "invalid", "message"),
    [
        ({"email": "bob\x00@example.com"}, "email", "Enter a valid email address."),
        ({"email": "bob@exa\x00mple.com"}, "email", "Enter a valid email address."),
        ({"password": PASSWORD + "\x00"}, "password", "NUL"),
        ({"email": "a" * 249 + "@b.com"}, "email", "at most 254 characters"),
        ({"email": "a" * 65 + "@example.com"}, "email", "before the @ can be at most 64"),
        ({"email": "\u00fc" * 33 + "@example.com"}, "email", "before the @ can be at most 64"),
        ({"username": "b" * 65}, "username", "at most 64 characters"),
        ({"password": "correct horse " * 74}, "password", "Use at most 1,024 characters."),
    ],
)
def test_nul_bytes_and_over_long_fields_are_form_errors(
    app: Flask, client: FlaskClient, fields: dict[str, str], invalid: str, message: str
) -> None:
    response = sign_up(client, **fields)
    assert response.status_code == 400
    assert message in field_error(response, invalid)
    assert count_users(app) == 0


def test_longest_deliverable_local_part_is_accepted(app: Flask, client: FlaskClient) -> None:
    email = "a" * 64 + "@example.com"
    assert sign_up(client, email=email).status_code == 302
    assert user_row(app, email) is not None


#: "abc@example.com" as a CJK input method's full-width mode types it, the @ and dot too.
FULL_WIDTH = "\uff41\uff42\uff43@example.com"
ALL_FULL_WIDTH = (
    "\uff41\uff42\uff43\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d"
)


@pytest.mark.parametrize(
    ("first", "second"), [(FULL_WIDTH, "abc@example.com"), ("abc@example.com", ALL_FULL_WIDTH)]
)
def test_full_width_address_is_the_same_account(
    app: Flask, mailbox: Mailbox, first: str, second: str
) -> None:
    """Compatibility forms are NFKC-normalised: one account, mailed at its plain address,
    and any spelling signs in."""
    owner = app.test_client()
    assert sign_up(owner, email=first, username="abc").status_code == 302
    assert sign_up(app.test_client(), email=second, username="other").status_code == 302
    assert count_users(app) == 1
    assert user_row(app, "abc@example.com").username == "abc"
    messages = mailbox.wait_for(2)  # the confirmation link, then "someone tried to sign up"
    assert [str(message["To"]) for message in messages] == ["abc@example.com"] * 2
    confirm = link_path(messages[0], "/confirm/")
    owner.post(confirm, data={"csrf_token": csrf_token(owner.get(confirm))})
    for typed in (FULL_WIDTH, ALL_FULL_WIDTH, "ABC@example.com"):
        assert login(app.test_client(), typed).headers["Location"] == "/blogs"


def test_longest_allowed_password_is_accepted(client: FlaskClient) -> None:
    password = ("correct horse " * 74)[:1024]
    assert sign_up(client, password=password).status_code == 302


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ({"username": "b" * (1024 * 1024 + 1)}, None),
        (b"x" * (1024 * 1024 + 1), "application/octet-stream"),
    ],
)
def test_body_over_one_mebibyte_is_413(
    app: Flask, client: FlaskClient, data: Any, content_type: str | None
) -> None:
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    token = csrf_token(client.get("/register"))
    if isinstance(data, dict):
        data = {"csrf_token": token, **GOOD, **data}
    response = client.post("/register", data=data, content_type=content_type)
    assert response.status_code == 413
    assert "<h1>Too large</h1>" in response.text
    for leak in ("Traceback", "Werkzeug", "RequestEntityTooLarge"):
        assert leak not in response.text
    assert count_users(app) == 0


def _json_sign_up(client: FlaskClient, body: Any) -> TestResponse:
    token = csrf_token(client.get("/register"))
    if isinstance(body, dict):
        body = {"csrf_token": token, **body}
    return client.post(
        "/register",
        data=json.dumps(body),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )


def test_json_sign_up_with_strings_works(app: Flask, client: FlaskClient) -> None:
    assert _json_sign_up(client, GOOD).status_code == 302
    assert user_row(app, "bob@example.com") is not None


@pytest.mark.parametrize("field", ["email", "username", "password"])
@pytest.mark.parametrize("value", [["bob@example.com"], [], {"$ne": ""}, 5, 1.5, None])
def test_json_values_of_the_wrong_type_are_400(
    app: Flask, client: FlaskClient, field: str, value: Any
) -> None:
    response = _json_sign_up(client, {**GOOD, field: value})
    assert response.status_code == 400
    assert response.is_json
    assert response.json["error"]["code"] == 400
    assert count_users(app) == 0


@pytest.mark.parametrize("field", ["email", "username", "password"])
@pytest.mark.parametrize("value", [True, False])
def test_json_booleans_in_text_fields_are_400(
    app: Flask, client: FlaskClient, field: str, value: bool
) -> None:
    """Booleans are let through for check boxes; in a text field they must not crash."""
    response = _json_sign_up(client, {**GOOD, field: value})
    assert response.status_code == 400
    assert count_users(app) == 0


@pytest.mark.parametrize("body", [[GOOD], ["bob@example.com"], "bob@example.com", 5, None, True])
def test_json_body_that_is_not_an_object_is_400(client: FlaskClient, body: Any) -> None:
    response = _json_sign_up(client, body)
    assert response.status_code == 400
    assert response.json["error"]["code"] == 400


@pytest.mark.parametrize("raw", ["{bad json", '{"email": ', "\x00", '{"email": "\\ud800"'])
def test_malformed_json_is_400(client: FlaskClient, raw: str) -> None:
    token = csrf_token(client.get("/register"))
    response = client.post(
        "/register", data=raw, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == 400


def test_duplicated_form_keys_do_not_break_sign_up(app: Flask, client: FlaskClient) -> None:
    token = csrf_token(client.get("/register"))
    form = MultiDict(
        [
            ("csrf_token", token),
            ("csrf_token", "forged"),
            ("email", "bob@example.com"),
            ("email", "mallory@example.com"),
            ("username", "bob"),
            ("username", "mallory"),
            ("password", PASSWORD),
            ("password", "x"),
        ]
    )
    response = client.post("/register", data=form)
    assert response.status_code < 500
    assert user_row(app, "mallory@example.com") is None


@pytest.mark.parametrize(
    ("token", "message"),
    [(None, "The CSRF token is missing."), ("forged", "The CSRF token is invalid.")],
)
def test_missing_or_wrong_csrf_token_creates_nothing(
    app: Flask, client: FlaskClient, token: str | None, message: str
) -> None:
    client.get("/register")
    form = dict(GOOD) if token is None else {**GOOD, "csrf_token": token}
    response = client.post("/register", data=form)
    assert response.status_code == 400
    assert message in response.text
    assert count_users(app) == 0


def test_csrf_token_of_another_browser_is_refused(app: Flask) -> None:
    attacker, victim = app.test_client(), app.test_client()
    token = csrf_token(attacker.get("/register"))
    victim.get("/register")
    response = victim.post("/register", data={**GOOD, "csrf_token": token})
    assert response.status_code == 400
    assert count_users(app) == 0


def _answer(app: Flask, email: str) -> tuple[int, str | None, list[str], int]:
    """What a stranger can observe of one sign-up, plus how many hashes it computed."""
    hashes = []
    original = PasswordHasher.hash

    def counting_hash(self: PasswordHasher, *args: Any, **kwargs: Any) -> str:
        hashes.append(1)
        return original(self, *args, **kwargs)

    client = app.test_client()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PasswordHasher, "hash", counting_hash)
        response = sign_up(
            client, email=email, username="someone", password="a different passphrase"
        )
    return (
        response.status_code,
        response.headers.get("Location"),
        flashes(client.get("/login").text),
        len(hashes),
    )


@pytest.mark.parametrize("taken", ["alice@example.com", "ALICE@Example.COM", " alice@example.com "])
def test_taken_email_looks_like_a_new_sign_up(app: Flask, user: Any, taken: str) -> None:
    """Same answer and same work (one hash), so neither page nor timing tells them apart."""
    before = user_row(app, user.email)
    fresh = _answer(app, "newcomer@example.com")
    assert fresh[3] == 1
    assert _answer(app, taken) == fresh
    after = user_row(app, user.email)
    assert after.id == before.id
    assert after.username == "alice"
    assert after.password_hash == before.password_hash
    assert count_users(app) == 2  # alice and the newcomer


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _sign_up_over_http(base_url: str, email: str, barrier: threading.Barrier) -> int:
    # The cookies are Secure; the local test server speaks plain HTTP.
    jar = CookieJar(DefaultCookiePolicy(secure_protocols=("http", "https")))
    opener = build_opener(HTTPCookieProcessor(jar), _NoRedirect())
    with opener.open(f"{base_url}/register", timeout=30) as page:
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.read().decode())
    assert token
    body = urlencode({**GOOD, "email": email, "csrf_token": token.group(1)}).encode()
    barrier.wait(timeout=30)
    try:
        post = Request(f"{base_url}/register", data=body)  # noqa: S310 - the local test server
        with opener.open(post, timeout=30) as response:
            return int(response.status)
    except HTTPError as answer:
        return answer.code


def test_parallel_sign_ups_with_one_email_make_one_account(app: Flask, live_server: str) -> None:
    threads = 8
    # This test is about the database's uniqueness, not the per-address sign-up limit.
    app.config["GATEHOUSE_SIGNUP_EMAIL_LIMIT"] = "100 per hour"
    barrier = threading.Barrier(threads)
    with ThreadPoolExecutor(threads) as pool:
        futures = [
            pool.submit(_sign_up_over_http, live_server, "Race@Example.com", barrier)
            for _ in range(threads)
        ]
        statuses = [future.result() for future in futures]
    assert statuses == [302] * threads
    assert count_users(app) == 1
    assert user_row(app, "race@example.com") is not None


def test_signed_in_user_visiting_register_goes_to_blogs(logged_in: FlaskClient) -> None:
    response = logged_in.get("/register")
    assert response.status_code == 302
    assert response.headers["Location"] == "/blogs"
