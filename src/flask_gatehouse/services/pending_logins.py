"""Pending sign-ins: the first factor passed, a later stage has not, no session exists yet.

The client holds a random token (a browser in a cookie, an app in its ``X-Session-Token``:
``transport``); the table holds its SHA-256 (as for sessions), so the pending sign-in is bound
to the client that passed the first factor. It is short-lived
(5 minutes) and single use: finishing it deletes the row, which one request alone can do.
"""

import secrets
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update

from ..models import PendingLogin, User, utcnow
from . import transport
from .database import db
from .sessions import digest

#: How long the later stages may take.
LIFETIME = timedelta(minutes=5)
_COOKIE = "gatehouse_pending_login"
_MAX_TOKEN_LENGTH = 64


def start(user: User, *, stage: str, method: str, remember: bool, next_url: str | None) -> None:
    """Hold ``user``'s sign-in at ``stage`` and bind it to this client (the user's expired
    pending sign-ins are deleted on the way). Joins the current transaction."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session = db().session
    session.execute(
        delete(PendingLogin).where(PendingLogin.user_id == user.id, PendingLogin.expires_at <= now)
    )
    session.add(
        PendingLogin(
            token_hash=digest(token),
            user_id=user.id,
            stage=stage,
            method=method,
            remember=remember,
            next_url=next_url,
            created_at=now,
            expires_at=now + LIFETIME,
        )
    )
    transport.keep(_COOKIE, token, max_age=LIFETIME, apps_send_it=True)


def current(stage: str | None = None) -> PendingLogin | None:
    """This client's live pending sign-in waiting at ``stage`` (any stage by default), if
    any."""
    token = transport.read(_COOKIE, apps_send_it=True)
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    query = select(PendingLogin).where(
        PendingLogin.token_hash == digest(token), PendingLogin.expires_at > utcnow()
    )
    if stage is not None:
        query = query.where(PendingLogin.stage == stage)
    found: PendingLogin | None = db().session.scalar(query)
    return found


def finish(pending: PendingLogin) -> bool:
    """Spend ``pending`` and have a browser drop its cookie; False when a parallel request
    spent it first (or it expired meanwhile). Joins the current transaction."""
    session = db().session
    result = cast(
        CursorResult[Any],
        session.execute(
            delete(PendingLogin).where(
                PendingLogin.id == pending.id, PendingLogin.expires_at > utcnow()
            )
        ),
    )
    session.expunge(pending)  # its row is gone; its values stay readable
    transport.discard(_COOKIE)
    return bool(result.rowcount)


def count_code_attempt(pending: PendingLogin) -> int:
    """Count one more second-factor code tried on ``pending``, before it is checked (so
    parallel guesses cannot overrun the limit); how many have been tried, this one included.
    Joins the current transaction."""
    attempts = db().session.scalar(
        update(PendingLogin)
        .where(PendingLogin.id == pending.id)
        .values(code_attempts=PendingLogin.code_attempts + 1)
        .returning(PendingLogin.code_attempts)
        .execution_options(synchronize_session=False)
    )
    return int(attempts or 0)
