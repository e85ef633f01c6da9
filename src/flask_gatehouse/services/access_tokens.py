"""Personal access tokens: ``Authorization: Bearer gth_...`` for scripts and API clients.

The format is GitHub's: ``gth_`` + 30 random base62 characters + 6 characters of checksum, the
CRC32 of the random part written in base62 (``0-9A-Za-z``, zero-padded). Secret scanners can
find leaked tokens by the pattern, and a client (or this server, before any query) can tell a
typo from a token offline. Written by hand: no library makes this format.

Only the SHA-256 of a token is stored (a random 178-bit secret needs no slow hash), with its
first 8 characters to recognise it in a list. A token carries scopes ("read", "write" and
whatever the host adds in GATEHOUSE_ACCESS_TOKEN_SCOPES) and an expiry; its last use is written
at most once a minute. Tokens authenticate only on routes that opt in
(``login_required(scopes=...)``): never on the pages that change the password, the email,
two-factor, passkeys or tokens.
"""

import hashlib
import re
import secrets
import zlib
from datetime import timedelta
from typing import Any, cast

from flask import current_app, g, request
from sqlalchemy import CursorResult, delete, or_, select, update

from ..models import AccessToken, User, utcnow
from . import client
from .database import db

PREFIX = "gth_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_LENGTH = 30
_CHECKSUM_LENGTH = 6
#: The whole pattern, as secret scanners would match it.
PATTERN = re.compile(rf"^{PREFIX}[0-9A-Za-z]{{{_RANDOM_LENGTH + _CHECKSUM_LENGTH}}}$")
_TOUCH_INTERVAL = timedelta(minutes=1)


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits)).rjust(width, "0")


def _checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode()), _CHECKSUM_LENGTH)


def generate() -> str:
    """A new token (not stored)."""
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))
    return f"{PREFIX}{random_part}{_checksum(random_part)}"


def well_formed(token: str) -> bool:
    """Whether ``token`` has the pattern and its checksum matches (no query needed)."""
    if not PATTERN.match(token):
        return False
    random_part = token[len(PREFIX) : len(PREFIX) + _RANDOM_LENGTH]
    return secrets.compare_digest(token[-_CHECKSUM_LENGTH:], _checksum(random_part))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def available_scopes() -> tuple[str, ...]:
    return tuple(current_app.config["GATEHOUSE_ACCESS_TOKEN_SCOPES"])


def issue(
    user: User, *, name: str, scopes: list[str], lifetime: timedelta | None
) -> tuple[AccessToken, str]:
    """A new token for ``user``: the record and the token itself (shown once). Joins the
    current transaction."""
    token = generate()
    now = utcnow()
    record = AccessToken(
        user_id=user.id,
        token_hash=_digest(token),
        prefix=token[: len(PREFIX) + 4],
        name=name,
        scopes=" ".join(scopes),
        created_at=now,
        expires_at=now + lifetime if lifetime is not None else None,
    )
    db().session.add(record)
    return record, token


def active_for(user: User) -> list[AccessToken]:
    """The user's tokens that have not expired, newest first."""
    now = utcnow()
    return list(
        db().session.scalars(
            select(AccessToken)
            .where(
                AccessToken.user_id == user.id,
                or_(AccessToken.expires_at.is_(None), AccessToken.expires_at > now),
            )
            .order_by(AccessToken.id.desc())
        )
    )


def revoke(user: User, token_id: int) -> bool:
    """Revoke one of ``user``'s tokens; False when it is not theirs. Joins the current
    transaction."""
    result = cast(
        CursorResult[Any],
        db().session.execute(
            delete(AccessToken).where(AccessToken.id == token_id, AccessToken.user_id == user.id)
        ),
    )
    return bool(result.rowcount)


def revoke_all(user: User) -> int:
    """Revoke every token of ``user``. Joins the current transaction."""
    result = cast(
        CursorResult[Any],
        db().session.execute(delete(AccessToken).where(AccessToken.user_id == user.id)),
    )
    return result.rowcount


def bearer() -> str | None:
    """The token of this request's ``Authorization: Bearer`` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def load_user() -> User | None:
    """The active user of this request's bearer token, when the route accepts tokens
    (``login_required(scopes=...)``) and the token is well formed, known and unexpired; the
    token's scopes are left for ``scopes_of_request``. Its last use is written at most
    once a minute, in a small commit of its own (it belongs to no user action)."""
    endpoint = request.endpoint
    view = current_app.view_functions.get(endpoint) if endpoint else None
    if view is None or getattr(view, "gatehouse_token_scopes", None) is None:
        return None
    token = bearer()
    if token is None or not well_formed(token):
        return None
    session = db().session
    record = session.scalar(select(AccessToken).where(AccessToken.token_hash == _digest(token)))
    now = utcnow()
    if record is None or (record.expires_at is not None and record.expires_at <= now):
        return None
    user = session.get(User, record.user_id)
    if user is None or not user.active:
        return None
    scopes = record.scopes.split()
    if record.last_used_at is None or now - record.last_used_at >= _TOUCH_INTERVAL:
        session.execute(
            update(AccessToken)
            .where(
                AccessToken.id == record.id,
                or_(
                    AccessToken.last_used_at.is_(None),
                    AccessToken.last_used_at <= now - _TOUCH_INTERVAL,
                ),
            )
            .values(last_used_at=now, last_used_ip=client.ip())
            .execution_options(synchronize_session=False)
        )
        session.commit()
    g.gatehouse_token_scopes = frozenset(scopes)
    return user


def scopes_of_request() -> frozenset[str] | None:
    """The scopes of the token this request was authenticated by; None when it was not a
    token (a session cookie)."""
    found: frozenset[str] | None = g.get("gatehouse_token_scopes")
    return found
