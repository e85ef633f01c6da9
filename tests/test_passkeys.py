"""Passkeys over HTTP: the JSON ceremonies that static/gatehouse/passkeys.js drives, answered
by a software authenticator (tests/webauthn_authenticator.py) that signs with real keys, so the
server's rules run on real signatures: the relying party from configuration, single-use
challenges bound to the browser, the user handle, user verification, the signature counter,
whose credential may re-authenticate whom, the limit, the modes. The browser tests drive the
same endpoints from Chromium's virtual authenticator."""

import json
import random
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from flask_gatehouse.models import Event, User, WebAuthnCredential
from flask_gatehouse.services import audit
from flask_gatehouse.services.database import db
from tests.conftest import Account, all_mail_sent, csrf_token, login, logout
from tests.smtp import Mailbox, link_path, text
from tests.test_two_factor import clock, code_at, enrol, send_code
from tests.webauthn_authenticator import Authenticator, b64url, unb64url

ORIGIN = "https://gatehouse.test"
__all__ = ["clock"]


def token_of(client: FlaskClient, page: str) -> str:
    response = client.get(page)
    assert response.status_code == 200, (page, response.status_code)
    return csrf_token(response)


def post_json(client: FlaskClient, url: str, token: str, body: Any = None) -> TestResponse:
    return client.post(url, json=body if body is not None else {}, headers={"X-CSRFToken": token})


def add_passkey(
    client: FlaskClient, authenticator: Authenticator, name: str = "Laptop"
) -> TestResponse:
    """The account page's "Add a passkey": options, the authenticator's answer, the result."""
    token = token_of(client, "/account/passkeys")
    options = post_json(client, "/account/passkeys/options", token)
    assert options.status_code == 200, options.text
    _, credential = authenticator.create(options.json["publicKey"])
    return post_json(client, "/account/passkeys", token, {"credential": credential, "name": name})


def passkey_sign_in(
    client: FlaskClient, authenticator: Authenticator, passkey: Any = None
) -> TestResponse:
    token = token_of(client, "/login")
    options = post_json(client, "/login/passkey/options", token)
    assert options.status_code == 200, options.text
    answer = authenticator.get(options.json["publicKey"], passkey)
    return post_json(client, "/login/passkey", token, {"credential": answer})


def notices(mailbox: Mailbox, address: str, subject: str) -> list[Any]:
    assert all_mail_sent()
    return [m for m in mailbox.to(address) if subject in m["Subject"]]


def signed_in(client: FlaskClient) -> bool:
    return client.get("/blogs").status_code == 200


def events(app: Flask, kind: str) -> list[Event]:
    with app.app_context():
        return [e for e in audit.recent(limit=None) if e.kind == kind]


def stored(app: Flask) -> list[WebAuthnCredential]:
    with app.app_context():
        return list(db().session.scalars(select(WebAuthnCredential)))


@pytest.fixture
def authenticator() -> Authenticator:
    return Authenticator(ORIGIN)


@pytest.fixture
def with_passkey(logged_in: FlaskClient, authenticator: Authenticator) -> FlaskClient:
    """Alice, signed in, with one passkey; the client signed out again."""
    assert add_passkey(logged_in, authenticator).json == {"redirect": "/account/passkeys"}
    logout(logged_in)
    return logged_in


def test_a_passkey_signs_in_without_a_password(
    app: Flask,
    logged_in: FlaskClient,
    authenticator: Authenticator,
    user: Account,
    mailbox: Mailbox,
) -> None:
    added = add_passkey(logged_in, authenticator, "My phone")
    assert added.status_code == 200
    page = logged_in.get("/account/passkeys")
    assert "My phone" in page.text
    assert len(notices(mailbox, user.email, "A passkey was added to your account")) == 1
    logout(logged_in)
    assert not signed_in(logged_in)

    answer = passkey_sign_in(logged_in, authenticator)
    assert answer.status_code == 200
    assert answer.json == {"redirect": "/blogs"}
    assert signed_in(logged_in)
    assert "Hi alice" in logged_in.get("/blogs").text
    assert [e.user_id for e in events(app, "login") if e.outcome == "success"][-1] == user.id


