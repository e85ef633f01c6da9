"""Social login against real providers: node's oidc-provider (OpenID Connect, PKCE required)
and a GitHub-shaped OAuth 2.0 server, both started by the suite (tests/social_providers.py).

The app runs in-process; the provider's pages are driven with requests, and the browser's
return to the callback is the test client's GET of the URL the provider redirected to.
"""

import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from blog import db
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_gatehouse import signals
from flask_gatehouse.models import Event, SocialIdentity, User
from tests.conftest import PASSWORD, Account, csrf_token, login, logout
from tests.smtp import Mailbox, link_path, text
from tests.social_providers import (
    GitHubLikeProvider,
    OidcProvider,
    github,
    github_provider,
    oidc,
    oidc_provider,
)
from tests.test_two_factor import clock, code_at, enrol, send_code

__all__ = ["clock", "github", "github_provider", "oidc", "oidc_provider"]

BASE = "https://gatehouse.test"


def providers(oidc: OidcProvider, github: GitHubLikeProvider) -> dict[str, Any]:
    client = {"client_id": "gatehouse", "client_secret": "gatehouse-secret"}
    return {
        "oidc": {"discovery_url": oidc.discovery_url, "name": "Example ID", **client},
        "oidc-trusted": {
            "discovery_url": oidc.discovery_url,
            "name": "Trusted ID",
            "trusted": True,
            **client,
        },
        "github": {
            "preset": "github",
            "client_id": github.client_id,
            "client_secret": github.client_secret,
            "authorize_url": github.authorize_url,
            "token_url": github.token_url,
            "api_base_url": github.api_base_url,
        },
    }


@pytest.fixture
def app(make_app: Any, oidc: OidcProvider, github: GitHubLikeProvider) -> Flask:
    made: Flask = make_app(GATEHOUSE_OIDC_PROVIDERS=providers(oidc, github))
    return made


def start(client: FlaskClient, key: str, **query: str) -> str:
    """Press the provider's button: the provider's authorization URL."""
    answer = client.get(f"/login/{key}" + (f"?{urlencode(query)}" if query else ""))
    assert answer.status_code == 302, answer.text
    location: str = answer.headers["Location"]
    return location


def back(client: FlaskClient, callback_url: str) -> TestResponse:
    """The browser's return from the provider to the app's callback."""
    assert callback_url.startswith(BASE), callback_url
    return client.get(callback_url.removeprefix(BASE))


def sign_in_with(
    client: FlaskClient, oidc: OidcProvider, account: str, key: str = "oidc"
) -> TestResponse:
    return back(client, oidc.login(start(client, key), account))


def sign_in_with_github(client: FlaskClient, github: GitHubLikeProvider) -> TestResponse:
    return back(client, github.authorize(start(client, "github")))


def signed_in_as(client: FlaskClient) -> str | None:
    page = client.get("/blogs")
    if page.status_code != 200:
        return None
    return page.text.split("Hi ", 1)[1].split("<", 1)[0].strip(" !")


def rows(app: Flask, model: Any, **where: Any) -> list[Any]:
    with app.app_context():
        return list(db.session.scalars(sa.select(model).filter_by(**where)))


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def nonce_of(authorize_url: str) -> str:
    return parse_qs(urlsplit(authorize_url).query)["nonce"][0]


# New accounts


def test_a_verified_address_no_account_has_makes_a_confirmed_account(
    app: Flask, client: FlaskClient, oidc: OidcProvider
) -> None:
    oidc.set_account(
        "carol", email="Carol@Example.com", email_verified=True, preferred_username="carol"
    )
    authorize = start(client, "oidc")
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"]
    assert query["state"]
    assert query["nonce"]
    answer = back(client, oidc.login(authorize, "carol"))
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/blogs"
    assert signed_in_as(client) == "carol"
    (user,) = rows(app, User, email="carol@example.com")
    assert user.email_confirmed_at is not None
    assert user.password_hash is None
    (identity,) = rows(app, SocialIdentity, user_id=user.id)
    assert (identity.issuer, identity.subject, identity.provider) == (oidc.issuer, "carol", "oidc")


