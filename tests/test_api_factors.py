"""Two-factor authentication, trusted browsers and passkeys on the account, through the JSON
API with both kinds of client: enrolling an authenticator app and signing in with its codes,
recovery codes, switching it off, the site's policy refusing to let the last factor go, and
passkeys added, renamed, removed and signed in with (a software authenticator signs)."""

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from tests.api_clients import ApiClient
from tests.conftest import PASSWORD, Account, login
from tests.test_access_tokens import create_token
from tests.test_api_auth import api, passkey_ceremony
from tests.test_two_factor import STEP, clock, code_at
from tests.webauthn_authenticator import Authenticator

__all__ = ["api", "clock"]  # fixtures

ORIGIN = "https://gatehouse.test"


def signed_in(app: Flask, kind: str, account: Account) -> ApiClient:
    client = ApiClient(app, kind)
    assert client.sign_in(account.email, PASSWORD).status_code == 200
    return client


def enrol(api: ApiClient, clock: Any) -> tuple[str, list[str]]:
    """Switch two-factor on through the API, then move the clock to the app's next code: the
    app's secret and the recovery codes."""
    setup = api.post("/account/two-factor/setup")
    assert setup.status_code == 200, setup.text
    secret = setup.json["secret"]
    assert secret in setup.json["otpauth_uri"]
    enrolled = api.post("/account/two-factor", {"code": code_at(secret)})
    assert enrolled.status_code == 200, enrolled.text
    clock.shift(STEP)
    return secret, enrolled.json["recovery_codes"]


def sign_in_again(api: ApiClient, email: str) -> dict[str, Any]:
    """Sign out and in with the password: the answer's body."""
    assert api.delete("/auth/session").status_code == 200
    answer = api.sign_in(email, PASSWORD)
    assert answer.status_code in (200, 401), answer.text
    body: dict[str, Any] = answer.json
    return body


def add_passkey(api: ApiClient, authenticator: Authenticator, name: str = "Laptop") -> Any:
    """Options, the authenticator's new credential, the answer (an app sends back its
    ``ceremony``)."""
    return passkey_ceremony(
        api,
        "/account/passkeys/options",
        "/account/passkeys",
        lambda options: authenticator.create(options)[1],
        name=name,
    )


def passkey_sign_in(api: ApiClient, authenticator: Authenticator) -> Any:
    return passkey_ceremony(api, "/auth/passkey/options", "/auth/passkey", authenticator.get)


@pytest.fixture
def authenticator() -> Authenticator:
    return Authenticator(ORIGIN)


# --- two-factor authentication ----------------------------------------------------------------


def test_enrol_then_sign_in_with_a_code(clock: Any, api: ApiClient, user: Account) -> None:
    api.sign_in(user.email, PASSWORD)
    off = api.get("/account/two-factor")
    assert off.status_code == 200
    assert off.json["enabled"] is False
    assert off.json["required"] is False
    setup = api.post("/account/two-factor/setup")
    wrong = api.post("/account/two-factor", {"code": "000000"})
    assert wrong.status_code == 400
    assert "code" in wrong.json["error"]["fields"]
    right = api.post("/account/two-factor", {"code": code_at(setup.json["secret"])})
    assert right.status_code == 200
    assert len(right.json["recovery_codes"]) == 10
    on = api.get("/account/two-factor").json
    assert on["enabled"] is True
    assert on["enabled_at"] is not None
    assert on["unused_recovery_codes"] == 10
    # Already on: no second enrolment, and no fresh secret to start one.
    assert api.post("/account/two-factor", {"code": "000000"}).status_code == 409
    assert api.post("/account/two-factor/setup").status_code == 409

    clock.shift(STEP)
    assert sign_in_again(api, user.email)["pending"]["stage"] == "two_factor"
    passed = api.post("/auth/two-factor", {"code": code_at(setup.json["secret"])})
    assert passed.status_code == 200
    assert passed.json["user"]["email"] == user.email


