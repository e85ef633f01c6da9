"""The provider side of social login: OpenID Connect (any provider, by its discovery URL) and
GitHub's plain OAuth 2.0, through Authlib's Flask client.

Every flow is the authorization code grant with PKCE (S256). Authlib keeps ``state``, the
PKCE verifier and the OIDC ``nonce`` in this browser's own Flask session (never a shared
cache: GHSA-jj8c-mmj3-mmgv), checks ``state`` on the way back and validates the ID token
(signature from the provider's JWKS, issuer, audience, expiry, nonce). Gatehouse then reads
``email`` and ``email_verified`` from userinfo, whose ``sub`` must be the ID token's.

The clients are built once per app from GATEHOUSE_OIDC_PROVIDERS (``configure``) and kept in
its state; each fetches its provider's discovery document at first use.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App
from flask import Flask, session
from joserfc.errors import JoseError

from .. import state
from .identities import ProviderIdentity

#: Seconds Gatehouse waits for a provider on each call (discovery, token, keys, userinfo).
TIMEOUT = 10

#: Known providers: what a host would otherwise look up. Microsoft's needs the tenant (the
#: directory's id or domain): its "common" endpoint issues tokens under each tenant's own
#: issuer, which no fixed check can match. Its ``email`` claim is not verified by Microsoft,
#: and Gatehouse treats it so (a confirmation link is mailed).
PRESETS: dict[str, dict[str, Any]] = {
    "google": {
        "name": "Google",
        "discovery_url": "https://accounts.google.com/.well-known/openid-configuration",
    },
    "microsoft": {
        "name": "Microsoft",
        "discovery_url": "https://login.microsoftonline.com/{tenant}/v2.0/"
        ".well-known/openid-configuration",
    },
    "gitlab": {
        "name": "GitLab",
        "discovery_url": "https://gitlab.com/.well-known/openid-configuration",
    },
    # GitHub speaks OAuth 2.0 only: no ID token, the address comes from /user/emails.
    "github": {
        "name": "GitHub",
        "authorize_url": "https://github.com/login/oauth/authorize",
        "token_url": "https://github.com/login/oauth/access_token",
        "api_base_url": "https://api.github.com/",
        "scopes": "read:user user:email",
    },
}
_OIDC_SCOPES = "openid email profile"
_KEYS = {
    "preset",
    "discovery_url",
    "client_id",
    "client_secret",
    "name",
    "scopes",
    "trusted",
    "tenant",
    "authorize_url",
    "token_url",
    "api_base_url",
}


@dataclass(frozen=True)
class Provider:
    """One configured provider: ``key`` is its short name (in its URLs), ``name`` its label.
    ``trusted`` links a verified address to an existing account without asking (the host
    vouches that the provider verifies addresses and never reassigns them)."""

    key: str
    name: str
    trusted: bool
    #: "oidc" (an ID token, then userinfo) or "github" (OAuth 2.0 and GitHub's user API).
    protocol: Literal["oidc", "github"]
    client: FlaskOAuth2App
    #: How the stages see a sign-in through it.
    method: str = "social"


class ProviderError(Exception):
    """The provider's answer cannot be trusted or used; str() is a sentence for the page.
    ``unreachable`` when the provider could not be reached (a 503, not the user's doing)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def configure(app: Flask) -> dict[str, Provider]:
    """The providers of GATEHOUSE_OIDC_PROVIDERS (a mapping, or its JSON from the environment:
    ``app.config.from_prefixed_env`` parses it), checked at start-up so a mistake fails
    with the fix in the message, not at a user's first click."""
    setting = app.config["GATEHOUSE_OIDC_PROVIDERS"]
    if not isinstance(setting, Mapping):
        raise RuntimeError(
            "GATEHOUSE_OIDC_PROVIDERS must map a short name to a provider's settings, e.g. "
            '{"google": {"preset": "google", "client_id": "...", "client_secret": "..."}}.'
        )
    return {key: _provider(key, settings) for key, settings in setting.items()}


#: Short names that are Gatehouse's own pages under /login/ (their rules would win).
_RESERVED = {"passkey", "two-factor", "new-password"}


def _provider(key: str, settings: object) -> Provider:
    where = f"GATEHOUSE_OIDC_PROVIDERS[{key!r}]"
    if not key.replace("-", "").replace("_", "").isalnum() or not key.isascii():
        raise RuntimeError(f"{where}: a provider's short name is letters, digits, - and _.")
    if key in _RESERVED:
        raise RuntimeError(f"{where}: /login/{key} is one of Gatehouse's pages; pick another name.")
    if not isinstance(settings, Mapping):
        raise RuntimeError(f"{where} must be a mapping of settings.")
    unknown = set(settings) - _KEYS
    if unknown:
        raise RuntimeError(f"{where} has unknown settings: {', '.join(sorted(unknown))}.")
    preset_name = settings.get("preset")
    if preset_name is not None and preset_name not in PRESETS:
        raise RuntimeError(f"{where}: preset must be one of {', '.join(PRESETS)}.")
    merged = {**PRESETS.get(preset_name or "", {}), **settings}
    for required in ("client_id", "client_secret"):
        if not merged.get(required):
            raise RuntimeError(f"{where} needs a {required}.")
    if preset_name == "microsoft":
        tenant = merged.get("tenant")
        if not tenant or tenant in ("common", "organizations", "consumers"):
            raise RuntimeError(
                f"{where}: the microsoft preset needs your tenant (the directory's id or "
                "domain): tokens from the shared endpoints carry each tenant's own issuer."
            )
        merged["discovery_url"] = merged["discovery_url"].format(tenant=tenant)
    scopes = merged.get("scopes", _OIDC_SCOPES)
    scope = " ".join(scopes) if isinstance(scopes, list | tuple) else str(scopes)
    client_kwargs: dict[str, Any] = {
        "code_challenge_method": "S256",
        "scope": scope,
        "default_timeout": TIMEOUT,
    }
    if merged.get("discovery_url"):
        if "openid" not in scope.split():
            raise RuntimeError(f"{where}: an OpenID Connect provider's scopes include openid.")
        protocol: Literal["oidc", "github"] = "oidc"
        endpoints: dict[str, Any] = {"server_metadata_url": merged["discovery_url"]}
    elif all(merged.get(name) for name in ("authorize_url", "token_url", "api_base_url")):
        protocol = "github"
        endpoints = {
            "authorize_url": merged["authorize_url"],
            "access_token_url": merged["token_url"],
            "api_base_url": merged["api_base_url"],
        }
    else:
        raise RuntimeError(
            f"{where} needs a discovery_url (OpenID Connect) or a preset ({', '.join(PRESETS)})."
        )
    client = FlaskOAuth2App(
        FlaskIntegration(f"gatehouse_{key}"),
        name=f"gatehouse_{key}",
        client_id=merged["client_id"],
        client_secret=merged["client_secret"],
        client_kwargs=client_kwargs,
        **endpoints,
    )
    return Provider(
        key=key,
        name=str(merged.get("name") or key),
        trusted=bool(merged.get("trusted", False)),
        protocol=protocol,
        client=client,
    )


def providers() -> list[Provider]:
    """The current app's providers, in their configured order (for the buttons)."""
    return list(state.get().providers.values())


def find(key: str) -> Provider | None:
    return state.get().providers.get(key)


def authorization_url(provider: Provider, redirect_uri: str, **keep: Any) -> str:
    """Where to send the browser to sign in at ``provider``, remembering in this browser's
    session (with the state, nonce and PKCE verifier) what ``keep`` says about the flow.
    Only the newest flow per provider is kept: a browser that starts again drops the older
    one (and the session cookie stays small)."""
    client = provider.client
    prefix = f"_state_{client.name}_"
    for stale in [name for name in session if name.startswith(prefix)]:
        session.pop(stale)
    try:
        started = client.create_authorization_url(redirect_uri)
    except requests.RequestException as error:
        raise ProviderError(_UNREACHABLE, unreachable=True) from error
    client.save_authorize_data(redirect_uri=redirect_uri, **keep, **started)
    return cast(str, started["url"])


def started_flow(provider: Provider, state_value: str | None) -> dict[str, Any] | None:
    """What ``authorization_url`` kept for the flow the callback's ``state`` names, if this
    browser started it (a tampered, replayed or stale ``state`` finds nothing)."""
    if not state_value:
        return None
    found = provider.client.framework.get_state_data(session, state_value)
    return cast(dict[str, Any], found) if isinstance(found, dict) else None


_UNREACHABLE = "The provider could not be reached. Please try again in a moment."
_REFUSED = "The sign-in at the provider did not complete. Please try again."


def identity(provider: Provider) -> ProviderIdentity:
    """Finish the flow this callback request completes: exchange the code (with the PKCE
    verifier), validate the ID token, and read who signed in. Raises ProviderError."""
    try:
        token = provider.client.authorize_access_token()
        if provider.protocol == "github":
            return _github_identity(provider)
        return _oidc_identity(provider, token)
    except requests.RequestException as error:
        raise ProviderError(_UNREACHABLE, unreachable=True) from error
    except (OAuthError, JoseError, ValueError) as error:
        # ValueError: a token or userinfo answer that is not the JSON it should be.
        raise ProviderError(_REFUSED) from error


def _oidc_identity(provider: Provider, token: dict[str, Any]) -> ProviderIdentity:
    claims = token.get("userinfo")  # the ID token's claims, validated by Authlib
    if not claims:
        # Authlib validates an ID token only when one came: an OpenID Connect answer
        # without one proves nothing.
        raise ProviderError(_REFUSED)
    info = provider.client.userinfo()
    if info.get("sub") != claims["sub"]:
        raise ProviderError(_REFUSED)  # OpenID Connect Core 5.3.2
    email = info.get("email", claims.get("email"))
    verified = info.get("email_verified", claims.get("email_verified"))
    return ProviderIdentity(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        email=email if isinstance(email, str) else None,
        # Strictly true: a missing claim, or "false", is not verified.
        email_verified=verified is True or verified == "true",
        username=_first_text(info, "preferred_username", "nickname", "name"),
    )


def _github_identity(provider: Provider) -> ProviderIdentity:
    """GitHub: the account from /user, the address from /user/emails (the primary one, and
    verified only if GitHub says so: /user's public email may be any address)."""
    account, listed = _api_json(provider, "user"), _api_json(provider, "user/emails")
    if not isinstance(account, dict) or not isinstance(account.get("id"), int):
        raise ProviderError(_REFUSED)
    primary = next(
        (
            entry
            for entry in (listed if isinstance(listed, list) else [])
            if isinstance(entry, dict)
            and entry.get("primary")
            and isinstance(entry.get("email"), str)
        ),
        None,
    )
    return ProviderIdentity(
        issuer=str(provider.client.api_base_url),
        subject=str(account["id"]),
        email=primary["email"] if primary is not None else None,
        email_verified=primary is not None and primary.get("verified") is True,
        username=_first_text(account, "login", "name"),
    )


def _api_json(provider: Provider, path: str) -> Any:
    """GET one of the provider's API paths with the token the callback just obtained."""
    response: requests.Response = provider.client.get(path)  # type: ignore[no-untyped-call]
    response.raise_for_status()
    return response.json()


def _first_text(claims: Mapping[str, Any], *names: str) -> str | None:
    return next((claims[name] for name in names if isinstance(claims.get(name), str)), None)