def test_the_link_is_the_subject_not_the_address(
    app: Flask, client: FlaskClient, oidc: OidcProvider
) -> None:
    """The provider account keeps its account here when its address changes there; a new
    provider account with an old address gets no access to it."""
    oidc.set_account("carol", email="carol@example.com", email_verified=True)
    assert sign_in_with(client, oidc, "carol").status_code == 302
    logout(client)
    oidc.set_account("carol", email="carol.new@example.com", email_verified=True)
    assert sign_in_with(client, oidc, "carol").status_code == 302
    assert len(rows(app, User)) == 1
    (identity,) = rows(app, SocialIdentity)
    assert identity.email == "carol.new@example.com"
    logout(client)
    oidc.set_account("mallory", email="carol@example.com", email_verified=True)
    answer = sign_in_with(client, oidc, "mallory")
    assert answer.status_code == 409
    assert signed_in_as(client) is None


def test_an_unverified_address_signs_in_only_after_its_link(
    app: Flask, client: FlaskClient, oidc: OidcProvider, mailbox: Mailbox
) -> None:
    oidc.set_account("dave", email="dave@example.com", email_verified=False)
    answer = sign_in_with(client, oidc, "dave")
    assert answer.status_code == 403
    assert "Confirm your email address first" in answer.text
    assert signed_in_as(client) is None
    (message,) = mailbox.wait_for(1)
    assert message["To"] == "dave@example.com"
    # Signing in again before the link is followed still does not sign in.
    assert sign_in_with(client, oidc, "dave").status_code == 403
    assert signed_in_as(client) is None
    path = link_path(message, "/confirm/")
    client.post(path, data={"csrf_token": csrf_token(client.get(path))})
    assert sign_in_with(client, oidc, "dave").status_code == 302
    assert signed_in_as(client) == "dave"


def test_a_provider_squatter_loses_the_account_when_the_owner_resets_its_password(
    app: Flask, client: FlaskClient, oidc: OidcProvider, mailbox: Mailbox
) -> None:
    """Someone typed the owner's address at a provider that does not verify it, and waits for
    the owner to take the account over by a reset: the reset (the first proof of the
    address) unlinks the squatter's provider account."""
    oidc.set_account("mallory", email="owner@example.com", email_verified=False)
    assert sign_in_with(client, oidc, "mallory").status_code == 403
    (warning,) = mailbox.wait_for(1)
    assert "Example ID (owner@example.com)" in text(warning)
    assert "Confirm it only if that was you" in text(warning)
    owner = app.test_client()
    owner.post(
        "/forgot",
        data={"csrf_token": csrf_token(owner.get("/forgot")), "email": "owner@example.com"},
    )
    (reset,) = [m for m in mailbox.wait_for(2) if "Reset" in m["Subject"]]
    path = link_path(reset, "/reset/")
    form = {"csrf_token": csrf_token(owner.get(path)), "password": "a brand new passphrase 7"}
    assert owner.post(path, data=form).status_code == 302
    assert rows(app, SocialIdentity) == []
    assert sign_in_with(client, oidc, "mallory").status_code == 409
    assert signed_in_as(client) is None
    assert login(owner, "owner@example.com", "a brand new passphrase 7").status_code == 302


# Existing accounts