def test_the_passkey_is_stored_without_the_user_id(
    app: Flask, with_passkey: FlaskClient, authenticator: Authenticator, user: Account
) -> None:
    (record,) = stored(app)
    passkey = authenticator.passkeys[0]
    assert record.credential_id == passkey.credential_id
    assert (record.kind, record.name, record.sign_count) == ("passkey", "Laptop", 0)
    assert record.backup_eligible
    assert record.backup_state
    assert len(passkey.user_handle) == 32
    assert passkey.user_handle not in (str(user.id).encode(), user.id.to_bytes(8, "big"))
    # The same handle for every passkey of the account.
    login(with_passkey, user.email)
    token = token_of(with_passkey, "/account/passkeys")
    options = post_json(with_passkey, "/account/passkeys/options", token).json["publicKey"]
    assert unb64url(options["user"]["id"]) == passkey.user_handle
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert [unb64url(c["id"]) for c in options["excludeCredentials"]] == [passkey.credential_id]


def test_the_relying_party_comes_from_configuration_not_the_host_header(
    make_app: Any, user_factory: Any
) -> None:
    # The test client keeps cookies per host, so the CSRF check (bound to the session
    # cookie) is off here: the question is only where the RP id comes from.
    app = make_app(WTF_CSRF_ENABLED=False)
    client = app.test_client()
    options = client.post("/login/passkey/options", json={}, headers={"Host": "evil.example"})
    assert options.status_code == 200, options.text
    assert options.json["publicKey"]["rpId"] == "gatehouse.test"
    app.config["GATEHOUSE_WEBAUTHN_RP_ID"] = "example.test"
    options = client.post("/login/passkey/options", json={}, headers={"Host": "evil.example"})
    assert options.json["publicKey"]["rpId"] == "example.test"


def test_a_passkey_for_another_origin_is_refused(
    with_passkey: FlaskClient, authenticator: Authenticator
) -> None:
    authenticator.origin = "https://evil.example"
    answer = passkey_sign_in(with_passkey, authenticator)
    assert answer.status_code == 400
    assert answer.json["error"]["message"].startswith("That passkey was not accepted")
    assert not signed_in(with_passkey)


def test_a_challenge_works_once_in_the_browser_it_was_given_to(
    app: Flask, with_passkey: FlaskClient, authenticator: Authenticator
) -> None:
    token = token_of(with_passkey, "/login")
    options = post_json(with_passkey, "/login/passkey/options", token).json["publicKey"]
    answer = authenticator.get(options)

    other = app.test_client()  # another browser cannot answer this browser's challenge
    other_token = token_of(other, "/login")
    stolen = post_json(other, "/login/passkey", other_token, {"credential": answer})
    assert stolen.status_code == 400
    assert not signed_in(other)

    assert (
        post_json(with_passkey, "/login/passkey", token, {"credential": answer}).status_code == 200
    )
    logout(with_passkey)
    token = token_of(with_passkey, "/login")
    replayed = post_json(with_passkey, "/login/passkey", token, {"credential": answer})
    assert replayed.status_code == 400
    assert not signed_in(with_passkey)


def test_a_challenge_expires_after_five_minutes(
    with_passkey: FlaskClient, authenticator: Authenticator
) -> None:
    token = token_of(with_passkey, "/login")
    options = post_json(with_passkey, "/login/passkey/options", token).json["publicKey"]
    answer = authenticator.get(options)
    with time_machine.travel(timedelta(minutes=5, seconds=1)):
        late = post_json(with_passkey, "/login/passkey", token, {"credential": answer})
    assert late.status_code == 400
    assert not signed_in(with_passkey)


def test_a_passkey_that_did_not_verify_its_user_does_not_sign_in(
    with_passkey: FlaskClient, authenticator: Authenticator
) -> None:
    authenticator.user_verified = False
    assert passkey_sign_in(with_passkey, authenticator).status_code == 400
    assert not signed_in(with_passkey)


