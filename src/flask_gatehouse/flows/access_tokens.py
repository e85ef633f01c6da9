"""Personal access tokens on the signed-in owner's account: list, create (shown once, mailed
as a notice), revoke. Every change is audited."""

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from ..models import AccessToken, User
from ..services import access_tokens, audit, mail
from ..services.transaction import commit

#: The lifetimes the page offers, in days (capped at GATEHOUSE_ACCESS_TOKEN_MAX_AGE); 30 first.
LIFETIMES = (30, 7, 90, 366)


@dataclass(frozen=True)
class Overview:
    tokens: list[AccessToken]
    scopes: tuple[str, ...]
    lifetimes: list[int]
    may_not_expire: bool


def overview(user: User) -> Overview:
    longest = current_app.config["GATEHOUSE_ACCESS_TOKEN_MAX_AGE"]
    return Overview(
        tokens=access_tokens.active_for(user),
        scopes=access_tokens.available_scopes(),
        lifetimes=[days for days in LIFETIMES if timedelta(days=days) <= longest],
        may_not_expire=bool(current_app.config["GATEHOUSE_ACCESS_TOKENS_MAY_NOT_EXPIRE"]),
    )


def create(user: User, *, name: str, scopes: list[str], lifetime_days: int | None) -> str:
    """A new token (``lifetime_days`` None: never expires, where the host allows it; the
    form checked the choices), audited and mailed to the owner: the token itself, to show
    this once."""
    lifetime = timedelta(days=lifetime_days) if lifetime_days is not None else None
    record, token = access_tokens.issue(user, name=name, scopes=scopes, lifetime=lifetime)
    audit.record("access_token_created", "success", user=user, detail=f"{name} ({record.prefix})")
    mail.send(
        "access_token_created",
        to=user.email,
        username=user.username,
        name=name,
        scopes=", ".join(scopes),
        tokens_link=mail.link("gatehouse.access_tokens"),
        reset_link=mail.link("gatehouse.forgot_password"),
    )
    commit()
    return token


def revoke(user: User, token_id: int) -> bool:
    """Revoke one of the owner's tokens; False when it is not theirs (or already gone)."""
    revoked = access_tokens.revoke(user, token_id)
    if revoked:
        audit.record("access_token_revoked", "success", user=user, detail=f"token {token_id}")
    commit()
    return revoked
