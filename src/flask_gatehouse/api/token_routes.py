"""Personal access tokens through the API: the twin of ``views.tokens``, with the same flow,
limits and messages.

Making a token needs a recent sign-in (a token is a credential); listing and revoking need a
session. A personal access token reaches none of these routes (``login_required`` without
scopes takes no token): tokens cannot make tokens.
"""

from typing import Any

from flask.typing import ResponseReturnValue

from .. import messages
from ..access import account_change_limits, login_required, recent_login_required, signed_in_user
from ..flows import access_tokens
from ..forms import AccessTokenForm
from ..models import AccessToken
from .guard import api_route, form
from .replies import invalid, refusal, reply, timestamp


def _listed(token: AccessToken) -> dict[str, Any]:
    """What the API says of a token: never the token itself, which is shown once."""
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "scopes": token.scopes.split(),
        "created_at": timestamp(token.created_at),
        "expires_at": timestamp(token.expires_at),
        "last_used_at": timestamp(token.last_used_at),
        "last_used_ip": token.last_used_ip,
    }


def _overview(found: access_tokens.Overview) -> dict[str, Any]:
    """The tokens, and the choices a new one has (``lifetime``: days, or "never")."""
    lifetimes = [str(days) for days in found.lifetimes]
    return {
        "tokens": [_listed(token) for token in found.tokens],
        "scopes": list(found.scopes),
        "lifetimes": [*lifetimes, "never"] if found.may_not_expire else lifetimes,
    }


@api_route
@login_required
def list_tokens() -> ResponseReturnValue:
    return reply(_overview(access_tokens.overview(signed_in_user())))


@api_route
@account_change_limits("access_token")
@recent_login_required
def create_token() -> ResponseReturnValue:
    """``{name, scopes, lifetime}``: the new token, shown this once (its owner is mailed a
    notice), and the list it joined."""
    user = signed_in_user()
    found = access_tokens.overview(user)
    chosen = form(
        AccessTokenForm,
        scopes=found.scopes,
        lifetimes=found.lifetimes,
        may_not_expire=found.may_not_expire,
    )
    if not chosen.validate_on_submit():
        return invalid(chosen)
    token = access_tokens.create(
        user,
        name=chosen.clean_name,
        scopes=chosen.scopes.data or [],
        lifetime_days=chosen.lifetime_days,
    )
    return reply({"token": token, **_overview(access_tokens.overview(user))}, 201)


@api_route
@login_required
def revoke_token(token_id: int) -> ResponseReturnValue:
    if not access_tokens.revoke(signed_in_user(), token_id):
        return refusal(404, messages.TOKEN_GONE)
    return reply({"message": messages.TOKEN_REVOKED})