def test_an_existing_address_is_linked_only_after_signing_in_to_its_account(
    app: Flask, client: FlaskClient, oidc: OidcProvider, user: Account, mailbox: Mailbox
) -> None:
    oidc.set_account("alice-idp", email=user.email, email_verified=True)
    answer = sign_in_with(client, oidc, "alice-idp")
    assert answer.status_code == 409
    assert "already uses" in answer.text
    assert signed_in_as(client) is None
    assert rows(app, SocialIdentity) == []
    # The page's link: sign in to the account, then the provider once more, to link.
    offered = re.search(r'href="(/login\?next=[^"]+)"', answer.text)
    assert offered is not None
    assert unquote(offered.group(1)) == "/login?next=/account/connections/oidc"
    signed = login(client, user.email, next="/account/connections/oidc")
    assert signed.headers["Location"] == "/account/connections/oidc"
    authorize = client.get("/account/connections/oidc")
    assert authorize.status_code == 302
    linked = back(client, oidc.login(authorize.headers["Location"], "alice-idp"))
    assert linked.status_code == 302
    assert linked.headers["Location"] == "/account"
    assert "Example ID" in client.get("/account").text
    (identity,) = rows(app, SocialIdentity)
    assert identity.user_id == user.id
    assert any("was connected" in text(m) for m in mailbox.wait_for(1))
    logout(client)
    assert sign_in_with(client, oidc, "alice-idp").status_code == 302
    assert signed_in_as(client) == user.username


def test_a_trusted_provider_links_a_verified_address_and_evicts_an_unconfirmed_squatter(
    app: Flask, client: FlaskClient, oidc: OidcProvider, user_factory: Any
) -> None:
    """Someone made an account with the victim's address and never confirmed it (lying in
    wait): a trusted provider that verified the address hands the account to its owner, and
    the squatter's password stops working."""
    squatter = user_factory(email="victim@example.com", username="squatter", confirmed=False)
    oidc.set_account("victim", email="victim@example.com", email_verified=True)
    assert sign_in_with(client, oidc, "victim", key="oidc-trusted").status_code == 302
    assert signed_in_as(client) == "squatter"
    (row,) = rows(app, User, email="victim@example.com")
    assert row.password_hash is None
    assert row.email_confirmed_at is not None
    other = app.test_client()
    assert login(other, squatter.email, PASSWORD).status_code == 400
    assert signed_in_as(other) is None


def test_an_untrusted_provider_never_links_by_address(
    app: Flask, client: FlaskClient, oidc: OidcProvider, user: Account
) -> None:
    oidc.set_account("alice-idp", email=user.email, email_verified=False)
    assert sign_in_with(client, oidc, "alice-idp").status_code == 409
    assert sign_in_with(client, oidc, "alice-idp", key="oidc-trusted").status_code == 409
    assert rows(app, SocialIdentity) == []


def test_a_provider_account_linked_elsewhere_cannot_be_linked_again(
    app: Flask, client: FlaskClient, oidc: OidcProvider, user: Account
) -> None:
    oidc.set_account("carol", email="carol@example.com", email_verified=True)
    assert sign_in_with(app.test_client(), oidc, "carol").status_code == 302
    login(client, user.email)
    answer = back(
        client, oidc.login(client.get("/account/connections/oidc").headers["Location"], "carol")
    )
    assert answer.status_code == 409
    assert [row.user_id for row in rows(app, SocialIdentity)] != [user.id]


# Two-factor


def test_two_factor_still_applies_after_a_social_sign_in(
    app: Flask, client: FlaskClient, oidc: OidcProvider, clock: Any, user: Account
) -> None:
    login(client, user.email)
    secret, _ = enrol(client)
    oidc.set_account("alice-idp", email="alice.idp@example.com", email_verified=True)
    linked = back(
        client, oidc.login(client.get("/account/connections/oidc").headers["Location"], "alice-idp")
    )
    assert linked.status_code == 302
    logout(client)
    clock.shift(60)
    answer = sign_in_with(client, oidc, "alice-idp")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/login/two-factor"
    assert signed_in_as(client) is None
    assert send_code(client, code_at(secret)).status_code == 302
    assert signed_in_as(client) == user.username


# Callbacks that prove nothing


def test_a_tampered_state_is_refused(app: Flask, client: FlaskClient, oidc: OidcProvider) -> None:
    callback = oidc.login(start(client, "oidc"), "carol")
    answer = back(client, with_query(callback, state="forged-state"))
    assert answer.status_code == 400
    assert "expired or was already used" in answer.text
    assert signed_in_as(client) is None
    assert rows(app, User) == []


