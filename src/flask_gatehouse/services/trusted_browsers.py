"""Trusted browsers: "trust this browser" after a second-factor code spares that browser the
code at its next sign-ins, for GATEHOUSE_TWO_FACTOR_TRUST_DURATION.

Each is a server-side record (listed on the account page, revocable one by one, all revoked
by a password change or reset and by switching two-factor off), bound to the browser by a
random token in a cookie of its own; the table holds its SHA-256, as for sessions. A browser
holds one such cookie: trusting it for a second account replaces the first one's. The
password is still needed: trust skips only the code.
"""

import secrets
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, delete, select, update

from ..models import TrustedBrowser, User, utcnow
from . import client, transport
from .database import db
from .sessions import describe_device, digest

_COOKIE = "gatehouse_trusted_browser"
_MAX_TOKEN_LENGTH = 64


def trust(user: User) -> None:
    """Trust this browser for ``user`` from now on. The record its cookie held until now
    (perhaps another account's) goes, as do the user's expired ones. Joins the current
    transaction. An app client keeps no such cookie (``transport``): nothing is trusted."""
    if transport.is_app():
        return
    lifetime = current_app.config["GATEHOUSE_TWO_FACTOR_TRUST_DURATION"]
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session = db().session
    session.execute(
        delete(TrustedBrowser).where(
            TrustedBrowser.user_id == user.id, TrustedBrowser.expires_at <= now
        )
    )
    replaced = _cookie_token()
    if replaced is not None:
        session.execute(delete(TrustedBrowser).where(TrustedBrowser.token_hash == digest(replaced)))
    session.add(
        TrustedBrowser(
            token_hash=digest(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + lifetime,
            last_used_at=now,
            ip=client.ip(),
            device=describe_device(client.user_agent()),
        )
    )
    transport.keep(_COOKIE, token, max_age=lifetime)


def vouches_for(user: User) -> bool:
    """Whether this browser is trusted by ``user`` now; its last use is recorded when it is.
    Joins the current transaction."""
    token = _cookie_token()
    if token is None:
        return False
    now = utcnow()
    result = cast(
        CursorResult[Any],
        db().session.execute(
            update(TrustedBrowser)
            .where(
                TrustedBrowser.token_hash == digest(token),
                TrustedBrowser.user_id == user.id,
                TrustedBrowser.expires_at > now,
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount == 1


def _cookie_token() -> str | None:
    token = transport.read(_COOKIE)
    return token if token and len(token) <= _MAX_TOKEN_LENGTH else None


def active_for(user: User) -> list[TrustedBrowser]:
    """The user's trusted browsers still in force, most recently used first."""
    records = db().session.scalars(
        select(TrustedBrowser)
        .where(TrustedBrowser.user_id == user.id, TrustedBrowser.expires_at > utcnow())
        .order_by(TrustedBrowser.last_used_at.desc(), TrustedBrowser.id.desc())
    )
    return list(records)


def revoke(user: User, browser_id: int) -> bool:
    """Stop trusting one of ``user``'s browsers; False when it is not theirs or already gone.
    Joins the current transaction."""
    result = cast(
        CursorResult[Any],
        db().session.execute(
            delete(TrustedBrowser).where(
                TrustedBrowser.id == browser_id, TrustedBrowser.user_id == user.id
            )
        ),
    )
    return bool(result.rowcount)


def revoke_all(user: User) -> int:
    """Stop trusting every browser of ``user``; how many were. Joins the current transaction."""
    result = cast(
        CursorResult[Any],
        db().session.execute(delete(TrustedBrowser).where(TrustedBrowser.user_id == user.id)),
    )
    return result.rowcount
