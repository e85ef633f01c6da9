"""Passkeys on the signed-in owner's account: list, add, rename, remove. Every addition is
mailed to the owner; every change is audited.

Signing in with a passkey, and a passkey as the second factor or for re-authentication, are
the sign-in flow's (``signin.sign_in_with_passkey`` and its neighbours).
"""

from dataclasses import dataclass
from typing import Any, Literal

from ..models import User, WebAuthnCredential
from ..services import audit, mail, passkeys, recovery_codes, second_factor, totp
from ..services.transaction import commit

#: The longest name a passkey may have.
NAME_LENGTH = 64


@dataclass(frozen=True)
class Overview:
    """What the passkeys page shows."""

    passkeys: list[WebAuthnCredential]
    limit: int
    second_factor_only: bool


def _clean(name: str) -> str:
    """A name as stored: runs of white space as one space, at most NAME_LENGTH."""
    return " ".join(name.split())[:NAME_LENGTH]


def overview(user: User) -> Overview:
    return Overview(
        passkeys=passkeys.credentials(user),
        limit=passkeys.LIMIT,
        second_factor_only=passkeys.kind_to_register() == "security_key",
    )


def add_options(user: User) -> dict[str, Any] | None:
    """Options to create a passkey (or, in "second-factor-only" mode, a security key); None
    when the account has as many as it may."""
    if passkeys.count(user) >= passkeys.LIMIT:
        return None
    options = passkeys.registration_options(user, passkeys.kind_to_register())
    commit()
    return options


@dataclass(frozen=True)
class Added:
    """A registration's outcome: the new ``passkey``, or None when refused (the browser's
    answer did not verify, or the account is full); ``needs_recovery_codes`` for a security key
    that is the account's only second factor while it has no recovery codes (the two-factor
    page makes them)."""

    passkey: WebAuthnCredential | None = None
    needs_recovery_codes: bool = False


def add(user: User, credential: dict[str, Any], name: str) -> Added:
    """Store the new credential the browser created, named ``name`` (or "Passkey N")."""
    kind = passkeys.kind_to_register()
    if passkeys.count(user) >= passkeys.LIMIT:
        return Added()
    label = "Security key" if kind == "security_key" else "Passkey"
    name = _clean(name) or f"{label} {passkeys.count(user) + 1}"
    try:
        record = passkeys.register(user, credential, name, kind)
    except passkeys.RefusedError as refused:
        audit.record("passkey_added", "failure", user=user, detail=str(refused)[:200])
        commit()
        return Added()
    audit.record("passkey_added", "success", user=user, detail=name)
    mail.send(
        "passkey_added",
        to=user.email,
        username=user.username,
        name=record.name,
        passkeys_link=mail.link("gatehouse.passkeys"),
        reset_link=mail.link("gatehouse.forgot_password"),
    )
    commit()
    return Added(
        passkey=record,
        needs_recovery_codes=kind == "security_key" and recovery_codes.remaining(user) == 0,
    )


def rename(user: User, passkey_id: int, name: str) -> bool:
    """Rename one of the owner's passkeys; False when it is not theirs or the name is empty."""
    name = _clean(name)
    renamed = bool(name) and passkeys.rename(user, passkey_id, name)
    if renamed:
        audit.record("passkey_renamed", "success", user=user, detail=name)
    commit()
    return renamed


def remove(user: User, passkey_id: int) -> Literal["removed", "gone", "required"]:
    """Remove one of the owner's passkeys: "gone" when it is not theirs, "required" (nothing
    changes) when it is the last second factor the policy requires."""
    record = next((r for r in passkeys.credentials(user) if r.id == passkey_id), None)
    if record is None:
        return "gone"
    last_factor = (
        record.kind == "security_key"
        and not totp.is_enabled(user)
        and passkeys.count(user, kind="security_key") == 1
    )
    if last_factor and second_factor.is_required(user):
        return "required"
    passkeys.remove(user, passkey_id)
    audit.record("passkey_removed", "success", user=user, detail=record.name)
    commit()
    return "removed"
