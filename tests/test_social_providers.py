"""The social-login test providers behave like real ones, seen from Authlib's client."""

import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from tests import social_providers
from tests.social_providers import GitHubLikeProvider, OidcProvider

# The fixtures, bound by assignment: imported under their own names, each test's parameter
# of the same name would be a redefinition to ruff (F811).
oidc_provider = social_providers.oidc_provider
oidc = social_providers.oidc
github_provider = social_providers.github_provider
github = social_providers.github

REDIRECT_URI = "https://gatehouse.test/login/oidc/callback"


def oidc_client(auth_method: str = "client_secret_basic") -> OAuth2Session:
    return OAuth2Session(
        "gatehouse",
        "gatehouse-secret",
        scope="openid email profile",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method=auth_method,
    )


def sign_in(
    oidc: OidcProvider,
    account_id: str,
    nonce: str = "nonce",
    auth_method: str = "client_secret_basic",
) -> tuple[dict[str, Any], OAuth2Session]:
    """A complete code flow with PKCE for the gatehouse client: (token, Authlib session)."""
    client = oidc_client(auth_method)
    verifier = secrets.token_urlsafe(48)
    url, _ = client.create_authorization_url(
        oidc.metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    callback = oidc.login(url, account_id)
    assert callback.startswith(REDIRECT_URI + "?")
    token: dict[str, Any] = client.fetch_token(
        oidc.metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    return token, client


def claims(oidc: OidcProvider, id_token: str) -> dict[str, Any]:
    """The claims of an ID token whose signature verifies with the provider's JWKS."""
    jwks = requests.get(oidc.metadata["jwks_uri"], timeout=5).json()
    decoded: dict[str, Any] = jwt.decode(id_token, KeySet.import_key_set(jwks)).claims
    return decoded


def test_code_flow_with_pkce(oidc: OidcProvider) -> None:
    oidc.set_account("alice", email="Alice@Example.test", email_verified=False, name=None)

    token, client = sign_in(oidc, "alice", nonce="n-1")

    id_token = claims(oidc, token["id_token"])
    assert id_token["iss"] == oidc.issuer
    assert id_token["aud"] == "gatehouse"
    assert id_token["sub"] == "alice"
    assert id_token["nonce"] == "n-1"
    assert "email" not in id_token
    userinfo = client.get(oidc.metadata["userinfo_endpoint"]).json()
    assert userinfo == {
        "sub": "alice",
        "email": "Alice@Example.test",
        "email_verified": False,
        "preferred_username": "alice",
    }


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_unknown_accounts_have_default_claims(oidc: OidcProvider, auth_method: str) -> None:
    _, client = sign_in(oidc, "bob", auth_method=auth_method)

    userinfo = client.get(oidc.metadata["userinfo_endpoint"]).json()
    assert userinfo["email"] == "bob@example.com"
    assert userinfo["email_verified"] is True


def test_authorization_without_pkce_is_refused(oidc: OidcProvider) -> None:
    url, state = oidc_client().create_authorization_url(oidc.metadata["authorization_endpoint"])

    callback = oidc.login(url, "alice")

    params = parse_qs(urlsplit(callback).query)
    assert params["error"] == ["invalid_request"]
    assert params["state"] == [state]


def test_cancelled_login_answers_access_denied(oidc: OidcProvider) -> None:
    url, _ = oidc_client().create_authorization_url(
        oidc.metadata["authorization_endpoint"], code_verifier=secrets.token_urlsafe(48)
    )

    callback = oidc.login(url, "alice", deny=True)

    assert parse_qs(urlsplit(callback).query)["error"] == ["access_denied"]


def test_swapped_id_token_replaces_the_next_one_only(oidc: OidcProvider) -> None:
    foreign = oidc.id_token_for(
        "other", "other-secret", "https://other.test/callback", "alice", "their-nonce"
    )
    oidc.swap_next_id_token(foreign)

    swapped, _ = sign_in(oidc, "alice")
    own, _ = sign_in(oidc, "alice")

    assert swapped["id_token"] == foreign
    assert claims(oidc, foreign)["aud"] == "other"
    assert claims(oidc, own["id_token"])["aud"] == "gatehouse"


def test_clock_offset_issues_expired_id_tokens(oidc: OidcProvider) -> None:
    oidc.set_clock_offset(-3600)

    token, client = sign_in(oidc, "alice")

    id_token = claims(oidc, token["id_token"])
    assert time.time() - 3610 < id_token["iat"] < time.time() - 3590
    assert id_token["exp"] < time.time() - 2400
    assert client.get(oidc.metadata["userinfo_endpoint"]).ok  # the access token is still good
    oidc.reset()
    token, _ = sign_in(oidc, "alice")
    assert claims(oidc, token["id_token"])["exp"] > time.time()


def github_client(github: GitHubLikeProvider, scope: str = "read:user user:email") -> OAuth2Session:
    return OAuth2Session(
        github.client_id,
        github.client_secret,
        scope=scope,
        redirect_uri="https://gatehouse.test/login/github/callback",
        code_challenge_method="S256",
    )


def test_github_flow(github: GitHubLikeProvider) -> None:
    github.set_user(
        id=42,
        login="hubber",
        name="Hub Ber",
        emails=[
            {"email": "hub@example.com", "primary": True},
            {"email": "old@example.com", "verified": False},
        ],
    )
    client = github_client(github)
    verifier = secrets.token_urlsafe(48)
    url, _ = client.create_authorization_url(github.authorize_url, code_verifier=verifier)

    callback = github.authorize(url)
    token = client.fetch_token(
        github.token_url, authorization_response=callback, code_verifier=verifier
    )

    assert token["token_type"] == "bearer"
    assert token["scope"] == "read:user,user:email"
    user = client.get(github.api_base_url + "user").json()
    assert user == {"id": 42, "login": "hubber", "name": "Hub Ber", "email": None}
    assert client.get(github.api_base_url + "user/emails").json() == [
        {"email": "hub@example.com", "primary": True, "verified": True, "visibility": None},
        {"email": "old@example.com", "primary": False, "verified": False, "visibility": None},
    ]
    with pytest.raises(OAuthError, match="bad_verification_code"):
        client.fetch_token(
            github.token_url, authorization_response=callback, code_verifier=verifier
        )


def test_github_answers_form_encoded_without_accept_json(github: GitHubLikeProvider) -> None:
    client = github_client(github, scope="read:user")
    verifier = secrets.token_urlsafe(48)
    url, _ = client.create_authorization_url(github.authorize_url, code_verifier=verifier)
    code = parse_qs(urlsplit(github.authorize(url)).query)["code"][0]

    response = requests.post(
        github.token_url,
        data={
            "client_id": github.client_id,
            "client_secret": github.client_secret,
            "code": code,
            "redirect_uri": "https://gatehouse.test/login/github/callback",
            "code_verifier": verifier,
        },
        timeout=5,
    )

    answer = parse_qs(response.text)
    assert answer["token_type"] == ["bearer"]
    headers = {"Authorization": f"token {answer['access_token'][0]}"}
    user = requests.get(github.api_base_url + "user", headers=headers, timeout=5).json()
    assert user["email"] == "octocat@example.com"
    emails = requests.get(github.api_base_url + "user/emails", headers=headers, timeout=5)
    assert emails.status_code == 404  # no user:email scope


@pytest.mark.parametrize(
    ("deny", "pkce", "error"),
    [(True, True, "access_denied"), (False, False, "invalid_request")],
)
def test_github_refusals(github: GitHubLikeProvider, deny: bool, pkce: bool, error: str) -> None:
    github.deny_next = deny
    extra = {"code_verifier": secrets.token_urlsafe(48)} if pkce else {}
    url, state = github_client(github).create_authorization_url(github.authorize_url, **extra)

    params = parse_qs(urlsplit(github.authorize(url)).query)

    assert params["error"] == [error]
    assert params["state"] == [state]
    assert "code" not in params
