"""Signing up, in and out through the JSON API, with both kinds of client: a browser (its
session cookie and a CSRF token the API hands out) and an app (``X-Session-Token``, no
cookies). Both are the same server-side sessions the pages use."""

import re
from typing import Any

import pytest
from flask import Flask

from tests.api_clients import KINDS, ApiClient
from tests.conftest import PASSWORD, Account, all_mail_sent, csrf_token, login
from tests.smtp import Mailbox, link_path
from tests.test_passkeys import ORIGIN as PASSKEY_ORIGIN
from tests.test_passkeys import add_passkey
from tests.test_two_factor import STEP, clock, code_at
from tests.webauthn_authenticator import Authenticator

__all__ = ["clock"]  # a fixture


@pytest.fixture(params=KINDS)
def api(request: pytest.FixtureRequest, app: Flask) -> ApiClient:
    return ApiClient(app, request.param)


def enrol_two_factor(app: Flask, account: Account, clock: Any) -> str:
    """Switch two-factor on for ``account`` through the pages, then move the clock to the
    app's next code; the app's secret."""
    client = app.test_client()
    assert login(client, account.email).status_code == 302
    page = client.get("/account/two-factor")
    key = re.search(r'class="totp-key">([A-Z2-7 ]+)<', page.text)
    assert key
    secret = key.group(1).replace(" ", "")
    form = {"csrf_token": csrf_token(page), "code": code_at(secret)}
    assert client.post("/account/two-factor", data=form).status_code == 200
    clock.shift(STEP)
    return secret


def test_a_client_signs_in_and_out(api: ApiClient, user: Account) -> None:
    assert api.start().status_code == 401
    answer = api.sign_in(user.email, PASSWORD)
    assert answer.status_code == 200
    assert answer.json["user"]["email"] == user.email
    assert answer.json["user"]["username"] == "alice"
    session = api.get("/auth/session")
    assert session.status_code == 200
    assert session.json["session"]["recently_authenticated"] is True
    assert api.get("/api/v1/account").json["username"] == "alice"
    assert api.delete("/auth/session").status_code == 200
    assert api.get("/auth/session").status_code == 401
    assert api.get("/api/v1/account").status_code == 401


def test_an_app_client_holds_a_token_and_no_cookie(app: Flask, user: Account) -> None:
    api = ApiClient(app, "app")
    answer = api.sign_in(user.email, PASSWORD)
    assert answer.status_code == 200
    assert "Set-Cookie" not in answer.headers or "gatehouse_session" not in str(
        answer.headers.getlist("Set-Cookie")
    )
    token = answer.json["meta"]["session_token"]
    assert "csrf_token" not in answer.json["meta"]
    # The token is the credential: without it nothing is signed in.
    bare = app.test_client(use_cookies=False)
    assert bare.get("/api/v1/app/auth/session").status_code == 401
    headers = {"X-Session-Token": token}
    assert bare.get("/api/v1/app/auth/session", headers=headers).status_code == 200
    assert bare.get("/api/v1/account", headers=headers).json["email"] == user.email
    # A cookie is never read for an app, so the page's session cookie is no app session.
    browser = app.test_client()
    assert login(browser, user.email).status_code == 302
    assert browser.get("/api/v1/app/auth/session").status_code == 401


def test_app_sessions_are_the_account_s_sessions(app: Flask, user: Account) -> None:
    api = ApiClient(app, "app")
    api.sign_in(user.email, PASSWORD)
    browser = app.test_client()
    assert login(browser, user.email).status_code == 302
    page = browser.get("/account")
    assert page.text.count('action="/account/sessions/') >= 1
    # Signing the others out from the page ends the app's session too.
    form = {"csrf_token": csrf_token(page)}
    assert browser.post("/account/sessions/revoke-others", data=form).status_code == 302
    assert api.get("/auth/session").status_code == 401


