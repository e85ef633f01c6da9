"""Social login through OpenID Connect and OAuth 2.0 providers: the flow from the button to
the provider and back. ``services/oidc`` speaks the protocol; the account rules (new
accounts, addresses that have accounts, linking) are ``flows/provider_accounts``'s.
"""

from typing import Literal

from flask import current_app
from flask_login import current_user

from .. import messages, signals
from ..services import oidc, sessions, throttle
from ..services.identities import ProviderIdentity
from ..services.redirects import safe_next
from . import provider_accounts
from .provider_accounts import Finished

Purpose = Literal["sign_in", "link"]

#: Keys of what ``begin`` keeps about a flow, beside Authlib's state, nonce and verifier.
_PURPOSE, _NEXT, _USER = "gatehouse_purpose", "gatehouse_next", "gatehouse_user"


def begin(
    provider: oidc.Provider, purpose: Purpose, *, redirect_uri: str, next_url: str | None
) -> str:
    """The provider's authorization URL for a sign-in (or, for the signed-in user, a link),
    with the flow's purpose kept in this browser's session beside its state."""
    keep = {_PURPOSE: purpose, _NEXT: safe_next(next_url)}
    if purpose == "link":
        keep[_USER] = current_user.get_id()
    return oidc.authorization_url(provider, redirect_uri, **keep)


def finish(provider: oidc.Provider, state_value: str | None) -> Finished:
    """The provider's callback: check it belongs to a flow this browser started, read who
    signed in there, then sign in or link. A failed callback counts against this client's
    failed logins, as a wrong password does (GATEHOUSE_LOGIN_IP_LIMIT)."""
    throttle.refuse_failing_ip()
    started = oidc.started_flow(provider, state_value)
    if started is None:
        return provider_accounts.refused(provider, messages.SOCIAL_FLOW_INVALID)
    try:
        found = oidc.identity(provider)
    except oidc.ProviderError as error:
        if error.unreachable:
            return Finished("refused", message=str(error), status=503)
        return provider_accounts.refused(provider, str(error))
    if started.get(_PURPOSE) == "link":
        finished = _link(provider, found, started.get(_USER))
    else:
        finished = provider_accounts.sign_in(provider, found, started.get(_NEXT))
    user = finished.signed_in_user
    if user is not None:
        signals.provider_token.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            user=user,
            provider=provider.key,
            token=provider.client.token,
        )
    return finished


def _link(provider: oidc.Provider, found: ProviderIdentity, started_by: object) -> Finished:
    """Link the provider account to the signed-in user who started the flow, while their
    re-authentication is recent (the page that started it asked for it)."""
    if not current_user.is_authenticated or current_user.get_id() != started_by:
        return provider_accounts.refused(provider, messages.SOCIAL_LINK_SIGNED_OUT, status=403)
    if not sessions.is_recently_authenticated():
        return provider_accounts.refused(provider, messages.SOCIAL_LINK_NOT_RECENT, status=403)
    return provider_accounts.link(provider, found, current_user._get_current_object())
