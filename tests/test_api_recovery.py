"""Getting into an account through the JSON API without signing in, with both kinds of
client: a forgotten password (mail, reset, then sign in), confirming an address, the "this
wasn't me" link, and signing up with a passkey. The links come by real mail; their tokens
travel in the body."""

import json
from typing import Any

import pytest
from flask import Flask

from tests.api_clients import KINDS, ApiClient
from tests.conftest import PASSWORD, Account, all_mail_sent, login
from tests.smtp import Mailbox, link_path
from tests.test_api_auth import enrol_two_factor
from tests.test_passkeys import ORIGIN, add_passkey
from tests.test_two_factor import clock, code_at, enrol
from tests.webauthn_authenticator import Authenticator

__all__ = ["clock"]  # a fixture

NEW_PASSWORD = "a completely different passphrase"
INVALID_RESET = (
    "This password reset link has expired, has already been used, or was replaced by a newer one."
)


@pytest.fixture(params=KINDS)
def api(request: pytest.FixtureRequest, app: Flask) -> ApiClient:
    return ApiClient(app, request.param)


def token_in(mailbox: Mailbox, address: str, subject: str, fragment: str) -> str:
    """The token of the last link containing ``fragment`` mailed to ``address``."""
    assert all_mail_sent()
    found = [m for m in mailbox.to(address) if subject in m["Subject"]]
    assert found, f"no {subject!r} mail for {address}"
    return link_path(found[-1], fragment).rsplit("/", 1)[1]


def ask_for_reset(api: ApiClient, mailbox: Mailbox, email: str) -> str:
    api.start()
    assert api.post("/auth/password/forgot", {"email": email}).status_code == 202
    return token_in(mailbox, email, "Reset", "/reset/")


def without_meta(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "meta"}


# --- a forgotten password --------------------------------------------------------------------


def test_forgot_reset_then_sign_in(api: ApiClient, user: Account, mailbox: Mailbox) -> None:
    token = ask_for_reset(api, mailbox, user.email)
    weak = api.post("/auth/password/reset", {"token": token, "password": "short"})
    assert weak.status_code == 400
    assert set(weak.json["error"]["fields"]) == {"password"}

    done = api.post("/auth/password/reset", {"token": token, "password": NEW_PASSWORD})
    assert done.status_code == 200, done.text
    assert done.json["message"] == "Your password has been changed. Sign in with your new password."
    again = api.post("/auth/password/reset", {"token": token, "password": NEW_PASSWORD})
    assert again.status_code == 400
    assert again.json["error"]["message"] == INVALID_RESET

    assert api.sign_in(user.email, PASSWORD).status_code == 401
    signed_in = api.sign_in(user.email, NEW_PASSWORD)
    assert signed_in.status_code == 200
    assert signed_in.json["user"]["email"] == user.email