def test_a_browser_client_must_send_its_csrf_token(app: Flask, user: Account) -> None:
    api = ApiClient(app, "browser")
    api.start()
    forged = api.http.post(
        "/api/v1/browser/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert forged.status_code == 403
    assert "CSRF" in forged.json["error"]["message"]
    assert api.sign_in(user.email, PASSWORD).status_code == 200
    # Signed in, a request another site makes (cookies, no token) is refused too.
    forged = api.http.delete("/api/v1/browser/auth/session")
    assert forged.status_code == 403
    assert api.get("/auth/session").status_code == 200


def test_bodies_must_be_json(api: ApiClient, user: Account) -> None:
    api.start()
    form = {"email": user.email, "password": PASSWORD}
    answer = api.call("POST", "/auth/login", data=form)
    assert answer.status_code == 415
    assert answer.json["error"]["code"] == 415


def test_a_wrong_password_gets_the_page_s_answer(api: ApiClient, user: Account) -> None:
    wrong = api.sign_in(user.email, "not the password")
    unknown = api.sign_in("nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json["error"] == unknown.json["error"]
    assert wrong.json["error"]["message"].startswith("Incorrect email or password.")


def test_a_refused_body_names_its_fields(api: ApiClient) -> None:
    api.start()
    answer = api.post("/auth/login", {"email": "", "password": "x"})
    assert answer.status_code == 400
    assert set(answer.json["error"]["fields"]) == {"email"}
    wrong_type = api.post("/auth/login", {"email": ["a"], "password": "x"})
    assert wrong_type.status_code == 400


def test_the_api_shares_the_lockout_with_the_pages(
    make_app: Any, user: Account, api: ApiClient
) -> None:
    for _ in range(5):
        assert api.sign_in(user.email, "wrong guess").status_code == 401
    locked = api.sign_in(user.email, PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    browser = api.http.application.test_client()
    assert login(browser, user.email).status_code == 429


def test_sign_up_then_confirm_then_sign_in(api: ApiClient, mailbox: Mailbox) -> None:
    api.start()
    body = {"email": "new@example.com", "username": "newbie", "password": PASSWORD}
    answer = api.post("/auth/signup", body)
    assert answer.status_code == 202
    assert "inbox" in answer.json["message"]
    taken = api.post("/auth/signup", {**body, "username": "other"})
    assert taken.status_code == 202
    assert taken.json["message"] == answer.json["message"]
    refused = api.sign_in("new@example.com", PASSWORD)
    assert refused.status_code == 401
    assert all_mail_sent()
    link = link_path(mailbox.wait_for()[0], "/confirm/")
    page = api.http.application.test_client()
    page.post(link, data={"csrf_token": csrf_token(page.get(link))})
    assert api.sign_in("new@example.com", PASSWORD).status_code == 200


def test_sign_up_refuses_a_weak_password_on_its_field(api: ApiClient) -> None:
    api.start()
    body = {"email": "new@example.com", "username": "newbie", "password": "short"}
    answer = api.post("/auth/signup", body)
    assert answer.status_code == 400
    assert "password" in answer.json["error"]["fields"]


def test_two_factor_is_a_pending_stage(
    clock: Any, app: Flask, api: ApiClient, user: Account
) -> None:
    secret = enrol_two_factor(app, user, clock)
    answer = api.sign_in(user.email, PASSWORD)
    assert answer.status_code == 401
    assert answer.json["pending"] == {
        "stage": "two_factor",
        "url": f"/api/v1/{api.kind}/auth/two-factor",
    }
    assert api.get("/api/v1/account").status_code == 401
    assert api.get("/auth/session").json["pending"]["stage"] == "two_factor"
    wrong = api.post("/auth/two-factor", {"code": "000000"})
    assert wrong.status_code == 400
    assert "code" in wrong.json["error"]["fields"]
    passed = api.post("/auth/two-factor", {"code": code_at(secret)})
    assert passed.status_code == 200
    assert passed.json["user"]["email"] == user.email
    assert api.get("/api/v1/account").status_code == 200


def test_an_app_cannot_finish_another_client_s_pending_sign_in(
    clock: Any, app: Flask, user: Account
) -> None:
    secret = enrol_two_factor(app, user, clock)
    first = ApiClient(app, "app")
    assert first.sign_in(user.email, PASSWORD).status_code == 401
    stranger = ApiClient(app, "app")
    assert stranger.post("/auth/two-factor", {"code": code_at(secret)}).status_code == 401
    assert first.post("/auth/two-factor", {"code": code_at(secret)}).status_code == 200


def test_five_wrong_codes_end_the_pending_sign_in(
    clock: Any, app: Flask, api: ApiClient, user: Account
) -> None:
    secret = enrol_two_factor(app, user, clock)
    api.sign_in(user.email, PASSWORD)
    for _ in range(4):
        assert api.post("/auth/two-factor", {"code": "000000"}).status_code == 400
    assert api.post("/auth/two-factor", {"code": "000000"}).status_code == 401
    assert api.post("/auth/two-factor", {"code": code_at(secret)}).status_code == 401


def test_a_required_new_password_is_a_pending_stage(
    app: Flask, api: ApiClient, user: Account
) -> None:
    command = ["gatehouse", "set-password", user.email, "--temporary", "--password", PASSWORD]
    assert app.test_cli_runner().invoke(args=command).exit_code == 0
    answer = api.sign_in(user.email, PASSWORD)
    assert answer.status_code == 401
    assert answer.json["pending"]["stage"] == "password_change"
    weak = api.post("/auth/new-password", {"password": "short"})
    assert weak.status_code == 400
    assert "password" in weak.json["error"]["fields"]
    chosen = api.post("/auth/new-password", {"password": "a brand new passphrase here"})
    assert chosen.status_code == 200
    assert api.get("/auth/session").status_code == 200


def test_required_enrolment_at_sign_in(clock: Any, make_app: Any, user_factory: Any) -> None:
    app = make_app(GATEHOUSE_MFA_REQUIRED="all")
    account = user_factory(email="bob@example.com", username="bob")
    api = ApiClient(app, "app")
    answer = api.sign_in(account.email, PASSWORD)
    assert answer.status_code == 401
    assert answer.json["pending"]["stage"] == "two_factor_enrolment"
    setup = api.get("/auth/two-factor/setup")
    assert setup.status_code == 200
    assert setup.json["postpone_until"] is not None
    enrolled = api.post("/auth/two-factor/setup", {"code": code_at(setup.json["secret"])})
    assert enrolled.status_code == 200
    assert len(enrolled.json["recovery_codes"]) >= 8
    assert api.get("/auth/session").status_code == 200


def test_reauthentication_refreshes_the_session(app: Flask, api: ApiClient, user: Account) -> None:
    api.sign_in(user.email, PASSWORD)
    before = api.session_token
    wrong = api.post("/auth/reauthenticate", {"password": "nope"})
    assert wrong.status_code == 400
    assert "password" in wrong.json["error"]["fields"]
    again = api.post("/auth/reauthenticate", {"password": PASSWORD})
    assert again.status_code == 200
    if api.kind == "app":
        assert api.session_token != before  # rotated, as the cookie is
    assert api.get("/auth/session").status_code == 200


def test_signing_in_twice_is_refused(api: ApiClient, user: Account) -> None:
    api.sign_in(user.email, PASSWORD)
    again = api.post("/auth/login", {"email": user.email, "password": PASSWORD})
    assert again.status_code == 409


def test_an_allowed_origin_may_drive_an_app_sign_in(make_app: Any, user_factory: Any) -> None:
    app = make_app(GATEHOUSE_CORS_ORIGINS=["https://app.example.com"])
    account = user_factory(email="bob@example.com", username="bob")
    client = app.test_client(use_cookies=False)
    origin = {"Origin": "https://app.example.com"}
    preflight = client.options(
        "/api/v1/app/auth/login",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-session-token",
        },
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "x-session-token" in allowed
    assert "content-type" in allowed
    body = {"email": account.email, "password": "wrong"}
    for _ in range(5):
        client.post("/api/v1/app/auth/login", json=body, headers=origin)
    locked = client.post("/api/v1/app/auth/login", json=body, headers=origin)
    assert locked.status_code == 429
    assert locked.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    # The script may read how long to wait.
    assert "retry-after" in locked.headers["Access-Control-Expose-Headers"].lower()
    other = client.post(
        "/api/v1/app/auth/login", json=body, headers={"Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in other.headers


def passkey_ceremony(
    api: ApiClient, options_path: str, answer_path: str, answer: Any, **body: Any
) -> Any:
    """Options, the authenticator's answer, the result; an app sends back its ceremony."""
    if api.kind == "browser" and api.csrf_token is None:
        api.start()
    options = api.post(options_path)
    assert options.status_code == 200, options.text
    ceremony = options.json["meta"].get("ceremony")
    assert (ceremony is not None) == (api.kind == "app")
    if ceremony is not None:
        body["ceremony"] = ceremony
    return api.post(answer_path, {"credential": answer(options.json["publicKey"]), **body})


def test_passkeys_work_for_both_kinds_of_client(app: Flask, api: ApiClient, user: Account) -> None:
    key = Authenticator(PASSKEY_ORIGIN)
    browser = app.test_client()
    login(browser, user.email)
    assert add_passkey(browser, key).status_code == 200
    answer = passkey_ceremony(
        api, "/auth/passkey/options", "/auth/passkey", lambda options: key.get(options)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json["user"]["email"] == user.email
    again = passkey_ceremony(
        api,
        "/auth/reauthenticate/passkey/options",
        "/auth/reauthenticate/passkey",
        lambda options: key.get(options),
    )
    assert again.status_code == 200, again.text


def test_an_app_s_ceremony_answers_only_its_own_challenge(app: Flask, user: Account) -> None:
    key = Authenticator(PASSKEY_ORIGIN)
    browser = app.test_client()
    login(browser, user.email)
    assert add_passkey(browser, key).status_code == 200
    mine, other = ApiClient(app, "app"), ApiClient(app, "app")
    options = mine.post("/auth/passkey/options")
    theirs = other.post("/auth/passkey/options").json["meta"]["ceremony"]
    credential = key.get(options.json["publicKey"])
    # Another client's ceremony, or none, does not carry this challenge.
    for ceremony in (theirs, "forged", None):
        body = {"credential": credential, **({"ceremony": ceremony} if ceremony else {})}
        assert mine.post("/auth/passkey", body).status_code == 401
    # The challenge was not spent by those: the right ceremony still signs in, once.
    right = {"credential": credential, "ceremony": options.json["meta"]["ceremony"]}
    assert mine.post("/auth/passkey", right).status_code == 200
    assert ApiClient(app, "app").post("/auth/passkey", right).status_code == 401


def test_a_visitor_is_sent_to_sign_in_not_counted(make_app: Any) -> None:
    app = make_app(GATEHOUSE_ACCOUNT_CHANGE_LIMIT="2 per hour")
    visitor = ApiClient(app, "app")
    for _ in range(4):
        answer = visitor.delete("/account/two-factor")
        assert answer.status_code == 401
    # Past the bound of a row id, no route matches, whatever the method.
    big = visitor.call("PATCH", "/account/passkeys/2147483648", {"name": "x"})
    assert big.status_code == 404
    assert big.json["error"]["code"] == 404
