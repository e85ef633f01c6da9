"""Pending sign-ins: the first factor passed, a later stage has not, no session exists yet.

The browser holds a random token in a cookie; the table holds its SHA-256 (as for sessions),
so the pending sign-in is bound to the browser that passed the first factor. It is short-lived
(5 minutes) and single use: finishing it deletes the row, which one request alone can do.
"""

import secrets
from datetime import timedelta
from typing import Any, cast

from flask import Response, after_this_request, request
from sqlalchemy import CursorResult, delete, select, update

from ..models import PendingLogin, User, utcnow
from .database import db
from .sessions import cookie_options, digest, host_cookie

#: How long the later stages may take.
LIFETIME = timedelta(minutes=5)
_COOKIE = "gatehouse_pending_login"
_MAX_TOKEN_LENGTH = 64


def start(user: User, *, stage: str, method: str, remember: bool, next_url: str | None) -> None:
    """Hold ``user``'s sign-in at ``stage`` and bind it to this browser (the user's expired
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
    name, options = host_cookie(_COOKIE), cookie_options()
    max_age = int(LIFETIME.total_seconds())

    @after_this_request
    def set_cookie(response: Response) -> Response:
        response.set_cookie(name, token, max_age=max_age, **options)
        return response


def current(stage: str) -> PendingLogin | None:
    """This browser's live pending sign-in waiting at ``stage``, if any."""
    token = request.cookies.get(host_cookie(_COOKIE))
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    found: PendingLogin | None = db().session.scalar(
        select(PendingLogin).where(
            PendingLogin.token_hash == digest(token),
            PendingLogin.stage == stage,
            PendingLogin.expires_at > utcnow(),
        )
    )
    return found


def finish(pending: PendingLogin) -> bool:
    """Spend ``pending`` and clear its cookie; False when a parallel request spent it first
    (or it expired meanwhile). Joins the current transaction."""
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
    name, options = host_cookie(_COOKIE), cookie_options()

    @after_this_request
    def delete_cookie(response: Response) -> Response:
        response.delete_cookie(name, **options)
        return response

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
