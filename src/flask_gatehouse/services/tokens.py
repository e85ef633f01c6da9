"""Single-use links sent by email: confirm an address, reset a password, secure an account.

Each link carries 256 random bits; the table stores only their SHA-256, so a leaked database
holds no usable link. Signed tokens (itsdangerous) were the alternative, but a signature
cannot be spent: single use under parallel requests needs server state, and here a link is
used by deleting its row, which exactly one request can do (``consume``). Voiding every
link of a kind after a password or email change is a delete too.
"""

import hashlib
import secrets
from typing import Any, Literal

from flask import current_app
from sqlalchemy import delete, select

from ..models import Token, User, utcnow
from .database import db

#: confirm: prove a new account's address. change_email: prove a new address for an existing
#: account. reset: set a new password. secure: "this wasn't me" from a security notification.
Purpose = Literal["confirm", "change_email", "reset", "secure"]

#: Tokens longer than this are not ours; refuse them before hashing.
_MAX_TOKEN_LENGTH = 64

_MAX_AGE_KEYS: dict[Purpose, str] = {
    "confirm": "GATEHOUSE_CONFIRM_MAX_AGE",
    "change_email": "GATEHOUSE_CONFIRM_MAX_AGE",
    "reset": "GATEHOUSE_RESET_MAX_AGE",
    "secure": "GATEHOUSE_SECURE_ACCOUNT_MAX_AGE",
}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def issue(
    purpose: Purpose, user: User, *, email: str | None = None, session_id: int | None = None
) -> str:
    """Store a new link for ``user`` (bound to ``email``, by default the account's address)
    and return its token. The user's expired links are deleted on the way (only the user's:
    parallel requests for different users then never wait on each other's rows). Joins the
    current transaction: the caller commits."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session = db().session
    session.execute(delete(Token).where(Token.user_id == user.id, Token.expires_at <= now))
    session.add(
        Token(
            token_hash=_digest(token),
            purpose=purpose,
            user_id=user.id,
            email=email or user.email,
            session_id=session_id,
            created_at=now,
            expires_at=now + current_app.config[_MAX_AGE_KEYS[purpose]],
        )
    )
    return token


def _live(purpose: Purpose, token: str) -> Any:
    return (
        Token.token_hash == _digest(token),
        Token.purpose == purpose,
        Token.expires_at > utcnow(),
    )


def peek(purpose: Purpose, token: str) -> Token | None:
    """The live link behind ``token`` without using it (to show the page it opens)."""
    if len(token) > _MAX_TOKEN_LENGTH:
        return None
    found: Token | None = db().session.scalar(select(Token).where(*_live(purpose, token)))
    return found


def consume(purpose: Purpose, token: str) -> Token | None:
    """Use the link: delete its row and return it, or None when it is unknown, expired,
    for another purpose or already used.

    One DELETE ... RETURNING: of parallel requests with one token, exactly one deletes the
    row and the others get None. Joins the current transaction, so the caller commits it
    together with what the link does, and a failure in between leaves the link unused.
    """
    if len(token) > _MAX_TOKEN_LENGTH:
        return None
    session = db().session
    found: Token | None = session.scalar(
        delete(Token).where(*_live(purpose, token)).returning(Token)
    )
    if found is not None:
        # Its row is gone: detached, it keeps its values, and a link issued later in the same
        # transaction may take its id without clashing in the session's identity map.
        session.expunge(found)
    return found


def void(user: User, *purposes: Purpose) -> None:
    """Delete the user's outstanding links of these kinds (all kinds when none are named).
    Joins the current transaction."""
    statement = delete(Token).where(Token.user_id == user.id)
    if purposes:
        statement = statement.where(Token.purpose.in_(purposes))
    db().session.execute(statement)