def test_a_counter_that_goes_backwards_flags_the_passkey_and_tells_the_owner(
    app: Flask,
    with_passkey: FlaskClient,
    authenticator: Authenticator,
    user: Account,
    mailbox: Mailbox,
) -> None:
    assert passkey_sign_in(with_passkey, authenticator).status_code == 200
    logout(with_passkey)
    passkey = authenticator.passkeys[0]
    passkey.sign_count = 0  # a copy made before that sign-in: its counter is behind
    assert passkey_sign_in(with_passkey, authenticator).status_code == 400
    assert not signed_in(with_passkey)
    (record,) = stored(app)
    assert record.flagged_at is not None
    (notice,) = notices(mailbox, user.email, "One of your passkeys may have been copied")
    assert "Laptop" in text(notice)
    assert [e.outcome for e in events(app, "passkey_flagged")] == ["failure"]
    # Refused from then on, whatever its counter says.
    passkey.sign_count = 100
    assert passkey_sign_in(with_passkey, authenticator).status_code == 400
    login(with_passkey, user.email)
    assert "possibly cloned" in with_passkey.get("/account/passkeys").text


def test_a_passkey_counts_as_both_factors(
    clock: Any, logged_in: FlaskClient, authenticator: Authenticator, user: Account
) -> None:
    enrol(logged_in)
    assert add_passkey(logged_in, authenticator).status_code == 200
    logout(logged_in)
    assert passkey_sign_in(logged_in, authenticator).json == {"redirect": "/blogs"}
    assert signed_in(logged_in)


def test_a_passkey_is_a_second_factor_after_the_password(
    clock: Any, logged_in: FlaskClient, authenticator: Authenticator, user: Account
) -> None:
    enrol(logged_in)
    assert add_passkey(logged_in, authenticator).status_code == 200
    logout(logged_in)
    assert login(logged_in, user.email).headers["Location"] == "/login/two-factor"
    page = logged_in.get("/login/two-factor")
    assert 'data-gatehouse="passkey-second-factor"' in page.text
    token = csrf_token(page)
    options = post_json(logged_in, "/login/two-factor/passkey/options", token).json["publicKey"]
    assert [unb64url(c["id"]) for c in options["allowCredentials"]] == [
        authenticator.passkeys[0].credential_id
    ]
    assert options["userVerification"] == "discouraged"
    authenticator.user_verified = False  # a security key without a PIN is a second factor
    answer = authenticator.get(options)
    done = post_json(logged_in, "/login/two-factor/passkey", token, {"credential": answer})
    assert done.json == {"redirect": "/blogs"}
    assert signed_in(logged_in)


def test_re_authentication_takes_only_the_users_own_passkey(
    app: Flask,
    clock: Any,
    logged_in: FlaskClient,
    authenticator: Authenticator,
    user: Account,
    user_factory: Any,
) -> None:
    assert add_passkey(logged_in, authenticator).status_code == 200
    bob = user_factory(email="bob@example.com", username="bob")
    other = app.test_client()
    login(other, bob.email)
    assert add_passkey(other, authenticator, "Bob's").status_code == 200
    alice_key, bob_key = authenticator.passkeys

    clock.shift(timedelta(minutes=16))
    assert logged_in.get("/account/password").headers["Location"].startswith("/reauthenticate")
    page = logged_in.get("/reauthenticate?next=/account/password")
    assert 'data-gatehouse="passkey-reauthenticate"' in page.text
    token = csrf_token(page)
    options = post_json(logged_in, "/reauthenticate/passkey/options", token).json["publicKey"]
    assert [unb64url(c["id"]) for c in options["allowCredentials"]] == [alice_key.credential_id]
    forged = authenticator.get(options, bob_key)
    url = "/reauthenticate/passkey?next=/account/password"
    assert post_json(logged_in, url, token, {"credential": forged}).status_code == 400
    assert logged_in.get("/account/password").status_code == 302

    options = post_json(logged_in, "/reauthenticate/passkey/options", token).json["publicKey"]
    own = authenticator.get(options, alice_key)
    done = post_json(logged_in, url, token, {"credential": own})
    assert done.json == {"redirect": "/account/password"}
    assert logged_in.get("/account/password").status_code == 200


def test_an_account_has_at_most_ten(logged_in: FlaskClient, authenticator: Authenticator) -> None:
    for number in range(10):
        assert add_passkey(logged_in, authenticator, f"Key {number}").status_code == 200
    page = logged_in.get("/account/passkeys")
    token = csrf_token(page)
    full = post_json(logged_in, "/account/passkeys/options", token)
    assert full.status_code == 400
    assert "as many passkeys as an account may have" in full.json["error"]["message"]