def test_new_recovery_codes_void_the_old_ones(clock: Any, api: ApiClient, user: Account) -> None:
    api.sign_in(user.email, PASSWORD)
    _, first = enrol(api, clock)
    renewed = api.post("/account/two-factor/recovery-codes")
    assert renewed.status_code == 200
    second = renewed.json["recovery_codes"]
    assert len(second) == 10
    assert not set(first) & set(second)

    sign_in_again(api, user.email)
    assert api.post("/auth/two-factor", {"code": first[0]}).status_code == 400
    assert api.post("/auth/two-factor", {"code": second[0]}).status_code == 200
    assert api.get("/account/two-factor").json["unused_recovery_codes"] == 9


def test_switching_it_off(clock: Any, api: ApiClient, user: Account) -> None:
    api.sign_in(user.email, PASSWORD)
    enrol(api, clock)
    off = api.delete("/account/two-factor")
    assert off.status_code == 200
    assert off.json["message"] == "Two-factor authentication is off."
    assert api.get("/account/two-factor").json["enabled"] is False
    assert api.post("/account/two-factor/recovery-codes").status_code == 409
    assert api.delete("/account/two-factor").status_code == 200  # off it stays
    assert "user" in sign_in_again(api, user.email)  # no code asked


def test_required_two_factor_stays_on(clock: Any, make_app: Any, user_factory: Any) -> None:
    app = make_app(GATEHOUSE_MFA_REQUIRED="all")
    account = user_factory(email="bob@example.com", username="bob")
    api = ApiClient(app, "app")
    assert api.sign_in(account.email, PASSWORD).json["pending"]["stage"] == "two_factor_enrolment"
    setup = api.get("/auth/two-factor/setup")
    assert api.post("/auth/two-factor/setup", {"code": code_at(setup.json["secret"])}).json["user"]
    status = api.get("/account/two-factor").json
    assert status["enabled"] is True
    assert status["required"] is True
    refused = api.delete("/account/two-factor")
    assert refused.status_code == 403
    assert "requires" in refused.json["error"]["message"]
    assert api.get("/account/two-factor").json["enabled"] is True


def test_an_unconfirmed_address_cannot_enrol(make_app: Any, user_factory: Any) -> None:
    app = make_app(GATEHOUSE_EMAIL_CONFIRMATION="optional")
    account = user_factory(email="carol@example.com", username="carol", confirmed=False)
    api = signed_in(app, "browser", account)
    assert api.post("/account/two-factor/setup").status_code == 400
    assert api.post("/account/two-factor", {"code": "123456"}).status_code == 400
    assert api.get("/account/two-factor").json["enabled"] is False


def test_forgetting_a_trusted_browser(clock: Any, app: Flask, user: Account) -> None:
    api = signed_in(app, "browser", user)
    secret, _ = enrol(api, clock)
    sign_in_again(api, user.email)
    trusted = api.post("/auth/two-factor", {"code": code_at(secret), "trust_browser": True})
    assert trusted.status_code == 200
    (browser,) = api.get("/account/two-factor").json["trusted_browsers"]
    assert set(browser) == {"id", "device", "created_at", "last_used_at", "expires_at"}
    assert "user" in sign_in_again(api, user.email)  # trusted: no code asked

    forgot = api.delete(f"/account/trusted-browsers/{browser['id']}")
    assert forgot.status_code == 200
    assert api.get("/account/two-factor").json["trusted_browsers"] == []
    assert api.delete(f"/account/trusted-browsers/{browser['id']}").status_code == 404
    assert sign_in_again(api, user.email)["pending"]["stage"] == "two_factor"


def test_another_account_s_browser_is_not_found(
    clock: Any, app: Flask, user: Account, user_factory: Any
) -> None:
    owner = signed_in(app, "browser", user)
    secret, _ = enrol(owner, clock)
    sign_in_again(owner, user.email)
    owner.post("/auth/two-factor", {"code": code_at(secret), "trust_browser": True})
    (browser,) = owner.get("/account/two-factor").json["trusted_browsers"]
    stranger = signed_in(app, "app", user_factory(email="mallory@example.com", username="mal"))
    assert stranger.delete(f"/account/trusted-browsers/{browser['id']}").status_code == 404
    assert len(owner.get("/account/two-factor").json["trusted_browsers"]) == 1


