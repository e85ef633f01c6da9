"""Re-authentication: password, email, deletion and data pages need a password entered in the
last 15 minutes; otherwise the user types it again and comes back."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, csrf_token, login, session_cookie

WRONG = "not the password, but long enough"
SENSITIVE = ["/account/password", "/account/email", "/account/delete", "/account/data"]


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        yield traveller


@pytest.fixture
def stale(clock: Any, logged_in: FlaskClient) -> FlaskClient:
    """Signed in 16 minutes ago: the session lives on (30 minutes idle), the trust does not."""
    clock.shift(timedelta(minutes=16))
    return logged_in


def reauthenticate(client: FlaskClient, password: str = PASSWORD, next: str = "/account/password"):
    url = f"/reauthenticate?next={quote(next, safe='')}"
    return client.post(url, data={"csrf_token": csrf_token(client.get(url)), "password": password})


@pytest.mark.parametrize("url", SENSITIVE)
def test_a_fresh_login_goes_straight_through(logged_in: FlaskClient, url: str) -> None:
    assert logged_in.get(url).status_code == 200


@pytest.mark.parametrize("url", SENSITIVE)
def test_an_old_login_must_enter_the_password_again(stale: FlaskClient, url: str) -> None:
    response = stale.get(url)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/reauthenticate?next={url}"


def test_after_the_password_the_user_comes_back(stale: FlaskClient) -> None:
    page = stale.get("/reauthenticate?next=/account/password")
    assert page.status_code == 200
    assert "enter your password again" in page.text
    response = reauthenticate(stale)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/password"
    assert stale.get("/account/password").status_code == 200


def test_without_next_it_lands_on_the_account_page(stale: FlaskClient) -> None:
    url = "/reauthenticate"
    response = stale.post(
        url, data={"csrf_token": csrf_token(stale.get(url)), "password": PASSWORD}
    )
    assert response.headers["Location"] == "/account"


def test_a_refused_post_comes_back_to_its_form_page(stale: FlaskClient) -> None:
    """A POST cannot be replayed after the detour, so nothing of it happens."""
    token = csrf_token(stale.get("/account"))
    response = stale.post(
        "/account/email",
        data={"csrf_token": token, "email": "new@example.com", "current_password": PASSWORD},
    )
    assert response.headers["Location"] == "/reauthenticate?next=/account/email"
    assert "new@example.com" not in stale.get("/account").text


def test_wrong_password_is_refused_and_recorded(stale: FlaskClient) -> None:
    response = reauthenticate(stale, WRONG)
    assert response.status_code == 400
    assert "Incorrect password." in response.text
    assert stale.get("/account/password").status_code == 302
    assert "(wrong password)" in stale.get("/account").text


def test_reauthentication_rotates_the_session_cookie(app: Flask, stale: FlaskClient) -> None:
    before = session_cookie(stale)
    reauthenticate(stale)
    after = session_cookie(stale)
    assert after
    assert after != before
    old_copy = app.test_client()
    old_copy.set_cookie("__Host-gatehouse_session", before)
    assert old_copy.get("/blogs").status_code == 302
    assert stale.get("/account/data").status_code == 200


def test_guessing_is_locked_after_five_failures(stale: FlaskClient) -> None:
    for _ in range(5):
        assert reauthenticate(stale, WRONG).status_code == 400
    locked = reauthenticate(stale, PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert "Too many failed attempts." in locked.text
    assert stale.get("/account/password").status_code == 302


def test_json_clients_get_a_401(stale: FlaskClient) -> None:
    response = stale.get("/account/data", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert "password again" in response.json["error"]["message"]
    posted = stale.post("/account/delete", json={"password": PASSWORD})
    assert posted.status_code == 401


@pytest.mark.parametrize(
    "target", ["//evil.example", "/\\evil.example", "https://evil.example", "/\t/evil.example"]
)
def test_next_cannot_leave_the_site(stale: FlaskClient, target: str) -> None:
    assert reauthenticate(stale, next=target).headers["Location"] == "/account"


def test_signed_out_users_are_sent_to_log_in(client: FlaskClient) -> None:
    assert client.get("/reauthenticate").headers["Location"].startswith("/login?next=")
    assert client.get("/account/data").headers["Location"] == "/login?next=/account/data"


def test_without_csrf_token_nothing_changes(stale: FlaskClient) -> None:
    before = session_cookie(stale)
    stale.get("/reauthenticate")
    assert stale.post("/reauthenticate", data={"password": PASSWORD}).status_code == 400
    assert session_cookie(stale) == before
    assert stale.get("/account/password").status_code == 302


def test_a_fresh_login_elsewhere_does_not_vouch_for_this_browser(
    app: Flask, stale: FlaskClient, user: Any
) -> None:
    other = app.test_client()
    login(other, user.email)
    assert other.get("/account/password").status_code == 200
    assert stale.get("/account/password").status_code == 302