def test_rename_and_remove(
    app: Flask, logged_in: FlaskClient, authenticator: Authenticator, user_factory: Any
) -> None:
    assert add_passkey(logged_in, authenticator, "Old name").status_code == 200
    (record,) = stored(app)
    token = token_of(logged_in, "/account/passkeys")
    logged_in.post(
        f"/account/passkeys/{record.id}/rename", data={"csrf_token": token, "name": "New"}
    )
    assert "New" in logged_in.get("/account/passkeys").text

    bob = user_factory(email="bob@example.com", username="bob")
    other = app.test_client()
    login(other, bob.email)
    other_token = token_of(other, "/account/passkeys")
    taken = other.post(f"/account/passkeys/{record.id}/delete", data={"csrf_token": other_token})
    assert "That passkey no longer exists." in other.get(taken.headers["Location"]).text
    assert len(stored(app)) == 1

    logged_in.post(f"/account/passkeys/{record.id}/delete", data={"csrf_token": token})
    assert stored(app) == []
    logout(logged_in)
    assert passkey_sign_in(logged_in, authenticator).status_code == 400


def test_the_export_lists_passkeys_without_keys(
    app: Flask, logged_in: FlaskClient, authenticator: Authenticator
) -> None:
    assert add_passkey(logged_in, authenticator).status_code == 200
    (record,) = stored(app)
    exported = logged_in.get("/account/data")
    (listed,) = exported.json["passkeys"]
    assert listed["name"] == "Laptop"
    assert listed["kind"] == "passkey"
    assert "public_key" not in listed
    assert record.public_key.hex() not in exported.text


def test_ceremonies_need_the_csrf_token(with_passkey: FlaskClient) -> None:
    answer = with_passkey.post("/login/passkey/options", json={})
    assert answer.status_code == 400
    assert answer.json["error"]["code"] == 400


@pytest.mark.parametrize("body", [[], {"credential": "text"}, {"credential": {"id": 1}}])
def test_a_malformed_answer_is_a_clean_400(with_passkey: FlaskClient, body: Any) -> None:
    token = token_of(with_passkey, "/login")
    post_json(with_passkey, "/login/passkey/options", token)
    assert post_json(with_passkey, "/login/passkey", token, body).status_code == 400


def test_passkeys_off(make_app: Any, user_factory: Any) -> None:
    app = make_app(GATEHOUSE_PASSKEYS="off")
    user = user_factory(email="carol@example.com", username="carol")
    client = app.test_client()
    page = client.get("/login")
    assert 'data-gatehouse="passkey-sign-in"' not in page.text
    token = csrf_token(page)
    assert post_json(client, "/login/passkey/options", token).status_code == 404
    login(client, user.email)
    assert client.get("/account/passkeys").status_code == 404
    assert "Passkeys" not in client.get("/account").text


def test_security_keys_only(make_app: Any, user_factory: Any) -> None:
    """ "second-factor-only": no passwordless sign-in; the key registered is a second factor,
    which password sign-ins then ask for."""
    app = make_app(GATEHOUSE_PASSKEYS="second-factor-only")
    user = user_factory(email="dan@example.com", username="dan")
    client = app.test_client()
    token = token_of(client, "/login")
    assert post_json(client, "/login/passkey/options", token).status_code == 404
    login(client, user.email)
    key = Authenticator(ORIGIN, user_verified=False)
    token = token_of(client, "/account/passkeys")
    options = post_json(client, "/account/passkeys/options", token).json["publicKey"]
    assert options["authenticatorSelection"]["userVerification"] == "discouraged"
    _, credential = key.create(options)
    added = post_json(client, "/account/passkeys", token, {"credential": credential, "name": ""})
    assert added.json == {"redirect": "/account/two-factor"}
    logout(client)

    assert login(client, user.email).headers["Location"] == "/login/two-factor"
    token = token_of(client, "/login/two-factor")
    options = post_json(client, "/login/two-factor/passkey/options", token).json["publicKey"]
    done = post_json(client, "/login/two-factor/passkey", token, {"credential": key.get(options)})
    assert done.json == {"redirect": "/blogs"}
    assert signed_in(client)