def test_the_page_and_the_api_share_the_enrolment_limit(make_app: Any, user_factory: Any) -> None:
    app = make_app(GATEHOUSE_ACCOUNT_CHANGE_LIMIT="3 per hour")
    account = user_factory(email="dan@example.com", username="dan")
    api = signed_in(app, "app", account)
    assert api.post("/account/two-factor/setup").status_code == 200
    for _ in range(2):
        assert api.post("/account/two-factor", {"code": "000000"}).status_code == 400
    assert api.post("/account/two-factor", {"code": "000000"}).status_code == 429
    page = app.test_client()
    login(page, account.email)
    assert page.post("/account/two-factor", data={"code": "000000"}).status_code == 429


# --- passkeys ---------------------------------------------------------------------------------


def test_a_passkey_added_renamed_signed_in_with_and_removed(
    api: ApiClient, user: Account, authenticator: Authenticator
) -> None:
    api.sign_in(user.email, PASSWORD)
    empty = api.get("/account/passkeys")
    assert empty.status_code == 200
    assert empty.json["passkeys"] == []
    assert empty.json["limit"] == 10
    added = add_passkey(api, authenticator, "My phone")
    assert added.status_code == 201, added.text
    passkey = added.json["passkey"]
    assert passkey["name"] == "My phone"
    assert passkey["kind"] == "passkey"
    assert passkey["last_used_at"] is None
    assert added.json["needs_recovery_codes"] is False
    assert api.get("/account/passkeys").json["passkeys"] == [passkey]

    url = f"/account/passkeys/{passkey['id']}"
    assert api.call("PATCH", url, {"name": "Work phone"}).status_code == 200
    for bad in ("", "   ", "x" * 65):
        refused = api.call("PATCH", url, {"name": bad})
        assert refused.status_code == 400
        assert "name" in refused.json["error"]["fields"]
    (listed,) = api.get("/account/passkeys").json["passkeys"]
    assert listed["name"] == "Work phone"

    assert api.delete("/auth/session").status_code == 200
    signed = passkey_sign_in(api, authenticator)
    assert signed.status_code == 200, signed.text
    assert signed.json["user"]["email"] == user.email
    assert api.get("/account/passkeys").json["passkeys"][0]["last_used_at"] is not None

    assert api.delete(url).status_code == 200
    assert api.delete(url).status_code == 404
    assert api.call("PATCH", url, {"name": "Gone"}).status_code == 404
    assert api.delete("/auth/session").status_code == 200
    assert passkey_sign_in(api, authenticator).status_code == 401


def test_a_refused_passkey_is_not_added(
    app: Flask, user: Account, authenticator: Authenticator
) -> None:
    api = signed_in(app, "browser", user)
    options = api.post("/account/passkeys/options").json["publicKey"]
    authenticator.origin = "https://evil.example"
    _, credential = authenticator.create(options)
    refused = api.post("/account/passkeys", {"credential": credential})
    assert refused.status_code == 400
    assert "credential" in refused.json["error"]["fields"]
    assert api.post("/account/passkeys", {"name": "No credential"}).status_code == 400
    too_long = api.post("/account/passkeys", {"credential": credential, "name": "x" * 65})
    assert "name" in too_long.json["error"]["fields"]
    assert api.get("/account/passkeys").json["passkeys"] == []


def test_a_passkey_cannot_be_renamed_or_removed_by_another_account(
    app: Flask, user: Account, user_factory: Any, authenticator: Authenticator
) -> None:
    owner = signed_in(app, "app", user)
    passkey = add_passkey(owner, authenticator).json["passkey"]
    stranger = signed_in(app, "browser", user_factory(email="mallory@example.com", username="m"))
    url = f"/account/passkeys/{passkey['id']}"
    assert stranger.call("PATCH", url, {"name": "Mine now"}).status_code == 404
    assert stranger.delete(url).status_code == 404
    assert owner.get("/account/passkeys").json["passkeys"] == [passkey]


