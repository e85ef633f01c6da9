"""The account through the JSON API: password, address, sessions, deletion and data, the
twins of the account pages, for both kinds of client. They share the pages' sessions, limits
and lockouts, need a recent sign-in where the pages do, and never take an access token."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from blog import db
from flask import Flask
from flask.testing import FlaskClient

from tests.api_clients import KINDS, ApiClient
from tests.conftest import PASSWORD, Account, all_mail_sent, csrf_token, login, user_row
from tests.smtp import Mailbox, link_path
from tests.test_access_tokens import create_token

NEW = "a brand new passphrase for alice"
WRONG = "not the password, but long enough"
CONFIRM = "/account/email/confirm/"


@pytest.fixture(params=KINDS)
def api(request: pytest.FixtureRequest, app: Flask) -> ApiClient:
    return ApiClient(app, request.param)


@pytest.fixture
def signed_in(api: ApiClient, user: Account) -> ApiClient:
    assert api.sign_in(user.email, PASSWORD).status_code == 200
    return api


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        yield traveller


def page_client(app: Flask, email: str) -> FlaskClient:
    """A browser signed in through the login page."""
    browser = app.test_client()
    assert login(browser, email).status_code == 302
    return browser


def on_page(browser: FlaskClient) -> bool:
    return browser.get("/blogs").status_code == 200


def drop_password(app: Flask, email: str) -> None:
    """Make the account one that signs in with passkeys only."""
    with app.app_context():
        db.session.merge(user_row(app, email)).password_hash = None
        db.session.commit()


def session_ids(api: ApiClient) -> dict[bool, list[int]]:
    """The account's session ids as ``api`` lists them: {current?: ids}."""
    listed = api.get("/account/sessions")
    assert listed.status_code == 200
    found: dict[bool, list[int]] = {True: [], False: []}
    for record in listed.json["sessions"]:
        found[record["current"]].append(record["id"])
    return found


# --- the password -----------------------------------------------------------------------------


def test_a_new_password_ends_the_other_sessions_and_keeps_this_one(
    app: Flask, signed_in: ApiClient, user: Account
) -> None:
    other = page_client(app, user.email)
    before = signed_in.session_token
    answer = signed_in.post("/account/password", {"current_password": PASSWORD, "password": NEW})
    assert answer.status_code == 200
    assert answer.json["message"].startswith("Your password has been changed")
    assert not on_page(other)
    assert signed_in.get("/auth/session").status_code == 200
    if signed_in.kind == "app":
        # The session started afresh: a new token, and the one seen before is dead.
        assert signed_in.session_token not in (None, before)
        stale = app.test_client(use_cookies=False)
        headers = {"X-Session-Token": before}
        assert stale.get("/api/v1/app/auth/session", headers=headers).status_code == 401
    # The answer's CSRF token (a browser's) works for the next change.
    assert signed_in.post("/account/sessions/revoke-others").status_code == 200
    assert login(app.test_client(), user.email, PASSWORD).status_code == 400
    assert login(app.test_client(), user.email, NEW).status_code == 302


def test_a_new_password_needs_the_current_one_and_the_policy(
    app: Flask, signed_in: ApiClient, user: Account
) -> None:
    wrong = signed_in.post("/account/password", {"current_password": WRONG, "password": NEW})
    assert wrong.status_code == 400
    assert wrong.json["error"]["fields"] == {"current_password": "Incorrect password."}
    weak = signed_in.post("/account/password", {"current_password": PASSWORD, "password": "short"})
    assert weak.status_code == 400
    assert set(weak.json["error"]["fields"]) == {"password"}
    missing = signed_in.post("/account/password", {"password": NEW})
    assert set(missing.json["error"]["fields"]) == {"current_password"}
    assert login(app.test_client(), user.email, PASSWORD).status_code == 302


def test_wrong_current_passwords_lock_the_account(signed_in: ApiClient) -> None:
    for _ in range(5):
        body = {"current_password": WRONG, "password": NEW}
        assert signed_in.post("/account/password", body).status_code == 400
    locked = signed_in.post("/account/password", {"current_password": WRONG, "password": NEW})
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    body = {"current_password": PASSWORD, "password": NEW}
    assert signed_in.post("/account/password", body).status_code == 429