def test_an_unknown_address_gets_the_same_answer(
    api: ApiClient, user: Account, mailbox: Mailbox
) -> None:
    api.start()
    known = api.post("/auth/password/forgot", {"email": user.email})
    unknown = api.post("/auth/password/forgot", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert without_meta(known.json) == without_meta(unknown.json)
    assert known.headers.get("Set-Cookie") == unknown.headers.get("Set-Cookie")
    assert all_mail_sent()
    assert [m["To"] for m in mailbox.messages] == [user.email]


def test_a_link_token_must_be_text(api: ApiClient) -> None:
    api.start()
    missing = api.post("/auth/password/reset", {"password": NEW_PASSWORD})
    assert missing.status_code == 400
    assert set(missing.json["error"]["fields"]) == {"token"}
    assert api.post("/auth/email/confirm", {"token": ["x"]}).status_code == 400
    unknown = api.post("/auth/password/reset", {"token": "x" * 500, "password": NEW_PASSWORD})
    assert unknown.status_code == 400
    assert unknown.json["error"]["message"] == INVALID_RESET
    # JSON can escape half a UTF-16 pair: refused, never hashed.
    surrogate = api.call(
        "POST",
        "/auth/secure",
        data='{"token": "\\ud800"}',
        content_type="application/json",
    )
    assert surrogate.status_code == 400


def test_a_two_factor_account_s_reset_needs_the_code(
    clock: Any, app: Flask, api: ApiClient, user: Account, mailbox: Mailbox
) -> None:
    secret = enrol_two_factor(app, user, clock)
    token = ask_for_reset(api, mailbox, user.email)
    body = {"token": token, "password": NEW_PASSWORD}
    missing = api.post("/auth/password/reset", body)
    assert missing.status_code == 400
    assert set(missing.json["error"]["fields"]) == {"code"}
    wrong = api.post("/auth/password/reset", {**body, "code": "000000"})
    assert wrong.status_code == 400
    assert set(wrong.json["error"]["fields"]) == {"code"}
    # A refused password or code leaves the link usable.
    weak = api.post("/auth/password/reset", {**body, "password": "short", "code": code_at(secret)})
    assert set(weak.json["error"]["fields"]) == {"password"}
    assert api.post("/auth/password/reset", {**body, "code": code_at(secret)}).status_code == 200
    assert api.sign_in(user.email, NEW_PASSWORD).json["pending"]["stage"] == "two_factor"


def test_wrong_codes_lock_the_reset(
    clock: Any, app: Flask, api: ApiClient, user: Account, mailbox: Mailbox
) -> None:
    """A mailbox alone must not let anyone guess the code: the account's lockout for codes."""
    enrol_two_factor(app, user, clock)
    token = ask_for_reset(api, mailbox, user.email)
    body = {"token": token, "password": NEW_PASSWORD, "code": "000000"}
    answers = [api.post("/auth/password/reset", body) for _ in range(11)]  # 10 per hour
    assert {answer.status_code for answer in answers[:10]} == {400}
    assert answers[10].status_code == 429
    assert int(answers[10].headers["Retry-After"]) > 0
    assert "code" in answers[10].json["error"]["fields"]


def test_a_passkey_stands_for_the_code(
    clock: Any, app: Flask, user: Account, mailbox: Mailbox
) -> None:
    authenticator = Authenticator(ORIGIN)
    owner = app.test_client()
    assert login(owner, user.email).status_code == 302
    enrol(owner)
    assert add_passkey(owner, authenticator).status_code == 200
    api = ApiClient(app, "browser")  # a ceremony's challenge waits in the browser's session
    token = ask_for_reset(api, mailbox, user.email)

    options = api.post("/auth/password/reset/passkey/options", {"token": token})
    assert options.status_code == 200, options.text
    body = {"token": token, "password": NEW_PASSWORD}
    stranger = Authenticator(ORIGIN)  # a key the account does not have
    stray, _ = stranger.create(
        {"challenge": "AAAA", "rp": {"id": "gatehouse.test"}, "user": {"id": "AAAA"}}
    )
    refused = api.post(
        "/auth/password/reset",
        {**body, "credential": stranger.get(options.json["publicKey"], stray)},
    )
    assert refused.status_code == 400
    assert set(refused.json["error"]["fields"]) == {"code"}

    options = api.post("/auth/password/reset/passkey/options", {"token": token})
    credential = authenticator.get(options.json["publicKey"])
    done = api.post("/auth/password/reset", {**body, "credential": credential})
    assert done.status_code == 200, done.text
    assert api.post("/auth/password/reset/passkey/options", {"token": token}).status_code == 400


def test_no_passkey_options_for_an_account_without_one(
    api: ApiClient, user: Account, mailbox: Mailbox
) -> None:
    token = ask_for_reset(api, mailbox, user.email)
    refused = api.post("/auth/password/reset/passkey/options", {"token": token})
    assert refused.status_code == 400
    assert "no passkey" in refused.json["error"]["message"]


# --- confirming an address -------------------------------------------------------------------


def test_confirm_and_resend(api: ApiClient, user_factory: Any, mailbox: Mailbox) -> None:
    account = user_factory(email="new@example.com", username="newbie", confirmed=False)
    api.start()
    sent = api.post("/auth/email/resend", {"email": account.email})
    unknown = api.post("/auth/email/resend", {"email": "nobody@example.com"})
    assert sent.status_code == unknown.status_code == 202
    assert without_meta(sent.json) == without_meta(unknown.json)
    token = token_in(mailbox, account.email, "Confirm", "/confirm/")
    assert api.sign_in(account.email, PASSWORD).status_code == 401

    confirmed = api.post("/auth/email/confirm", {"token": token})
    assert confirmed.status_code == 200
    assert confirmed.json["message"] == "Your email address is confirmed. You can sign in now."
    spent = api.post("/auth/email/confirm", {"token": token})
    assert spent.status_code == 400
    assert "confirmation link" in spent.json["error"]["message"]
    assert api.sign_in(account.email, PASSWORD).status_code == 200


def test_sign_up_then_confirm_through_the_api(api: ApiClient, mailbox: Mailbox) -> None:
    api.start()
    body = {"email": "erin@example.com", "username": "erin", "password": PASSWORD}
    assert api.post("/auth/signup", body).status_code == 202
    token = token_in(mailbox, "erin@example.com", "Confirm", "/confirm/")
    assert api.post("/auth/email/confirm", {"token": token}).status_code == 200
    assert api.sign_in("erin@example.com", PASSWORD).status_code == 200


# --- "this wasn't me" ------------------------------------------------------------------------


def test_this_wasnt_me_signs_everyone_out(
    app: Flask, api: ApiClient, user: Account, mailbox: Mailbox
) -> None:
    assert ApiClient(app, "app").sign_in(user.email, PASSWORD).status_code == 200  # the first
    thief = ApiClient(app, "app")
    assert thief.sign_in(user.email, PASSWORD).status_code == 200
    token = token_in(mailbox, user.email, "New sign-in", "/secure/")

    api.start()
    secured = api.post("/auth/secure", {"token": token})
    assert secured.status_code == 200, secured.text
    assert "emailed you a link to set a new password" in secured.json["message"]
    assert thief.get("/auth/session").status_code == 401
    assert api.sign_in(user.email, PASSWORD).status_code == 401
    assert token_in(mailbox, user.email, "Reset", "/reset/")
    assert api.post("/auth/secure", {"token": token}).status_code == 400


# --- signing up with a passkey ---------------------------------------------------------------


def test_sign_up_with_a_passkey(app: Flask, mailbox: Mailbox) -> None:
    api = ApiClient(app, "browser")  # a ceremony's challenge waits in the browser's session
    authenticator = Authenticator(ORIGIN)
    api.start()
    body = {"email": "Gina@Example.com", "username": "gina"}
    options = api.post("/auth/signup/passkey/options", body)
    assert options.status_code == 200, options.text
    assert options.json["publicKey"]["user"]["name"] == "gina@example.com"
    _, credential = authenticator.create(options.json["publicKey"])
    made = api.post("/auth/signup/passkey", {"credential": credential})
    assert made.status_code == 202, made.text
    assert "inbox" in made.json["message"]

    token = token_in(mailbox, "gina@example.com", "Confirm", "/confirm/")
    assert api.post("/auth/email/confirm", {"token": token}).status_code == 200
    sign_in = api.post("/auth/passkey/options")
    answer = authenticator.get(sign_in.json["publicKey"])
    signed_in = api.post("/auth/passkey", {"credential": answer})
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json["user"]["username"] == "gina"


def test_a_passkey_sign_up_for_a_taken_address_answers_the_same(
    app: Flask, user: Account, mailbox: Mailbox
) -> None:
    answers = []
    for email in ("new@example.com", user.email):
        api = ApiClient(app, "browser")
        api.start()
        options = api.post("/auth/signup/passkey/options", {"email": email, "username": "x"})
        _, credential = Authenticator(ORIGIN).create(options.json["publicKey"])
        answer = api.post("/auth/signup/passkey", {"credential": credential})
        answers.append((answer.status_code, without_meta(answer.json)))
    assert answers[0] == answers[1] == (202, answers[0][1])
    assert all_mail_sent()
    assert any("Someone tried to create an account" in m["Subject"] for m in mailbox.to(user.email))


def test_a_passkey_sign_up_checks_its_body(api: ApiClient) -> None:
    api.start()
    bad = api.post("/auth/signup/passkey/options", {"email": "not an address", "username": ""})
    assert bad.status_code == 400
    assert set(bad.json["error"]["fields"]) == {"email", "username"}
    # No sign-up under way for this client: an answer alone creates nothing.
    options = {"challenge": "AAAA", "rp": {"id": "gatehouse.test"}, "user": {"id": "AAAA"}}
    _, credential = Authenticator(ORIGIN).create(options)
    assert api.post("/auth/signup/passkey", {"credential": credential}).status_code == 400
    assert api.post("/auth/signup/passkey", {"credential": "x"}).status_code == 400


def test_no_passkey_sign_up_where_passkeys_are_off(make_app: Any) -> None:
    api = ApiClient(make_app(GATEHOUSE_PASSKEYS="second-factor-only"), "app")
    body = {"email": "gina@example.com", "username": "gina"}
    assert api.post("/auth/signup/passkey/options", body).status_code == 404
    assert api.post("/auth/signup/passkey", {"credential": {}}).status_code == 404


def test_a_signed_in_client_cannot_sign_up_again(api: ApiClient, user: Account) -> None:
    api.sign_in(user.email, PASSWORD)
    body = {"email": "gina@example.com", "username": "gina"}
    assert api.post("/auth/signup/passkey/options", body).status_code == 409


def test_json_bodies_only(api: ApiClient) -> None:
    api.start()
    form = api.call("POST", "/auth/password/forgot", data={"email": "a@example.com"})
    assert form.status_code == 415
    assert json.loads(form.text)["error"]["code"] == 415