def test_a_callback_from_another_browser_is_refused(
    app: Flask, client: FlaskClient, oidc: OidcProvider
) -> None:
    """Login CSRF: an attacker's own callback URL planted in the victim's browser."""
    attacker = app.test_client()
    planted = oidc.login(start(attacker, "oidc"), "mallory")
    assert back(client, planted).status_code == 400
    assert signed_in_as(client) is None


def test_a_replayed_callback_is_refused(
    app: Flask, client: FlaskClient, oidc: OidcProvider
) -> None:
    callback = oidc.login(start(client, "oidc"), "carol")
    assert back(client, callback).status_code == 302
    logout(client)
    assert back(client, callback).status_code == 400
    assert signed_in_as(client) is None


def test_an_id_token_with_another_nonce_is_refused(
    app: Flask, client: FlaskClient, oidc: OidcProvider
) -> None:
    stolen = oidc.id_token_for(
        "gatehouse", "gatehouse-secret", f"{BASE}/login/oidc/callback", "carol", nonce="another"
    )
    authorize = start(client, "oidc")
    oidc.swap_next_id_token(stolen)
    answer = back(client, oidc.login(authorize, "carol"))
    assert answer.status_code == 400
    assert signed_in_as(client) is None
    assert rows(app, User) == []


def test_a_swapped_id_token_for_this_client_and_nonce_signs_in(
    app: Flask, client: FlaskClient, oidc: OidcProvider
) -> None:
    """The control of the two tests around it: a swapped token is refused for what is wrong
    in it, not for being swapped."""
    authorize = start(client, "oidc")
    genuine = oidc.id_token_for(
        "gatehouse",
        "gatehouse-secret",
        f"{BASE}/login/oidc/callback",
        "carol",
        nonce=nonce_of(authorize),
    )
    oidc.swap_next_id_token(genuine)
    assert back(client, oidc.login(authorize, "carol")).status_code == 302
    assert signed_in_as(client) == "carol"


def test_an_id_token_for_another_client_is_refused(
    app: Flask, client: FlaskClient, oidc: OidcProvider
) -> None:
    authorize = start(client, "oidc")
    foreign = oidc.id_token_for(
        "other", "other-secret", "https://other.test/callback", "carol", nonce=nonce_of(authorize)
    )
    oidc.swap_next_id_token(foreign)
    answer = back(client, oidc.login(authorize, "carol"))
    assert answer.status_code == 400
    assert signed_in_as(client) is None


def test_an_expired_id_token_is_refused(
    app: Flask, client: FlaskClient, oidc: OidcProvider
) -> None:
    authorize = start(client, "oidc")
    oidc.set_clock_offset(-3600)  # the provider issues a token that expired long ago
    answer = back(client, oidc.login(authorize, "carol"))
    assert answer.status_code == 400
    assert signed_in_as(client) is None


def test_a_provider_error_is_a_page_not_a_redirect(
    app: Flask, client: FlaskClient, github: GitHubLikeProvider
) -> None:
    github.deny_next = True
    answer = sign_in_with_github(client, github)
    assert answer.status_code == 400
    assert "did not complete" in answer.text
    assert signed_in_as(client) is None


def test_failed_callbacks_count_against_the_client_like_wrong_passwords(
    make_app: Any, oidc: OidcProvider, github: GitHubLikeProvider
) -> None:
    app = make_app(
        GATEHOUSE_OIDC_PROVIDERS=providers(oidc, github), GATEHOUSE_LOGIN_IP_LIMIT="2 per minute"
    )
    client = app.test_client()
    for _ in range(2):
        assert client.get("/login/oidc/callback?state=x&code=y").status_code == 400
    assert client.get("/login/oidc/callback?state=x&code=y").status_code == 429
    # The password form shares the limit.
    assert login(client, "someone@example.com", PASSWORD).status_code == 429


def test_an_unreachable_provider_is_a_503(make_app: Any) -> None:
    app = make_app(
        GATEHOUSE_OIDC_PROVIDERS={
            "down": {
                "discovery_url": "http://127.0.0.1:9/.well-known/openid-configuration",
                "client_id": "x",
                "client_secret": "y",
            }
        }
    )
    answer = app.test_client().get("/login/down")
    assert answer.status_code == 503
    assert "could not be reached" in answer.text