def test_a_wrong_code_still_works_beside_a_passkey(
    clock: Any, logged_in: FlaskClient, authenticator: Authenticator, user: Account
) -> None:
    secret, _ = enrol(logged_in)
    assert add_passkey(logged_in, authenticator).status_code == 200
    logout(logged_in)
    clock.shift(timedelta(seconds=30))
    login(logged_in, user.email)
    assert send_code(logged_in, code_at(secret)).status_code == 302
    assert signed_in(logged_in)


# --- accounts without a password --------------------------------------------------------------


def passkey_sign_up(
    client: FlaskClient, authenticator: Authenticator, email: str, username: str = "erin"
) -> TestResponse:
    """The sign-up page's "Create a passkey instead of a password"."""
    page = client.get("/register")
    assert 'data-gatehouse="passkey-sign-up"' in page.text
    token = csrf_token(page)
    body = {"email": email, "username": username}
    options = post_json(client, "/register/passkey/options", token, body)
    assert options.status_code == 200, options.text
    assert options.json["publicKey"]["user"]["name"] == email.lower()
    _, credential = authenticator.create(options.json["publicKey"])
    return post_json(client, "/register/passkey", token, {"credential": credential})


def test_an_account_can_be_made_with_a_passkey_instead_of_a_password(
    app: Flask, client: FlaskClient, authenticator: Authenticator, mailbox: Mailbox
) -> None:
    answer = passkey_sign_up(client, authenticator, "erin@example.com")
    assert answer.json == {"redirect": "/login"}
    (record,) = stored(app)
    with app.app_context():
        owner = db().session.get(User, record.user_id)
        assert owner is not None
        assert owner.password_hash is None
        assert owner.webauthn_user_handle == authenticator.passkeys[0].user_handle

    # Not before the address is confirmed: the passkey proves who it is, so the page says why.
    early = passkey_sign_in(client, authenticator)
    assert early.status_code == 400
    assert "Confirm your email address first" in early.json["error"]["message"]
    assert not signed_in(client)
    assert all_mail_sent()
    confirmations = [m for m in mailbox.to("erin@example.com") if "Confirm" in m["Subject"]]
    assert len(confirmations) == 2  # the sign-up's, and a fresh one at the early sign-in
    path = link_path(confirmations[-1], "/confirm/")
    client.post(path, data={"csrf_token": csrf_token(client.get(path))})

    assert passkey_sign_in(client, authenticator).json == {"redirect": "/blogs"}
    assert "Hi erin" in client.get("/blogs").text


def test_a_passkey_sign_up_for_a_taken_address_answers_the_same_and_mails_the_owner(
    app: Flask, client: FlaskClient, user: Account, mailbox: Mailbox
) -> None:
    new = passkey_sign_up(app.test_client(), Authenticator(ORIGIN), "frank@example.com")
    squatter = Authenticator(ORIGIN)
    taken = passkey_sign_up(client, squatter, user.email)
    assert (taken.status_code, taken.json) == (new.status_code, new.json)
    assert len(stored(app)) == 1  # frank's: nothing was added to alice's account
    assert notices(mailbox, user.email, "Someone tried to create an account")
    assert passkey_sign_in(client, squatter).status_code == 400
    assert login(client, user.email).headers["Location"] == "/blogs"


def test_a_passkey_sign_up_checks_the_form(client: FlaskClient) -> None:
    token = token_of(client, "/register")
    bad = post_json(
        client, "/register/passkey/options", token, {"email": "not an address", "username": ""}
    )
    assert bad.status_code == 400
    assert set(bad.json["error"]["fields"]) == {"email", "username"}
    # No sign-up under way in this browser: an answer alone creates nothing.
    orphan = Authenticator(ORIGIN)
    options = {"challenge": "AAAA", "rp": {"id": "gatehouse.test"}, "user": {"id": "AAAA"}}
    _, credential = orphan.create(options)
    assert (
        post_json(client, "/register/passkey", token, {"credential": credential}).status_code == 400
    )


def test_a_passwordless_account_recovers_through_a_reset(
    app: Flask, client: FlaskClient, authenticator: Authenticator, mailbox: Mailbox
) -> None:
    """Its recovery path is the reset link, which gives it a password."""
    passkey_sign_up(client, authenticator, "gina@example.com")
    token = csrf_token(client.get("/forgot"))
    client.post("/forgot", data={"csrf_token": token, "email": "gina@example.com"})
    assert all_mail_sent()
    (message,) = [m for m in mailbox.to("gina@example.com") if "Reset" in m["Subject"]]
    path = link_path(message, "/reset/")
    form = {"csrf_token": csrf_token(client.get(path)), "password": "a brand new passphrase 7"}
    assert client.post(path, data=form).headers["Location"] == "/login"
    assert login(client, "gina@example.com", "a brand new passphrase 7").status_code == 302
    assert signed_in(client)