def test_an_account_without_a_password_sets_its_first(
    app: Flask, signed_in: ApiClient, user: Account
) -> None:
    drop_password(app, user.email)
    assert signed_in.post("/account/password", {"password": NEW}).status_code == 200
    assert login(app.test_client(), user.email, NEW).status_code == 302


def test_the_page_and_the_api_share_the_password_counter(make_app: Any, user: Account) -> None:
    app = make_app(GATEHOUSE_ACCOUNT_CHANGE_LIMIT="3 per hour")
    browser = page_client(app, user.email)
    for _ in range(3):
        form = {"csrf_token": csrf_token(browser.get("/account/password")), "password": "short"}
        assert browser.post("/account/password", data=form).status_code == 400
    api = ApiClient(app, "app")
    api.sign_in(user.email, PASSWORD)
    limited = api.post("/account/password", {"current_password": PASSWORD, "password": NEW})
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers
    # Another action counts on its own.
    assert api.post("/account/delete", {"password": WRONG}).status_code == 400


def test_the_api_spends_the_page_s_password_counter(make_app: Any, user: Account) -> None:
    app = make_app(GATEHOUSE_ACCOUNT_CHANGE_LIMIT="3 per hour")
    api = ApiClient(app, "browser")
    api.sign_in(user.email, PASSWORD)
    for _ in range(3):
        assert api.post("/account/password", {"password": "short"}).status_code == 400
    browser = page_client(app, user.email)
    form = {"csrf_token": csrf_token(browser.get("/account/password"))}
    answer = browser.post("/account/password", data={**form, "current_password": PASSWORD})
    assert answer.status_code == 429


# --- the email address ------------------------------------------------------------------------


def confirm_token(mailbox: Mailbox, address: str) -> str:
    assert all_mail_sent()
    (message,) = [m for m in mailbox.to(address) if "Confirm your new email" in m["Subject"]]
    return link_path(message, CONFIRM).removeprefix(CONFIRM)


def test_a_new_address_takes_effect_with_its_link(
    app: Flask, signed_in: ApiClient, user: Account, mailbox: Mailbox
) -> None:
    body = {"email": " New@Example.COM ", "current_password": PASSWORD}
    answer = signed_in.post("/account/email", body)
    assert answer.status_code == 202
    assert answer.json["message"] == "We sent a confirmation link to the new address."
    token = confirm_token(mailbox, "new@example.com")
    assert user_row(app, user.email) is not None
    # No sign-in needed: the link may be opened on another device.
    elsewhere = ApiClient(app, signed_in.kind)
    elsewhere.start()
    confirmed = elsewhere.post("/account/email/confirm", {"token": token})
    assert confirmed.status_code == 200
    assert confirmed.json["message"] == "Your email address has been changed."
    assert signed_in.get("/auth/session").json["user"]["email"] == "new@example.com"
    again = elsewhere.post("/account/email/confirm", {"token": token})
    assert again.status_code == 400
    assert "expired" in again.json["error"]["message"]
    assert elsewhere.post("/account/email/confirm", {}).status_code == 400


def test_a_new_address_is_refused_on_its_field(signed_in: ApiClient, user: Account) -> None:
    same = signed_in.post("/account/email", {"email": user.email, "current_password": PASSWORD})
    assert same.status_code == 400
    assert same.json["error"]["fields"] == {"email": "That is already your email address."}
    wrong = signed_in.post(
        "/account/email", {"email": "new@example.com", "current_password": WRONG}
    )
    assert wrong.status_code == 400
    assert set(wrong.json["error"]["fields"]) == {"current_password"}