def test_an_unknown_provider_is_no_page(client: FlaskClient) -> None:
    assert client.get("/login/nowhere").status_code == 404
    assert client.get("/login/nowhere/callback?state=x").status_code == 404


# GitHub (OAuth 2.0, the address from /user/emails)


def test_github_signs_up_with_its_primary_verified_address(
    app: Flask, client: FlaskClient, github: GitHubLikeProvider
) -> None:
    github.set_user(
        id=4242,
        login="octo",
        name="Octo Cat",
        emails=[
            {"email": "old@example.com", "primary": False, "verified": True},
            {"email": "octo@example.com", "primary": True, "verified": True},
        ],
    )
    answer = sign_in_with_github(client, github)
    assert answer.status_code == 302
    assert signed_in_as(client) == "octo"
    (identity,) = rows(app, SocialIdentity)
    assert identity.subject == "4242"
    assert identity.email == "octo@example.com"


def test_github_with_an_unverified_primary_address_waits_for_confirmation(
    app: Flask, client: FlaskClient, github: GitHubLikeProvider, mailbox: Mailbox
) -> None:
    github.set_user(
        id=7,
        login="newbie",
        name="New",
        emails=[{"email": "new@example.com", "primary": True, "verified": False}],
    )
    assert sign_in_with_github(client, github).status_code == 403
    assert signed_in_as(client) is None
    assert mailbox.wait_for(1)[0]["To"] == "new@example.com"


def test_github_refuses_a_reused_code(
    app: Flask, client: FlaskClient, github: GitHubLikeProvider
) -> None:
    github.set_user(
        id=9,
        login="octo",
        name="Octo",
        emails=[{"email": "o@example.com", "primary": True, "verified": True}],
    )
    authorize = start(client, "github")
    callback = github.authorize(authorize)
    # Another browser starts its own flow and tries the first browser's code with its state.
    other = app.test_client()
    own = github.authorize(start(other, "github"))
    stolen = with_query(own, code=parse_qs(urlsplit(callback).query)["code"][0])
    assert back(client, callback).status_code == 302
    assert back(other, stolen).status_code == 400
    assert signed_in_as(other) is None


# Connected accounts


def test_unlinking_keeps_a_way_to_sign_in(
    app: Flask,
    client: FlaskClient,
    oidc: OidcProvider,
    github: GitHubLikeProvider,
    mailbox: Mailbox,
) -> None:
    oidc.set_account("carol", email="carol@example.com", email_verified=True)
    assert sign_in_with(client, oidc, "carol").status_code == 302
    (only,) = rows(app, SocialIdentity)
    page = client.get("/account")
    refused = client.post(
        f"/account/connections/{only.id}/remove", data={"csrf_token": csrf_token(page)}
    )
    assert refused.status_code == 302
    assert "only way to sign in" in client.get("/account").text
    assert len(rows(app, SocialIdentity)) == 1
    # A second provider account: now either may go.
    github.set_user(
        id=5,
        login="carol",
        name="Carol",
        emails=[{"email": "carol@example.com", "primary": True, "verified": True}],
    )
    authorize = client.get("/account/connections/github")
    assert authorize.status_code == 302
    assert back(client, github.authorize(authorize.headers["Location"])).status_code == 302
    assert len(rows(app, SocialIdentity)) == 2
    removed = client.post(
        f"/account/connections/{only.id}/remove",
        data={"csrf_token": csrf_token(client.get("/account"))},
    )
    assert removed.status_code == 302
    assert [row.provider for row in rows(app, SocialIdentity)] == ["github"]
    assert any("was disconnected" in text(m) for m in mailbox.wait_for(2))
    kinds = [event.kind for event in rows(app, Event)]
    assert "identity_linked" in kinds
    assert "identity_unlinked" in kinds
    logout(client)
    assert sign_in_with(client, oidc, "carol").status_code == 409  # the address has an account