def test_a_passkey_squatter_loses_the_account_when_the_owner_resets_its_password(
    app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    """Someone signed up with the owner's address and a passkey of their own, and waits: the
    owner's reset (the first proof of the address) takes the squatter's passkey away."""
    squatter = Authenticator(ORIGIN)
    passkey_sign_up(app.test_client(), squatter, "hana@example.com")
    owner = app.test_client()
    token = csrf_token(owner.get("/forgot"))
    owner.post("/forgot", data={"csrf_token": token, "email": "hana@example.com"})
    assert all_mail_sent()
    (message,) = [m for m in mailbox.to("hana@example.com") if "Reset" in m["Subject"]]
    path = link_path(message, "/reset/")
    form = {"csrf_token": csrf_token(owner.get(path)), "password": "a brand new passphrase 7"}
    assert owner.post(path, data=form).headers["Location"] == "/login"
    assert stored(app) == []
    assert passkey_sign_in(client, squatter).status_code == 400
    assert not signed_in(client)


# --- a passkey in place of the code where a password is typed too ----------------------------


def test_a_reset_takes_a_passkey_in_place_of_the_code(
    clock: Any,
    logged_in: FlaskClient,
    authenticator: Authenticator,
    user: Account,
    mailbox: Mailbox,
) -> None:
    """A two-factor account's reset asks for the second factor: a passkey will do."""
    enrol(logged_in)
    assert add_passkey(logged_in, authenticator).status_code == 200
    logout(logged_in)
    token = token_of(logged_in, "/forgot")
    logged_in.post("/forgot", data={"csrf_token": token, "email": user.email})
    assert all_mail_sent()
    (message,) = [m for m in mailbox.to(user.email) if "Reset" in m["Subject"]]
    path = link_path(message, "/reset/")
    page = logged_in.get(path)
    assert 'data-gatehouse="passkey-second-step"' in page.text
    token = csrf_token(page)
    options = post_json(logged_in, f"{path}/passkey/options", token).json["publicKey"]
    assert options["userVerification"] == "discouraged"
    form = {"csrf_token": token, "password": "a brand new passphrase 7"}

    other = Authenticator(ORIGIN)  # a key the account does not have
    stray, _ = other.create(
        {"challenge": "AAAA", "rp": {"id": "gatehouse.test"}, "user": {"id": "AAAA"}}
    )
    refused = logged_in.post(
        path, data={**form, "passkey_assertion": json.dumps(other.get(options, stray))}
    )
    assert refused.status_code == 400
    assert login(logged_in, user.email).headers["Location"] == "/login/two-factor"  # unchanged

    options = post_json(logged_in, f"{path}/passkey/options", token).json["publicKey"]
    answer = json.dumps(authenticator.get(options))
    done = logged_in.post(path, data={**form, "passkey_assertion": answer})
    assert done.headers["Location"] == "/login"
    assert login(logged_in, user.email, "a brand new passphrase 7").status_code == 302


def test_a_security_key_re_authenticates_with_the_password(
    make_app: Any, user_factory: Any
) -> None:
    """ "second-factor-only": an account whose second factor is a security key alone."""
    app = make_app(GATEHOUSE_PASSKEYS="second-factor-only")
    user = user_factory(email="hal@example.com", username="hal")
    client = app.test_client()
    login(client, user.email)
    key = Authenticator(ORIGIN, user_verified=False)
    token = token_of(client, "/account/passkeys")
    options = post_json(client, "/account/passkeys/options", token).json["publicKey"]
    _, credential = key.create(options)
    post_json(client, "/account/passkeys", token, {"credential": credential, "name": "Key"})

    with time_machine.travel(timedelta(minutes=16)):
        assert client.get("/account/password").status_code == 302
        page = client.get("/reauthenticate?next=/account/password")
        assert 'data-gatehouse="passkey-second-step"' in page.text
        token = csrf_token(page)
        url = "/reauthenticate/second-factor/options"
        options = post_json(client, url, token).json["publicKey"]
        form = {
            "csrf_token": token,
            "password": user.password,
            "passkey_assertion": json.dumps(key.get(options)),
        }
        done = client.post("/reauthenticate?next=/account/password", data=form)
        assert done.headers["Location"] == "/account/password"
        assert client.get("/account/password").status_code == 200


def test_a_passwordless_account_sets_a_password_and_deletes_itself_without_one(
    app: Flask, client: FlaskClient, authenticator: Authenticator, mailbox: Mailbox
) -> None:
    """Its pages behind a recent re-authentication (a passkey) ask for no current password."""
    passkey_sign_up(client, authenticator, "ivy@example.com", "ivy")
    assert all_mail_sent()
    (message,) = [m for m in mailbox.to("ivy@example.com") if "Confirm" in m["Subject"]]
    path = link_path(message, "/confirm/")
    client.post(path, data={"csrf_token": csrf_token(client.get(path))})
    assert passkey_sign_in(client, authenticator).status_code == 200

    page = client.get("/account/password")
    assert 'name="current_password"' not in page.text
    form = {"csrf_token": csrf_token(page), "password": "ivy's first passphrase 42"}
    assert client.post("/account/password", data=form).headers["Location"] == "/account"
    logout(client)
    assert login(client, "ivy@example.com", "ivy's first passphrase 42").status_code == 302
    # Now it has a password, deleting asks for it.
    assert 'name="password"' in client.get("/account/delete").text


def test_a_passwordless_account_can_delete_itself(
    app: Flask, client: FlaskClient, authenticator: Authenticator, mailbox: Mailbox
) -> None:
    passkey_sign_up(client, authenticator, "jo@example.com", "jo")
    assert all_mail_sent()
    (message,) = [m for m in mailbox.to("jo@example.com") if "Confirm" in m["Subject"]]
    path = link_path(message, "/confirm/")
    client.post(path, data={"csrf_token": csrf_token(client.get(path))})
    assert passkey_sign_in(client, authenticator).status_code == 200
    page = client.get("/account/delete")
    assert 'name="password"' not in page.text
    done = client.post("/account/delete", data={"csrf_token": csrf_token(page)})
    assert done.headers["Location"] == "/login"
    assert stored(app) == []
    assert passkey_sign_in(client, authenticator).status_code == 400


def _corrupt(answer: dict[str, Any], field: str, seed: int) -> dict[str, Any]:
    """``answer`` with one of its binary fields damaged: truncated, a byte flipped, or junk."""
    rng = random.Random(seed)
    raw = bytearray(unb64url(answer["response"][field]))
    choice = rng.randrange(3)
    if choice == 0 and raw:
        raw = raw[: rng.randrange(len(raw))]
    elif choice == 1 and raw:
        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    else:
        raw = bytearray(rng.randbytes(rng.randrange(80)))
    return {**answer, "response": {**answer["response"], field: b64url(bytes(raw))}}


def test_damaged_answers_are_clean_refusals(
    with_passkey: FlaskClient, authenticator: Authenticator, user: Account
) -> None:
    """Whatever part of a signed answer is damaged, the answer is a 400, never a 500, and
    nobody is signed in."""
    fields = ["clientDataJSON", "authenticatorData", "signature", "userHandle"]
    for seed in range(40):
        token = token_of(with_passkey, "/login")
        options = post_json(with_passkey, "/login/passkey/options", token).json["publicKey"]
        answer = _corrupt(authenticator.get(options), fields[seed % len(fields)], seed)
        refused = post_json(with_passkey, "/login/passkey", token, {"credential": answer})
        assert refused.status_code == 400, (seed, refused.text)
        assert not signed_in(with_passkey)
    login(with_passkey, user.email)
    for seed in range(20):
        token = token_of(with_passkey, "/account/passkeys")
        options = post_json(with_passkey, "/account/passkeys/options", token).json["publicKey"]
        _, created = Authenticator(ORIGIN).create(options)
        field = ["clientDataJSON", "attestationObject"][seed % 2]
        damaged = _corrupt(created, field, seed)
        answer = post_json(with_passkey, "/account/passkeys", token, {"credential": damaged})
        assert answer.status_code in (400, 429), (seed, answer.text)
