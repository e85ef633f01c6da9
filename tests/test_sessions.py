"""Server-side sessions through HTTP: revocation, timeouts, remember-me, the sessions page."""

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine
from blog import db
from flask import Flask
from flask.testing import FlaskClient

from flask_gatehouse import UserSession
from tests.conftest import csrf_token, login, logout, session_cookie

COOKIE = "__Host-gatehouse_session"
START = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def signed_in(client: FlaskClient) -> bool:
    return client.get("/blogs").status_code == 200


def session_rows(app: Flask) -> list[UserSession]:
    with app.app_context():
        return list(db.session.scalars(sa.select(UserSession)))


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def test_cookie_holds_a_random_token_stored_only_as_its_hash(
    app: Flask, client: FlaskClient, user
) -> None:
    login(client, user.email)
    token = session_cookie(client)
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    (row,) = session_rows(app)
    assert row.token_hash == hashlib.sha256(token.encode()).digest()
    assert token.encode() not in row.token_hash


def test_get_logout_only_asks(logged_in: FlaskClient) -> None:
    page = logged_in.get("/logout")
    assert page.status_code == 200
    assert "<form" in page.text
    assert 'method="post"' in page.text
    assert signed_in(logged_in)


def test_logout_without_csrf_token_changes_nothing(logged_in: FlaskClient) -> None:
    assert logged_in.post("/logout").status_code == 400
    assert signed_in(logged_in)


def test_cookie_copied_before_logout_is_dead_after_it(
    app: Flask, client: FlaskClient, user
) -> None:
    login(client, user.email)
    stolen = session_cookie(client)
    logout(client)
    assert not signed_in(client)
    thief = app.test_client()
    thief.set_cookie(COOKIE, stolen)
    assert not signed_in(thief)
    assert session_rows(app) == []


def test_unknown_or_oversized_token_is_anonymous_and_cleared(app: Flask, client) -> None:
    for value in ["x" * 43, "y" * 100, "\u00e9"]:
        client.set_cookie(COOKIE, value)
        response = client.get("/blogs")
        assert response.status_code == 302
        assert any(c.startswith(f"{COOKIE}=;") for c in response.headers.getlist("Set-Cookie"))


def test_login_replaces_a_planted_token(app: Flask, client: FlaskClient, user) -> None:
    client.set_cookie(COOKIE, "planted-by-attacker")
    login(client, user.email)
    assert session_cookie(client) != "planted-by-attacker"


def test_idle_session_ends_after_30_minutes(clock, app: Flask, client, user) -> None:
    login(client, user.email)
    clock.shift(timedelta(minutes=29))
    assert signed_in(client)
    clock.shift(timedelta(minutes=29))  # activity above reset the idle clock
    assert signed_in(client)
    clock.shift(timedelta(minutes=30, seconds=1))
    assert not signed_in(client)
    assert session_rows(app) == []


def test_active_session_still_ends_after_12_hours(clock, client, user) -> None:
    login(client, user.email)
    for _ in range(12 * 3 - 1):
        clock.shift(timedelta(minutes=20))
        assert signed_in(client)
    clock.shift(timedelta(minutes=20))
    assert not signed_in(client)


def test_remembered_session_survives_idleness_for_30_days(clock, client, user) -> None:
    login(client, user.email, remember=True)
    clock.shift(timedelta(days=29, hours=23))
    assert signed_in(client)
    clock.shift(timedelta(hours=1))
    assert not signed_in(client)


def count_statements(app: Flask, client: FlaskClient, path: str, times: int = 1) -> list[str]:
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        for _ in range(times):
            assert client.get(path).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return statements


def test_page_view_is_one_select_and_last_seen_writes_are_throttled(
    clock, app: Flask, client, user
) -> None:
    login(client, user.email)
    statements = count_statements(app, client, "/blogs", times=5)
    assert len(statements) == 5
    assert all(s.lstrip().upper().startswith("SELECT") for s in statements)
    clock.shift(timedelta(minutes=2))
    statements = count_statements(app, client, "/blogs", times=3)
    assert sum(s.lstrip().upper().startswith("UPDATE") for s in statements) == 1
    (row,) = session_rows(app)
    assert row.last_seen_at == START + timedelta(minutes=2)


def account_rows(client: FlaskClient) -> list[str]:
    return re.findall(
        r"<tr(?: class=\"current\")?>\s*<td[^>]*>(.*?)</td>", client.get("/account").text, re.S
    )


def test_account_page_lists_sessions_and_marks_this_one(app: Flask, user) -> None:
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, user.email)
    phone.environ_base["HTTP_USER_AGENT"] = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
    )
    login(phone, user.email)
    page = laptop.get("/account").text
    sessions_table = page[page.index('<table class="sessions">') : page.index("</table>")]
    assert sessions_table.count("<tr") == 3  # header and two sessions
    assert page.count("this device") == 1
    assert "Mobile Safari on iOS" in page
    assert "127.0.0.1" in page


def test_sign_out_everywhere_else(app: Flask, user) -> None:
    laptop, phone, tablet = app.test_client(), app.test_client(), app.test_client()
    for browser in (laptop, phone, tablet):
        login(browser, user.email)
    token = csrf_token(laptop.get("/account"))
    response = laptop.post("/account/sessions/revoke-others", data={"csrf_token": token})
    assert response.status_code == 302
    assert "Signed out 2 other sessions." in laptop.get("/account").text
    assert signed_in(laptop)
    assert not signed_in(phone)
    assert not signed_in(tablet)


def test_sign_out_one_session(app: Flask, user) -> None:
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, user.email)
    login(phone, user.email)
    phone_id = max(row.id for row in session_rows(app))
    token = csrf_token(laptop.get("/account"))
    laptop.post(f"/account/sessions/{phone_id}/revoke", data={"csrf_token": token})
    assert signed_in(laptop)
    assert not signed_in(phone)


def test_signing_out_this_session_from_the_list_logs_out(app: Flask, client, user) -> None:
    login(client, user.email)
    (row,) = session_rows(app)
    token = csrf_token(client.get("/account"))
    response = client.post(f"/account/sessions/{row.id}/revoke", data={"csrf_token": token})
    assert response.headers["Location"] == "/login"
    assert not signed_in(client)


def test_cannot_end_another_users_session(app: Flask, user_factory) -> None:
    alice, mallory = user_factory(username="alice"), user_factory(username="mallory")
    alice_browser, mallory_browser = app.test_client(), app.test_client()
    login(alice_browser, alice.email)
    alice_session = session_rows(app)[0].id
    login(mallory_browser, mallory.email)
    token = csrf_token(mallory_browser.get("/account"))
    mallory_browser.post(f"/account/sessions/{alice_session}/revoke", data={"csrf_token": token})
    assert signed_in(alice_browser)


def test_revoke_needs_csrf_token(app: Flask, client, user) -> None:
    login(client, user.email)
    other = app.test_client()
    login(other, user.email)
    client.post("/account/sessions/revoke-others")
    assert signed_in(other)


def test_deactivation_ends_every_session(app: Flask, client, user) -> None:
    from flask_gatehouse.flows import admin
    from flask_gatehouse.services import users

    login(client, user.email)
    with app.app_context():
        admin.set_active(users.find_by_email(user.email), False)
    assert not signed_in(client)
    assert session_rows(app) == []