def test_linking_needs_a_recent_sign_in(
    app: Flask, client: FlaskClient, user: Account, clock: Any
) -> None:
    login(client, user.email)
    clock.shift(20 * 60)  # past GATEHOUSE_REAUTHENTICATE_AFTER, within the idle timeout
    answer = client.get("/account/connections/oidc")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/reauthenticate")


def test_a_password_account_may_unlink_its_only_provider(
    app: Flask, client: FlaskClient, oidc: OidcProvider, user: Account
) -> None:
    login(client, user.email)
    oidc.set_account("alice-idp", email="x@example.com", email_verified=True)
    back(
        client, oidc.login(client.get("/account/connections/oidc").headers["Location"], "alice-idp")
    )
    (identity,) = rows(app, SocialIdentity)
    client.post(
        f"/account/connections/{identity.id}/remove",
        data={"csrf_token": csrf_token(client.get("/account"))},
    )
    assert rows(app, SocialIdentity) == []


def test_the_data_export_lists_connected_accounts_without_tokens(
    app: Flask, client: FlaskClient, oidc: OidcProvider
) -> None:
    oidc.set_account("carol", email="carol@example.com", email_verified=True)
    sign_in_with(client, oidc, "carol")
    data = client.get("/account/data")
    assert data.status_code == 200
    (connected,) = data.json["connected_accounts"]
    assert connected["subject"] == "carol"
    assert connected["issuer"] == oidc.issuer
    assert "token" not in data.text.lower().replace("access_tokens", "")


def test_the_provider_token_goes_to_the_host_not_the_database(
    app: Flask, client: FlaskClient, oidc: OidcProvider
) -> None:
    received: list[dict[str, Any]] = []

    def keep(sender: Flask, **extra: Any) -> None:
        received.append({**extra, "username": extra["user"].username})

    with signals.provider_token.connected_to(keep, app):
        assert sign_in_with(client, oidc, "carol").status_code == 302
    (sent,) = received
    assert sent["provider"] == "oidc"
    assert sent["username"] == "carol"
    assert sent["token"]["access_token"]
    with app.app_context():
        columns = [column.name for column in SocialIdentity.__table__.columns]
    assert not any("token" in name for name in columns)


def test_the_login_and_sign_up_pages_show_a_button_per_provider(client: FlaskClient) -> None:
    for page in ("/login?next=/blogs", "/register"):
        html = client.get(page).text
        assert 'href="/login/oidc' in html
        assert "Example ID" in html
        assert 'href="/login/github' in html
        assert "GitHub" in html


# Configuration


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"x": {"preset": "myspace", "client_id": "a", "client_secret": "b"}}, "preset must be"),
        ({"x": {"preset": "google", "client_secret": "b"}}, "needs a client_id"),
        ({"x": {"preset": "microsoft", "client_id": "a", "client_secret": "b"}}, "tenant"),
        ({"x": {"client_id": "a", "client_secret": "b"}}, "discovery_url"),
        (
            {"x": {"preset": "google", "client_id": "a", "client_secret": "b", "secret": 1}},
            "unknown",
        ),
        ({"bad/name": {"preset": "google", "client_id": "a", "client_secret": "b"}}, "short name"),
        ({"two-factor": {"preset": "google", "client_id": "a", "client_secret": "b"}}, "pages"),
        ("google", "must map"),
    ],
)
def test_a_wrong_provider_setting_fails_at_start_up(
    make_app: Any, settings: Any, complaint: str
) -> None:
    with pytest.raises(RuntimeError, match=complaint):
        make_app(GATEHOUSE_OIDC_PROVIDERS=settings)


def test_providers_can_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, make_app: Any
) -> None:
    monkeypatch.setenv(
        "FLASK_GATEHOUSE_OIDC_PROVIDERS",
        '{"google": {"preset": "google", "client_id": "a", "client_secret": "b"}}',
    )
    app = make_app()
    (button,) = [
        line
        for line in app.test_client().get("/login").text.splitlines()
        if "/login/google" in line
    ]
    assert "Sign in with Google" in button
