"""Personal access tokens through the JSON API, with both kinds of client: made (behind a
recent sign-in, shown once, mailed), listed and revoked by a session, never by a token."""

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask

from tests.api_clients import KINDS, ApiClient
from tests.conftest import PASSWORD, Account, all_mail_sent, login
from tests.smtp import Mailbox
from tests.test_access_tokens import TOKEN, create_token


@pytest.fixture(params=KINDS)
def api(request: pytest.FixtureRequest, app: Flask, user: Account) -> ApiClient:
    """A client signed in as Alice."""
    client = ApiClient(app, request.param)
    assert client.sign_in(user.email, PASSWORD).status_code == 200
    return client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_create_list_and_revoke(
    app: Flask, api: ApiClient, user: Account, mailbox: Mailbox
) -> None:
    empty = api.get("/account/tokens")
    assert empty.status_code == 200
    assert empty.json["tokens"] == []
    assert empty.json["scopes"] == ["read", "write"]
    assert empty.json["lifetimes"] == ["30", "7", "90", "366"]

    body = {"name": "  backup   script ", "scopes": ["read"], "lifetime": "7"}
    created = api.post("/account/tokens", body)
    assert created.status_code == 201, created.text
    token = created.json["token"]
    assert TOKEN.fullmatch(token)
    (listed,) = created.json["tokens"]
    assert listed["name"] == "backup script"
    assert listed["prefix"] == token[:8]
    assert listed["scopes"] == ["read"]
    assert listed["last_used_at"] is None

    stranger = app.test_client(use_cookies=False)
    assert stranger.get("/api/v1/account", headers=bearer(token)).json["email"] == user.email
    (again,) = api.get("/account/tokens").json["tokens"]
    assert token not in str(again)  # shown once
    assert again["last_used_at"] is not None
    assert again["last_used_ip"] == "127.0.0.1"
    assert again["expires_at"] > again["created_at"]
    assert all_mail_sent()
    assert mailbox.to(user.email)[-1]["Subject"].endswith("A personal access token was created")

    revoked = api.delete(f"/account/tokens/{listed['id']}")
    assert revoked.status_code == 200
    assert revoked.json["message"] == "Token revoked: it no longer works."
    assert stranger.get("/api/v1/account", headers=bearer(token)).status_code == 401
    assert api.get("/account/tokens").json["tokens"] == []
    assert api.delete(f"/account/tokens/{listed['id']}").status_code == 404


def test_a_token_cannot_reach_the_token_routes(app: Flask, api: ApiClient) -> None:
    """Tokens cannot make tokens, list them or revoke them, whatever their scopes."""
    created = api.post("/account/tokens", {"name": "ci", "scopes": ["read", "write"]})
    token, token_id = created.json["token"], created.json["tokens"][0]["id"]
    stranger = app.test_client(use_cookies=False)
    headers = bearer(token)
    assert stranger.get("/api/v1/account", headers=headers).status_code == 200
    tokens = "/api/v1/app/account/tokens"
    assert stranger.get(tokens, headers=headers).status_code == 401
    assert stranger.get("/api/v1/browser/account/tokens", headers=headers).status_code == 401
    more = {"name": "more", "scopes": ["read"]}
    assert stranger.post(tokens, json=more, headers=headers).status_code == 401
    assert stranger.delete(f"{tokens}/{token_id}", headers=headers).status_code == 401
    assert len(api.get("/account/tokens").json["tokens"]) == 1


def test_making_a_token_needs_a_recent_sign_in(app: Flask, api: ApiClient) -> None:
    later = timedelta(minutes=16)  # past GATEHOUSE_REAUTHENTICATE_AFTER (15 minutes)
    with time_machine.travel(later, tick=False):
        api.get("/auth/session")  # within the idle timeout: still signed in
        stale = api.post("/account/tokens", {"name": "ci", "scopes": ["read"]})
        assert stale.status_code == 401
        assert "recent sign-in" in stale.json["error"]["message"]
        assert api.get("/account/tokens").status_code == 200  # listing needs no fresh one
        assert api.post("/auth/reauthenticate", {"password": PASSWORD}).status_code == 200
        assert api.post("/account/tokens", {"name": "ci", "scopes": ["read"]}).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "ci", "scopes": []}, "scopes"),
        ({"name": "ci", "scopes": ["admin"]}, "scopes"),
        ({"name": "   ", "scopes": ["read"]}, "name"),
        ({"name": "ci", "scopes": ["read"], "lifetime": "never"}, "lifetime"),
        ({"name": "ci", "scopes": ["read"], "lifetime": "999"}, "lifetime"),
    ],
)
def test_the_body_is_checked(api: ApiClient, body: dict[str, Any], field: str) -> None:
    refused = api.post("/account/tokens", body)
    assert refused.status_code == 400
    assert set(refused.json["error"]["fields"]) == {field}


@pytest.mark.parametrize("scopes", ["read", [1], [["read"]], [{"a": "b"}], ["\ud800"]])
def test_scopes_are_a_list_of_texts(api: ApiClient, scopes: Any) -> None:
    refused = api.post("/account/tokens", {"name": "ci", "scopes": scopes})
    assert refused.status_code == 400
    assert api.get("/account/tokens").json["tokens"] == []


def test_a_host_may_allow_tokens_that_never_expire(make_app: Any, user_factory: Any) -> None:
    app = make_app(GATEHOUSE_ACCESS_TOKENS_MAY_NOT_EXPIRE=True)
    user = user_factory(email="kim@example.com", username="kim")
    api = ApiClient(app, "app")
    api.sign_in(user.email, PASSWORD)
    assert api.get("/account/tokens").json["lifetimes"][-1] == "never"
    created = api.post("/account/tokens", {"name": "ci", "scopes": ["read"], "lifetime": "never"})
    assert created.status_code == 201
    assert created.json["tokens"][0]["expires_at"] is None


def test_not_signed_in(app: Flask) -> None:
    api = ApiClient(app, "app")
    assert api.get("/account/tokens").status_code == 401
    assert api.post("/account/tokens", {"name": "ci", "scopes": ["read"]}).status_code == 401
    assert api.delete("/account/tokens/1").status_code == 401


def test_the_page_lists_what_the_api_made(app: Flask, api: ApiClient, user: Account) -> None:
    created = api.post("/account/tokens", {"name": "from the api", "scopes": ["write"]})
    page = app.test_client()
    assert login(page, user.email).status_code == 302
    assert "from the api" in page.get("/account/tokens").text
    assert create_token(page, name="from the page")
    names = [token["name"] for token in api.get("/account/tokens").json["tokens"]]
    assert sorted(names) == ["from the api", "from the page"]
    assert created.json["token"] not in page.get("/account/tokens").text
