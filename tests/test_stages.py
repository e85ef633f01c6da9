"""Sign-in as stages: an operator's "change your password at the next sign-in" holds the
sign-in as a pending one (no session) until the new password is chosen in the same browser."""

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, Account, csrf_token, login, session_cookie
from tests.smtp import Mailbox

NEW_PASSWORD = "a brand new passphrase for the blog"


@pytest.fixture
def temporary(app: Flask, user: Account) -> Account:
    """``user`` after an operator set a temporary password (the old one, here)."""
    result = app.test_cli_runner().invoke(
        args=["gatehouse", "set-password", user.email, "--temporary", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    assert "must be changed at the next sign-in" in result.output
    return user


def choose(client: FlaskClient, password: str = NEW_PASSWORD) -> Any:
    form = {"csrf_token": csrf_token(client.get("/login/new-password")), "password": password}
    return client.post("/login/new-password", data=form)


def test_the_right_password_leads_to_the_stage_and_opens_no_session(
    client: FlaskClient, temporary: Account
) -> None:
    response = login(client, temporary.email, next="/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login/new-password"
    assert session_cookie(client) is None
    assert client.get("/blogs").status_code == 302  # still signed out
    page = client.get("/login/new-password")
    assert page.status_code == 200
    assert f"<strong>{temporary.email}</strong>" in page.text


def test_a_new_password_finishes_the_sign_in_where_it_was_going(
    client: FlaskClient, temporary: Account, mailbox: Mailbox
) -> None:
    login(client, temporary.email, next="/account")
    done = choose(client)
    assert done.status_code == 302
    assert done.headers["Location"] == "/account"
    assert "Hi alice" in client.get("/blogs").text
    assert "password was changed" in mailbox.wait_for(1)[0]["Subject"].lower()

    other = client.application.test_client()
    assert login(other, temporary.email, PASSWORD).status_code == 400
    assert login(other, temporary.email, NEW_PASSWORD).headers["Location"] == "/blogs"


def test_the_stage_checks_the_password_policy(client: FlaskClient, temporary: Account) -> None:
    login(client, temporary.email)
    refused = choose(client, "short")
    assert refused.status_code == 400
    assert "Use at least 15 characters." in refused.text
    assert session_cookie(client) is None


def test_the_pending_sign_in_is_bound_to_its_browser(
    app: Flask, client: FlaskClient, temporary: Account
) -> None:
    login(client, temporary.email)
    stranger = app.test_client()
    page = stranger.get("/login/new-password")
    assert page.status_code == 302
    assert page.headers["Location"] == "/login"


def test_the_pending_sign_in_expires_after_five_minutes(
    client: FlaskClient, temporary: Account
) -> None:
    with time_machine.travel("2026-11-29T12:00:00Z", tick=False) as traveller:
        login(client, temporary.email)
        token = csrf_token(client.get("/login/new-password"))
        traveller.shift(timedelta(minutes=5, seconds=1))
        late = client.post(
            "/login/new-password", data={"csrf_token": token, "password": NEW_PASSWORD}
        )
    assert late.status_code == 302
    assert late.headers["Location"] == "/login"
    assert session_cookie(client) is None


def test_the_pending_sign_in_is_single_use(
    app: Flask, client: FlaskClient, temporary: Account
) -> None:
    login(client, temporary.email)
    replay = app.test_client()
    replay.set_cookie(
        "__Host-gatehouse_pending_login",
        client.get_cookie("__Host-gatehouse_pending_login").value,
    )
    token = csrf_token(replay.get("/login/new-password"))
    assert choose(client).headers["Location"] == "/blogs"
    again = replay.post("/login/new-password", data={"csrf_token": token, "password": PASSWORD})
    assert again.headers["Location"] == "/login"
    assert session_cookie(replay) is None


def test_without_a_pending_sign_in_the_page_sends_to_login(client: FlaskClient) -> None:
    assert client.get("/login/new-password").headers["Location"] == "/login"


@pytest.mark.parametrize("value", [True, ["x"], {"x": "y"}, 7])
def test_the_stage_refuses_json_of_the_wrong_type(
    client: FlaskClient, temporary: Account, value: Any
) -> None:
    login(client, temporary.email)
    token = csrf_token(client.get("/login/new-password"))
    response = client.post("/login/new-password", json={"csrf_token": token, "password": value})
    assert response.status_code == 400
    assert response.is_json
    assert session_cookie(client) is None
