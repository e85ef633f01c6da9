"""Passkeys and security keys (WebAuthn, through py_webauthn): handing out challenges,
registering credentials and checking their signatures.

The rules py_webauthn leaves to its caller, kept here:
- The relying party is configuration (GATEHOUSE_WEBAUTHN_RP_ID, else the host of
  GATEHOUSE_BASE_URL; the origin is GATEHOUSE_BASE_URL's), never a request header, so a
  forged ``Host`` cannot make a passkey sign for another site.
- Challenges are server-side rows: single use (deleting the row is the only way to use one,
  which one request alone can do), 5 minutes, for one purpose and (except a passwordless
  sign-in) one account, and bound to the client that asked (``transport.state``: a browser's
  Flask session, an app's signed ``ceremony``).
- The user handle is 32 random bytes per account, never the account id.
- The signature counter is checked here, not by py_webauthn (which is given 0): a count that
  fails to increase, when either is non-zero, means a cloned authenticator may be in use. The
  credential is flagged and refused from then on, and the owner is told.
- A passwordless sign-in finds the credential by its id and checks that the user handle the
  authenticator returned is the account's.
"""

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import CursorResult, delete, func, select, update
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ..models import User, WebAuthnChallenge, WebAuthnCredential, utcnow
from . import audit, mail, transport
from .database import db

#: Credentials an account may have.
LIMIT = 10
#: How long a challenge may be answered.
CHALLENGE_LIFETIME = timedelta(minutes=5)
_SESSION_KEY = "gatehouse_webauthn"
_TIMEOUT_MS = int(CHALLENGE_LIFETIME.total_seconds() * 1000)

Kind = Literal["passkey", "security_key"]
#: What a challenge is for: "register", "sign_in" (passwordless), "second_factor",
#: "reauthenticate".
Purpose = Literal["register", "sign_up", "sign_in", "second_factor", "reauthenticate"]
_SIGN_UP_KEY = "gatehouse_passkey_sign_up"


class RefusedError(Exception):
    """A credential or its answer was not accepted; ``str`` says why, for the log only."""


def rp_id() -> str:
    configured: str | None = current_app.config["GATEHOUSE_WEBAUTHN_RP_ID"]
    return configured or str(urlsplit(current_app.config["GATEHOUSE_BASE_URL"]).hostname)


def origin() -> str:
    parts = urlsplit(current_app.config["GATEHOUSE_BASE_URL"])
    return f"{parts.scheme}://{parts.netloc}"


def mode() -> str:
    """GATEHOUSE_PASSKEYS: "on", "second-factor-only" or "off"."""
    return str(current_app.config["GATEHOUSE_PASSKEYS"])


def kind_to_register() -> Kind:
    """What the account page registers: passkeys, or only security keys as a second factor."""
    return "security_key" if mode() == "second-factor-only" else "passkey"


def credentials(user: User, *, kind: Kind | None = None) -> list[WebAuthnCredential]:
    """The account's credentials (of ``kind``), oldest first."""
    statement = select(WebAuthnCredential).where(WebAuthnCredential.user_id == user.id)
    if kind is not None:
        statement = statement.where(WebAuthnCredential.kind == kind)
    return list(db().session.scalars(statement.order_by(WebAuthnCredential.id)))


def count(user: User, *, kind: Kind | None = None) -> int:
    statement = select(func.count()).select_from(WebAuthnCredential)
    statement = statement.where(WebAuthnCredential.user_id == user.id)
    if kind is not None:
        statement = statement.where(WebAuthnCredential.kind == kind)
    return int(db().session.scalar(statement) or 0)


def _descriptors(user: User) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=record.credential_id,
            transports=[AuthenticatorTransport(t) for t in json.loads(record.transports)],
        )
        for record in credentials(user)
    ]


def _issue_challenge(purpose: Purpose, user: User | None) -> bytes:
    """A new challenge for ``purpose`` (expired ones are pruned on the way), remembered in
    this client's ceremony state. Joins the current transaction."""
    challenge = secrets.token_bytes(32)
    now = utcnow()
    rows = db().session
    rows.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at <= now))
    rows.add(
        WebAuthnChallenge(
            challenge=challenge,
            purpose=purpose,
            user_id=user.id if user is not None else None,
            expires_at=now + CHALLENGE_LIFETIME,
        )
    )
    kept = transport.state()
    pending = dict(kept.get(_SESSION_KEY) or {})
    pending[purpose] = bytes_to_base64url(challenge)
    kept[_SESSION_KEY] = pending
    return challenge


def _spend_challenge(client_data_json: bytes, purpose: Purpose, user: User | None) -> bytes:
    """The challenge this answer signed, spent: it must be this client's latest for
    ``purpose`` (and ``user``), unexpired and unused."""
    try:
        challenge = parse_client_data_json(client_data_json).challenge
    except (WebAuthnException, ValueError, TypeError) as error:
        raise RefusedError(f"unreadable client data: {error}") from None
    kept = transport.state()
    pending = dict(kept.get(_SESSION_KEY) or {})
    if pending.pop(purpose, None) != bytes_to_base64url(challenge):
        raise RefusedError("not this client's challenge")
    kept[_SESSION_KEY] = pending
    statement = delete(WebAuthnChallenge).where(
        WebAuthnChallenge.challenge == challenge,
        WebAuthnChallenge.purpose == purpose,
        WebAuthnChallenge.expires_at > utcnow(),
    )
    if user is not None:
        statement = statement.where(WebAuthnChallenge.user_id == user.id)
    result = cast(CursorResult[Any], db().session.execute(statement))
    if result.rowcount != 1:
        raise RefusedError("challenge unknown, used or expired")
    return challenge


