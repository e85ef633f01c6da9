"""Recovery codes: single-use codes that stand in for the authenticator app.

Ten codes of 12 Crockford base32 characters (60 random bits each), shown once as
``xxxx-xxxx-xxxx``. Only their HMAC-SHA-256 is stored, keyed from the app's SECRET_KEY, so a
copy of the table alone cannot be tried against. Typing is forgiven: case, dashes and spaces
do not count, and O, I and L read as 0, 1 and 1. Using a code is one conditional UPDATE, so
a code works once even when two requests bring it at the same time.
"""

import hashlib
import hmac
import secrets
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, delete, func, select, update

from ..models import RecoveryCode, User, utcnow
from .database import db

#: Codes in a set.
COUNT = 10
_LENGTH = 12
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READS_AS = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None})
_KEY_PURPOSE = b"gatehouse.recovery-codes"


def _key() -> bytes:
    """The HMAC key, derived from SECRET_KEY (init_app refuses to start without one) so that
    it is never used for two things."""
    secret: str | bytes = current_app.config["SECRET_KEY"]
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, _KEY_PURPOSE, hashlib.sha256).digest()


def _digest(normalized: str) -> bytes:
    return hmac.new(_key(), normalized.encode(), hashlib.sha256).digest()


def normalize(typed: str) -> str | None:
    """The code as generated (12 upper-case characters), or None when ``typed`` cannot be
    one."""
    code = "".join(typed.split()).upper().translate(_READS_AS)
    if len(code) != _LENGTH or any(char not in _ALPHABET for char in code):
        return None
    return code


def generate(user: User) -> list[str]:
    """A new set of codes for ``user``, voiding the old one; the codes as shown. Joins the
    current transaction."""
    session = db().session
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    now = utcnow()
    codes = ["".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH)) for _ in range(COUNT)]
    session.add_all(
        RecoveryCode(user_id=user.id, code_hash=_digest(code), created_at=now) for code in codes
    )
    return [f"{code[:4]}-{code[4:8]}-{code[8:]}".lower() for code in codes]


def use(user: User, typed: str) -> bool:
    """Spend the unused code ``typed`` of ``user``; False when it is not one. Joins the
    current transaction."""
    code = normalize(typed)
    if code is None:
        return False
    result = cast(
        CursorResult[Any],
        db().session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == _digest(code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=utcnow())
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount == 1


def remaining(user: User) -> int:
    """How many of the account's codes are still unused."""
    count = db().session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    return int(count or 0)


def remove(user: User) -> None:
    """Delete the account's codes. Joins the current transaction."""
    db().session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