def test_a_taken_address_gets_the_same_answer_and_its_link_fails(
    app: Flask, signed_in: ApiClient, user_factory: Any, mailbox: Mailbox
) -> None:
    free = signed_in.post(
        "/account/email", {"email": "free@example.com", "current_password": PASSWORD}
    )
    bob = user_factory(email="bob@example.com", username="bob")
    taken = signed_in.post("/account/email", {"email": bob.email, "current_password": PASSWORD})
    assert (taken.status_code, taken.json["message"]) == (free.status_code, free.json["message"])
    refused = signed_in.post("/account/email/confirm", {"token": confirm_token(mailbox, bob.email)})
    assert refused.status_code == 400
    assert "already used by another account" in refused.json["error"]["message"]
    assert user_row(app, bob.email) is not None


# --- sessions ---------------------------------------------------------------------------------


def test_the_sessions_are_listed_as_on_the_account_page(
    app: Flask, signed_in: ApiClient, user: Account
) -> None:
    page_client(app, user.email)
    listed = signed_in.get("/account/sessions")
    assert listed.status_code == 200
    records = listed.json["sessions"]
    assert len(records) == 2
    assert [record["current"] for record in records].count(True) == 1
    assert set(records[0]) == {
        "id",
        "device",
        "ip",
        "created_at",
        "last_seen_at",
        "expires_at",
        "remembered",
        "current",
    }
    current = next(record for record in records if record["current"])
    assert current["id"] == signed_in.get("/auth/session").json["session"]["id"]


def test_an_app_s_session_is_revocable_from_a_browser_and_back(app: Flask, user: Account) -> None:
    phone = ApiClient(app, "app")
    phone.sign_in(user.email, PASSWORD)
    browser = ApiClient(app, "browser")
    browser.sign_in(user.email, PASSWORD)
    (phone_id,) = session_ids(phone)[True]
    assert session_ids(browser)[False] == [phone_id]
    assert browser.delete(f"/account/sessions/{phone_id}").status_code == 200
    assert phone.get("/auth/session").status_code == 401

    phone.sign_in(user.email, PASSWORD)
    (browser_id,) = session_ids(browser)[True]
    answer = phone.delete(f"/account/sessions/{browser_id}")
    assert answer.status_code == 200
    assert answer.json["message"] == "That session has been signed out."
    assert browser.get("/auth/session").status_code == 401
    assert phone.get("/auth/session").status_code == 200


def test_the_page_revokes_an_api_session(app: Flask, signed_in: ApiClient, user: Account) -> None:
    (api_id,) = session_ids(signed_in)[True]
    browser = page_client(app, user.email)
    form = {"csrf_token": csrf_token(browser.get("/account"))}
    assert browser.post(f"/account/sessions/{api_id}/revoke", data=form).status_code == 302
    assert signed_in.get("/auth/session").status_code == 401
    assert on_page(browser)


def test_revoking_the_current_session_signs_out(signed_in: ApiClient) -> None:
    (current,) = session_ids(signed_in)[True]
    answer = signed_in.delete(f"/account/sessions/{current}")
    assert answer.status_code == 200
    assert answer.json["message"] == "You have been signed out."
    assert signed_in.get("/auth/session").status_code == 401


def test_another_account_s_session_is_not_found(
    app: Flask, signed_in: ApiClient, user_factory: Any
) -> None:
    bob = user_factory(email="bob@example.com", username="bob")
    bobs = ApiClient(app, "app")
    bobs.sign_in(bob.email, PASSWORD)
    (bob_id,) = session_ids(bobs)[True]
    answer = signed_in.delete(f"/account/sessions/{bob_id}")
    assert answer.status_code == 404
    assert answer.json["error"]["message"] == "That session had already ended."
    assert bobs.get("/auth/session").status_code == 200
    assert signed_in.delete("/account/sessions/2147483647").status_code == 404


def test_revoking_the_others_keeps_this_one(
    app: Flask, signed_in: ApiClient, user: Account
) -> None:
    browsers = [page_client(app, user.email) for _ in range(2)]
    answer = signed_in.post("/account/sessions/revoke-others")
    assert answer.status_code == 200
    assert answer.json["revoked"] == 2
    assert not any(on_page(browser) for browser in browsers)
    left = session_ids(signed_in)
    assert (len(left[True]), left[False]) == (1, [])
    assert signed_in.post("/account/sessions/revoke-others").json["revoked"] == 0


