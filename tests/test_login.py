"""Logging in through /login: success, generic failure, equal work, `next`, CSRF."""

import re

import pytest
from argon2 import PasswordHasher
from blog import db
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from tests.conftest import PASSWORD, csrf_token, login, session_cookie, user_row


def flash_and_errors(html: str) -> str:
    """The page without its per-request CSRF token, for comparing two answers."""
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", html)


def test_login_lands_on_blogs_and_greets(client: FlaskClient, user) -> None:
    response = login(client, user.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/blogs"
    page = client.get("/blogs")
    assert "Welcome to the Blog" in page.text
    assert "Hi alice" in page.text


def test_email_is_matched_case_insensitively(client: FlaskClient, user) -> None:
    assert login(client, "  ALICE@Example.COM ").status_code == 302


def test_wrong_password_and_unknown_email_answer_the_same(client: FlaskClient, user) -> None:
    wrong = login(client, user.email, "not the right password at all")
    unknown = login(client, "nobody@example.com", "not the right password at all")
    assert wrong.status_code == unknown.status_code == 400
    assert "Incorrect email or password." in wrong.text
    assert flash_and_errors(wrong.text).replace(user.email, "X") == flash_and_errors(
        unknown.text
    ).replace("nobody@example.com", "X")
    assert session_cookie(client) is None


@pytest.mark.parametrize("email", ["nobody@example.com", "not-an-email", "alice@example.com"])
def test_every_failure_costs_one_argon2_verify(
    client: FlaskClient, user, monkeypatch: pytest.MonkeyPatch, email: str
) -> None:
    """Unknown, malformed and real addresses all run exactly one hash verification."""
    calls = []
    original = PasswordHasher.verify

    def counting_verify(self, hash, password):
        calls.append(hash)
        return original(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    login(client, email, "wrong password, long enough to pass")
    assert len(calls) == 1


def test_user_without_usable_password_cannot_log_in(app: Flask, client: FlaskClient, user) -> None:
    with app.app_context():
        row = user_row(app, user.email)
        db.session.merge(row).password_hash = None
        db.session.commit()
    response = login(client, user.email, "")
    assert response.status_code == 400
    assert login(client, user.email, PASSWORD).status_code == 400


def test_deactivated_user_gets_the_generic_message(app: Flask, client: FlaskClient, user) -> None:
    with app.app_context():
        db.session.merge(user_row(app, user.email)).active = False
        db.session.commit()
    response = login(client, user.email)
    assert response.status_code == 400
    assert "Incorrect email or password." in response.text


def test_login_keeps_the_email_but_not_the_password(client: FlaskClient, user) -> None:
    response = login(client, user.email, "a wrong password typed here")
    assert f'value="{user.email}"' in response.text
    assert "a wrong password typed here" not in response.text


def test_hash_is_upgraded_when_parameters_change(make_app, user) -> None:
    stronger = make_app(GATEHOUSE_ARGON2_MEMORY_COST=16)
    assert login(stronger.test_client(), user.email).status_code == 302
    assert "m=16," in user_row(stronger, user.email).password_hash


def test_werkzeug_hashes_verify_and_upgrade(app: Flask, client: FlaskClient, user) -> None:
    with app.app_context():
        db.session.merge(user_row(app, user.email)).password_hash = generate_password_hash(
            "tutorial"
        )
        db.session.commit()
    assert login(client, user.email, "tutorial").status_code == 302
    assert user_row(app, user.email).password_hash.startswith("$argon2id$")


def test_missing_csrf_token_is_refused(client: FlaskClient, user) -> None:
    client.get("/login")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "CSRF token is missing" in response.text
    assert session_cookie(client) is None


def test_csrf_token_from_another_browser_is_refused(app: Flask, user) -> None:
    attacker, victim = app.test_client(), app.test_client()
    token = csrf_token(attacker.get("/login"))
    victim.get("/login")
    response = victim.post(
        "/login", data={"csrf_token": token, "email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 400
    assert session_cookie(victim) is None


def test_csrf_token_changes_at_login(client: FlaskClient, user) -> None:
    before = csrf_token(client.get("/login"))
    login(client, user.email)
    after = csrf_token(client.get("/logout"))
    assert before != after


def test_signed_in_user_visiting_login_goes_on(logged_in: FlaskClient) -> None:
    response = logged_in.get("/login?next=/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"


@pytest.mark.parametrize("target", ["/account", "/blogs?page=2", "/account#sessions"])
def test_next_same_origin_path_is_followed(client: FlaskClient, user, target: str) -> None:
    from urllib.parse import quote

    response = login(client, user.email, next=quote(target, safe=""))
    assert response.headers["Location"] == target


OPEN_REDIRECTS = [
    "//evil.com",
    "///evil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "/\t/evil.com",
    "\x00//evil.com",
    " //evil.com",
    "https://evil.com",
    "http:evil.com",
    "javascript:alert(1)",
    "/\r\n/evil.com",
    "evil.com",
    "\\/evil.com",
    "https:/\\evil.com",
    "/" + "a" * 5000,
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_next_pointing_elsewhere_falls_back_to_blogs(
    client: FlaskClient, user, target: str
) -> None:
    from urllib.parse import quote

    response = login(client, user.email, next=quote(target, safe=""))
    assert response.status_code == 302
    assert response.headers["Location"] == "/blogs"


def test_remember_me_is_off_by_default(client: FlaskClient, user) -> None:
    response = login(client, user.email)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if "gatehouse_session" in c)
    assert "Max-Age" not in cookie
    assert "Expires" not in cookie


def test_remember_me_sets_a_30_day_cookie(client: FlaskClient, user) -> None:
    response = login(client, user.email, remember=True)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if "gatehouse_session" in c)
    assert f"Max-Age={30 * 24 * 3600}" in cookie