def test_the_last_required_security_key_stays(clock: Any, make_app: Any, user_factory: Any) -> None:
    app = make_app(GATEHOUSE_PASSKEYS="second-factor-only", GATEHOUSE_MFA_REQUIRED="all")
    account = user_factory(email="erin@example.com", username="erin")
    api = ApiClient(app, "browser")
    assert api.sign_in(account.email, PASSWORD).json["pending"]["stage"] == "two_factor_enrolment"
    assert api.post("/auth/two-factor/setup/later").status_code == 200
    key = Authenticator(ORIGIN, user_verified=False)
    added = add_passkey(api, key, "")
    assert added.status_code == 201
    assert added.json["passkey"]["kind"] == "security_key"
    assert added.json["passkey"]["name"] == "Security key 1"
    assert added.json["needs_recovery_codes"] is True
    assert api.get("/account/passkeys").json["second_factor_only"] is True
    refused = api.delete(f"/account/passkeys/{added.json['passkey']['id']}")
    assert refused.status_code == 403
    assert len(api.get("/account/passkeys").json["passkeys"]) == 1


def test_passkeys_off_are_not_found(make_app: Any, user_factory: Any) -> None:
    app = make_app(GATEHOUSE_PASSKEYS="off")
    api = signed_in(app, "app", user_factory(email="fay@example.com", username="fay"))
    assert api.get("/account/passkeys").status_code == 404
    assert api.post("/account/passkeys/options").status_code == 404
    assert api.post("/account/passkeys", {"credential": {}}).status_code == 404
    assert api.call("PATCH", "/account/passkeys/1", {"name": "x"}).status_code == 404
    assert api.delete("/account/passkeys/1").status_code == 404


# --- who may reach them -----------------------------------------------------------------------

ROUTES = [
    ("GET", "/account/two-factor", None),
    ("POST", "/account/two-factor/setup", {}),
    ("POST", "/account/two-factor", {"code": "123456"}),
    ("DELETE", "/account/two-factor", None),
    ("POST", "/account/two-factor/recovery-codes", {}),
    ("DELETE", "/account/trusted-browsers/1", None),
    ("GET", "/account/passkeys", None),
    ("POST", "/account/passkeys/options", {}),
    ("POST", "/account/passkeys", {"credential": {}}),
    ("PATCH", "/account/passkeys/1", {"name": "x"}),
    ("DELETE", "/account/passkeys/1", None),
]


def test_a_personal_access_token_never_reaches_them(app: Flask, user: Account) -> None:
    page = app.test_client()
    login(page, user.email)
    token = create_token(page, scopes=("read", "write"))
    api = ApiClient(app, "app")
    for method, path, body in ROUTES:
        answer = api.call(method, path, body, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, (method, path)
        assert answer.json["error"]["code"] == 401


# As on the account page, forgetting a trusted browser needs only a session.
def test_a_stale_session_must_enter_its_password_again(
    clock: Any, api: ApiClient, user: Account
) -> None:
    api.sign_in(user.email, PASSWORD)
    clock.shift(timedelta(minutes=16))
    for method, path, body in ROUTES:
        if "trusted" in path:
            continue
        answer = api.call(method, path, body)
        assert answer.status_code == 401, (method, path)
        assert "password again" in answer.json["error"]["message"]


def test_a_browser_client_must_send_its_csrf_token(
    clock: Any, app: Flask, user: Account, authenticator: Authenticator
) -> None:
    api = signed_in(app, "browser", user)
    enrol(api, clock)
    passkey = add_passkey(api, authenticator).json["passkey"]
    assert api.http.delete("/api/v1/browser/account/two-factor").status_code == 403
    forged = api.http.delete(f"/api/v1/browser/account/passkeys/{passkey['id']}")
    assert forged.status_code == 403
    assert api.get("/account/two-factor").json["enabled"] is True
    assert len(api.get("/account/passkeys").json["passkeys"]) == 1


def test_deletes_and_renames_are_limited_like_posts(
    make_app: Any, user_factory: Any, clock: Any
) -> None:
    app = make_app(GATEHOUSE_ACCOUNT_CHANGE_LIMIT="2 per hour")
    account = user_factory(email="erin@example.com", username="erin")
    api = signed_in(app, "app", account)
    enrol(api, clock)
    assert api.delete("/account/two-factor").status_code == 200
    assert api.delete("/account/two-factor").status_code == 200  # already off: still counted
    limited = api.delete("/account/two-factor")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    # The rename route has its own counter, and counts PATCHes.
    for _ in range(2):
        assert api.call("PATCH", "/account/passkeys/1", {"name": "x"}).status_code == 404
    assert api.call("PATCH", "/account/passkeys/1", {"name": "x"}).status_code == 429
