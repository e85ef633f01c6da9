"""The account page and changing the password; what every settings form refuses (no CSRF
token, too many submissions)."""

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import PASSWORD, all_mail_sent, csrf_token, login, session_cookie, user_row
from tests.smtp import Mailbox, link_path, text

NEW = "a brand new passphrase for alice"


def submit(client: FlaskClient, url: str, **fields: str) -> TestResponse:
    """Fill in the form on ``url`` and send it, as a browser would."""
    return client.post(url, data={"csrf_token": csrf_token(client.get(url)), **fields})


def signed_in(client: FlaskClient) -> bool:
    return client.get("/blogs").status_code == 200


def test_account_page_gathers_every_setting(logged_in: FlaskClient) -> None:
    page = logged_in.get("/account").text
    for text_shown in ("alice@example.com", "confirmed", "Member since", "Where you're signed in"):
        assert text_shown in page
    for url in ("/account/email", "/account/password", "/account/data", "/account/delete"):
        assert f'href="{url}"' in page


def test_change_password_needs_the_current_one(
    app: Flask, logged_in: FlaskClient, user: Any, mailbox: Mailbox
) -> None:
    response = submit(
        logged_in, "/account/password", current_password="not it, but long enough", password=NEW
    )
    assert response.status_code == 400
    assert "Incorrect password." in response.text
    assert all_mail_sent()
    assert mailbox.messages == []
    assert login(app.test_client(), user.email, PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("new", "problem"),
    [("too short", "Use at least 15 characters."), ("alice@example.com!!", "your email")],
)
def test_new_password_must_pass_the_policy(
    app: Flask, logged_in: FlaskClient, user: Any, new: str, problem: str
) -> None:
    response = submit(logged_in, "/account/password", current_password=PASSWORD, password=new)
    assert response.status_code == 400
    assert problem in response.text
    assert login(app.test_client(), user.email, PASSWORD).status_code == 302


def test_change_password_ends_every_other_session_and_keeps_this_one(
    app: Flask, client: FlaskClient, user: Any, mailbox: Mailbox
) -> None:
    phone = app.test_client()
    login(phone, user.email, remember=True)
    login(client, user.email)
    before = session_cookie(client)
    response = submit(client, "/account/password", current_password=PASSWORD, password=NEW)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    assert "every other device signed out" in client.get("/account").text
    assert session_cookie(client) not in (None, before)
    assert signed_in(client)
    assert not signed_in(phone)
    thief = app.test_client()
    thief.set_cookie("__Host-gatehouse_session", before)
    assert not signed_in(thief)

    assert login(app.test_client(), user.email, PASSWORD).status_code == 400
    assert login(app.test_client(), user.email, NEW).status_code == 302
    assert all_mail_sent()
    (notice,) = [m for m in mailbox.to(user.email) if "password was changed" in m["Subject"]]
    assert link_path(notice, "/forgot") == "/forgot"
    assert "every signed-in browser" in text(notice)


def test_the_session_started_after_a_change_is_recent(app: Flask, logged_in: FlaskClient) -> None:
    submit(logged_in, "/account/password", current_password=PASSWORD, password=NEW)
    assert logged_in.get("/account/email").status_code == 200


SENSITIVE_POSTS = [
    ("/reauthenticate", {"password": PASSWORD}),
    ("/account/password", {"current_password": PASSWORD, "password": NEW}),
    ("/account/email", {"email": "new@example.com", "current_password": PASSWORD}),
    ("/account/delete", {"password": PASSWORD}),
]


@pytest.mark.parametrize(("url", "fields"), SENSITIVE_POSTS)
def test_without_csrf_token_nothing_changes(
    app: Flask, logged_in: FlaskClient, user: Any, mailbox: Mailbox, url: str, fields: Any
) -> None:
    cookie = session_cookie(logged_in)
    logged_in.get(url)
    response = logged_in.post(url, data=fields)
    assert response.status_code == 400
    assert "CSRF token is missing" in response.text
    assert session_cookie(logged_in) == cookie
    assert signed_in(logged_in)
    assert user_row(app, user.email) is not None
    assert all_mail_sent()
    assert mailbox.messages == []
    assert login(app.test_client(), user.email, PASSWORD).status_code == 302


def test_settings_forms_are_limited_per_account(make_app: Any, user: Any) -> None:
    app = make_app(GATEHOUSE_ACCOUNT_CHANGE_LIMIT="3 per hour")
    client = app.test_client()
    login(client, user.email)
    for _ in range(3):
        wrong = submit(client, "/account/password", current_password="nope", password=NEW)
        assert wrong.status_code == 400
    limited = submit(client, "/account/password", current_password=PASSWORD, password=NEW)
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers
    # Each form has its own counter.
    assert submit(client, "/account/delete", password="nope").status_code == 400
    assert login(app.test_client(), user.email, PASSWORD).status_code == 302


@pytest.mark.parametrize(
    "url", ["/reauthenticate", "/account/password", "/account/email", "/account/delete"]
)
def test_settings_pages_need_no_inline_code_and_are_not_cached(
    logged_in: FlaskClient, url: str
) -> None:
    response = logged_in.get(url)
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    assert not re.search(r"<script|<style|\sstyle\s*=|\son[a-z]+\s*=", response.text, re.I)