def registration_options(user: User, kind: Kind) -> dict[str, Any]:
    """Options for the browser's ``navigator.credentials.create`` (as JSON-ready data). A
    passkey must be discoverable and verify its user; a security key need neither. Joins the
    current transaction (the challenge, and the account's user handle the first time)."""
    if user.webauthn_user_handle is None:
        user.webauthn_user_handle = secrets.token_bytes(32)
    return _creation_options(
        handle=user.webauthn_user_handle,
        email=user.email,
        username=user.username,
        challenge=_issue_challenge("register", user),
        kind=kind,
        exclude=_descriptors(user),
    )


def sign_up_options(email: str, username: str) -> dict[str, Any]:
    """Options to create the first passkey of an account not made yet (a sign-up without a
    password): a new user handle, remembered with the address and name in this client's
    ceremony state until the answer comes. The same whether or not the address is taken. Joins the
    current transaction (the challenge)."""
    handle = secrets.token_bytes(32)
    transport.state()[_SIGN_UP_KEY] = {
        "email": email,
        "username": username,
        "handle": bytes_to_base64url(handle),
    }
    return _creation_options(
        handle=handle,
        email=email,
        username=username,
        challenge=_issue_challenge("sign_up", None),
        kind="passkey",
        exclude=[],
    )


def pending_sign_up() -> tuple[str, str, bytes] | None:
    """The address, name and user handle ``sign_up_options`` gave this client, once."""
    pending = transport.state().pop(_SIGN_UP_KEY, None)
    if not isinstance(pending, dict):
        return None
    try:
        return (
            str(pending["email"]),
            str(pending["username"]),
            base64url_to_bytes(pending["handle"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _creation_options(
    *,
    handle: bytes,
    email: str,
    username: str,
    challenge: bytes,
    kind: Kind,
    exclude: list[PublicKeyCredentialDescriptor],
) -> dict[str, Any]:
    passkey = kind == "passkey"
    options = generate_registration_options(
        rp_id=rp_id(),
        rp_name=current_app.config["GATEHOUSE_SITE_NAME"],
        user_id=handle,
        user_name=email,
        user_display_name=username,
        challenge=challenge,
        timeout=_TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=(
                ResidentKeyRequirement.REQUIRED if passkey else ResidentKeyRequirement.DISCOURAGED
            ),
            require_resident_key=passkey,
            user_verification=(
                UserVerificationRequirement.REQUIRED
                if passkey
                else UserVerificationRequirement.DISCOURAGED
            ),
        ),
        exclude_credentials=exclude,
    )
    data: dict[str, Any] = json.loads(options_to_json(options))
    return data


def register(user: User, credential: dict[str, Any], name: str, kind: Kind) -> WebAuthnCredential:
    """Check the browser's answer to ``registration_options`` and store the credential;
    RefusedError when it does not verify. Joins the current transaction."""
    record = verify_new(credential, "register", user, kind)
    attach(user, record, name)
    return record


def attach(user: User, record: WebAuthnCredential, name: str) -> None:
    """Store a credential ``verify_new`` checked, as ``user``'s, named ``name``. Joins the
    current transaction."""
    record.user_id = user.id
    record.name = name
    db().session.add(record)


def verify_new(
    credential: dict[str, Any], purpose: Purpose, user: User | None, kind: Kind
) -> WebAuthnCredential:
    """Check the browser's answer to creation options of ``purpose`` ("register" for
    ``user``, "sign_up" for an account not made yet): the credential, not stored yet.
    RefusedError when it does not verify. Joins the current transaction (the challenge)."""
    try:
        parsed = parse_registration_credential_json(credential)
    except (WebAuthnException, ValueError, TypeError, KeyError) as error:
        raise RefusedError(f"unreadable credential: {error}") from None
    challenge = _spend_challenge(parsed.response.client_data_json, purpose, user)
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=origin(),
            require_user_verification=kind == "passkey",
        )
    except WebAuthnException as error:
        raise RefusedError(f"registration did not verify: {error}") from None
    transports = [t.value for t in parsed.response.transports or []]
    return WebAuthnCredential(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        kind=kind,
        transports=json.dumps(transports)[:200],
        backup_eligible=verified.credential_device_type.value == "multi_device",
        backup_state=verified.credential_backed_up,
        aaguid=verified.aaguid,
        created_at=utcnow(),
    )


def authentication_options(purpose: Purpose, user: User | None) -> dict[str, Any]:
    """Options for ``navigator.credentials.get``: for a passwordless sign-in (no ``user``) any
    discoverable passkey of this site, with user verification; otherwise only ``user``'s
    credentials, with user verification unless it is a second factor. Joins the current
    transaction."""
    verification = (
        UserVerificationRequirement.DISCOURAGED
        if purpose == "second_factor"
        else UserVerificationRequirement.REQUIRED
    )
    options = generate_authentication_options(
        rp_id=rp_id(),
        challenge=_issue_challenge(purpose, user),
        timeout=_TIMEOUT_MS,
        allow_credentials=_descriptors(user) if user is not None else [],
        user_verification=verification,
    )
    data: dict[str, Any] = json.loads(options_to_json(options))
    return data


@dataclass(frozen=True)
class Assertion:
    """A checked signature: which credential, and whether it verified its user."""

    credential: WebAuthnCredential
    user_verified: bool


def authenticate(credential: dict[str, Any], purpose: Purpose, user: User | None) -> Assertion:
    """Check the browser's answer to ``authentication_options``: the credential must be
    ``user``'s (any account's for a passwordless sign-in, where the returned user handle must
    match), unflagged, signed over this client's challenge, with user verification unless it
    is a second factor, and with a signature count that increased. Refused otherwise. Joins
    the current transaction (the count, the last use, or the flag of a cloned credential)."""
    try:
        parsed = parse_authentication_credential_json(credential)
    except (WebAuthnException, ValueError, TypeError, KeyError) as error:
        raise RefusedError(f"unreadable credential: {error}") from None
    challenge = _spend_challenge(parsed.response.client_data_json, purpose, user)
    statement = select(WebAuthnCredential).where(WebAuthnCredential.credential_id == parsed.raw_id)
    if user is not None:
        statement = statement.where(WebAuthnCredential.user_id == user.id)
    record = db().session.scalar(statement)
    if record is None:
        raise RefusedError("unknown credential")
    if purpose == "sign_in":
        owner = db().session.get(User, record.user_id)
        handle = parsed.response.user_handle
        if owner is None or record.kind != "passkey" or handle != owner.webauthn_user_handle:
            raise RefusedError("not a passkey of the account it names")
    if record.flagged_at is not None:
        raise RefusedError("flagged as possibly cloned")
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=origin(),
            credential_public_key=record.public_key,
            credential_current_sign_count=0,  # checked below, to flag a clone
            require_user_verification=purpose != "second_factor",
        )
    except WebAuthnException as error:
        raise RefusedError(f"signature did not verify: {error}") from None
    new, stored = verified.new_sign_count, record.sign_count
    if (new > 0 or stored > 0) and new <= stored:
        _flag_clone(record)
        raise RefusedError(f"sign count {new} after {stored}: possibly cloned")
    now = utcnow()
    result = cast(
        CursorResult[Any],
        db().session.execute(
            update(WebAuthnCredential)
            .where(
                WebAuthnCredential.id == record.id,
                WebAuthnCredential.flagged_at.is_(None),
                # A parallel use of the same signature count loses here.
                (WebAuthnCredential.sign_count < new) | (WebAuthnCredential.sign_count == 0),
            )
            .values(sign_count=new, last_used_at=now, backup_state=verified.credential_backed_up)
            .execution_options(synchronize_session=False)
        ),
    )
    if result.rowcount != 1:
        raise RefusedError("used by a parallel request")
    db().session.expire(record)
    return Assertion(record, verified.user_verified)