# --- deletion and data ------------------------------------------------------------------------


def test_deleting_the_account_needs_its_password(
    app: Flask, signed_in: ApiClient, user: Account
) -> None:
    wrong = signed_in.post("/account/delete", {"password": WRONG})
    assert wrong.status_code == 400
    assert wrong.json["error"]["fields"] == {"password": "Incorrect password."}
    assert user_row(app, user.email) is not None
    answer = signed_in.post("/account/delete", {"password": PASSWORD})
    assert answer.status_code == 200
    assert answer.json["message"] == "Your account has been deleted. Goodbye!"
    assert user_row(app, user.email) is None
    assert signed_in.get("/auth/session").status_code == 401


def test_wrong_passwords_lock_the_deletion(signed_in: ApiClient, app: Flask, user: Account) -> None:
    for _ in range(5):
        assert signed_in.post("/account/delete", {"password": WRONG}).status_code == 400
    locked = signed_in.post("/account/delete", {"password": PASSWORD})
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert user_row(app, user.email) is not None


def test_an_account_without_a_password_is_deleted_without_one(
    app: Flask, signed_in: ApiClient, user: Account
) -> None:
    drop_password(app, user.email)
    assert signed_in.post("/account/delete").status_code == 200
    assert user_row(app, user.email) is None


def test_the_data_export(signed_in: ApiClient, user: Account) -> None:
    answer = signed_in.get("/account/data")
    assert answer.status_code == 200
    data = answer.json["data"]
    assert data["profile"]["email"] == user.email
    assert data["profile"]["password_set"] is True
    assert len(data["sessions"]) == 1
    assert "password_hash" not in str(data)


# --- who may reach them -----------------------------------------------------------------------

#: The routes behind a recent sign-in, with a body each would accept.
RECENT = [
    ("POST", "/account/password", {"current_password": PASSWORD, "password": NEW}),
    ("POST", "/account/email", {"email": "new@example.com", "current_password": PASSWORD}),
    ("POST", "/account/delete", {"password": PASSWORD}),
    ("GET", "/account/data", None),
]


@pytest.mark.parametrize(("method", "path", "body"), RECENT)
def test_sensitive_routes_need_a_recent_sign_in(
    clock: Any, app: Flask, signed_in: ApiClient, method: str, path: str, body: Any
) -> None:
    clock.shift(timedelta(minutes=16))
    stale = signed_in.call(method, path, body)
    assert stale.status_code == 401
    assert "recent sign-in" in stale.json["error"]["message"]
    assert signed_in.get("/auth/session").json["session"]["recently_authenticated"] is False
    assert signed_in.post("/auth/reauthenticate", {"password": PASSWORD}).status_code == 200
    assert signed_in.call(method, path, body).status_code in (200, 202)


#: Every signed-in route (a token has scopes for none of them).
SIGNED_IN = [
    *RECENT,
    ("GET", "/account/sessions", None),
    ("DELETE", "/account/sessions/1", None),
    ("POST", "/account/sessions/revoke-others", {}),
]


def test_an_access_token_reaches_none_of_them(app: Flask, user: Account) -> None:
    browser = page_client(app, user.email)
    token = create_token(browser, scopes=("read", "write"))
    bare = app.test_client(use_cookies=False)
    headers = {"Authorization": f"Bearer {token}"}
    for method, path, body in SIGNED_IN:
        answer = bare.open(f"/api/v1/app{path}", method=method, json=body, headers=headers)
        assert answer.status_code == 401, (method, path)
    assert user_row(app, user.email) is not None
    assert on_page(browser)


def test_a_browser_client_must_send_its_csrf_token(app: Flask, user: Account) -> None:
    browser = ApiClient(app, "browser")
    browser.sign_in(user.email, PASSWORD)
    forged = browser.http.post("/api/v1/browser/account/delete", json={"password": PASSWORD})
    assert forged.status_code == 403
    assert browser.get("/auth/session").status_code == 200