def _flag_clone(record: WebAuthnCredential) -> None:
    """Refuse ``record`` from now on, audit it and tell the owner."""
    record.flagged_at = utcnow()
    owner = db().session.get(User, record.user_id)
    if owner is None:
        return
    audit.record("passkey_flagged", "failure", user=owner, detail=f"passkey {record.id}")
    mail.send(
        "passkey_flagged",
        to=owner.email,
        username=owner.username,
        name=record.name,
        passkeys_link=mail.link("gatehouse.passkeys"),
        reset_link=mail.link("gatehouse.forgot_password"),
    )


def rename(user: User, credential_id: int, name: str) -> bool:
    """Rename one of ``user``'s credentials; False when it is not theirs. Joins the current
    transaction."""
    result = cast(
        CursorResult[Any],
        db().session.execute(
            update(WebAuthnCredential)
            .where(WebAuthnCredential.id == credential_id, WebAuthnCredential.user_id == user.id)
            .values(name=name)
            .execution_options(synchronize_session=False)
        ),
    )
    return bool(result.rowcount)


def remove(user: User, credential_id: int) -> bool:
    """Remove one of ``user``'s credentials; False when it is not theirs. Joins the current
    transaction."""
    result = cast(
        CursorResult[Any],
        db().session.execute(
            delete(WebAuthnCredential).where(
                WebAuthnCredential.id == credential_id, WebAuthnCredential.user_id == user.id
            )
        ),
    )
    return bool(result.rowcount)


def remove_all(user: User, *, kind: Kind) -> int:
    """Remove every credential of ``kind`` of ``user``. Joins the current transaction."""
    result = cast(
        CursorResult[Any],
        db().session.execute(
            delete(WebAuthnCredential).where(
                WebAuthnCredential.user_id == user.id, WebAuthnCredential.kind == kind
            )
        ),
    )
    return result.rowcount
