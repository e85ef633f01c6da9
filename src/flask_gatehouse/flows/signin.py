"""Signing in and out: a first factor, the stages (``stages``), then a session.

The attempt is counted against the account before the password is checked, so a locked
account costs no hashing and parallel guesses cannot overrun the limit. Attempts on a locked
account are audited once per five minutes, not once each, so an attack on one cannot turn
into a flood of database writes.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from flask import current_app, session
from flask_login import logout_user

from .. import stages
from ..models import PendingLogin, User, UserSession, utcnow
from ..services import (
    audit,
    mail,
    passkeys,
    pending_logins,
    second_factor,
    sessions,
    throttle,
    tokens,
    totp,
    trusted_browsers,
    users,
)
from ..services.identity import TypedEmail
from ..services.passwords import hash_password
from ..services.redirects import safe_next
from ..services.transaction import commit
from . import signup


@dataclass(frozen=True)
class SignIn:
    """How a sign-in step ended: ``user`` when a session started; else ``retry_after``
    seconds when locked, ``waiting_at`` (a stage's key) when a pending stage waits, or none
    of them when refused (wrong credentials, or the right password for an address still waiting
    for its confirmation: the two must look the same). ``next_url`` is where a signed-in
    browser goes."""

    user: User | None = None
    next_url: str = "/"
    retry_after: int | None = None
    waiting_at: str | None = None
    #: The stage that stopped a passkey's sign-in (a passkey proves the identity, so unlike a
    #: password's refusal it may say why).
    stopped_at: str | None = None

    @property
    def next_page(self) -> str | None:
        """The endpoint of the page that completes the stage the sign-in waits at."""
        return stages.page_of(self.waiting_at) if self.waiting_at is not None else None


def landing_url(requested: str | None, default: str | None = None) -> str:
    """``requested`` when it is a safe same-origin path, else ``default`` (by default
    GATEHOUSE_POST_LOGIN_URL)."""
    fallback: str = default or current_app.config["GATEHOUSE_POST_LOGIN_URL"]
    return safe_next(requested) or fallback


def sign_in_with_password(
    email: TypedEmail, password: str, *, remember: bool, next_url: str | None
) -> SignIn:
    """The password as first factor, then the stages; a session when none is pending.

    Only a password that was checked and found wrong counts towards the lockout; the right
    password for an unconfirmed address counts too, since its answer must not differ from a
    wrong one (it mails a fresh confirmation link instead)."""
    with throttle.LoginAttempt(email.key) as attempt:
        if attempt.retry_after is not None:
            if throttle.first_refusal(email.key):
                audit.record("login", "blocked", identifier=email.canonical, detail="locked out")
                commit()
            return SignIn(retry_after=attempt.retry_after)
        user = users.authenticate(email.canonical, password)
        if user is None:
            attempt.failed()
            audit.record("login", "failure", identifier=email.canonical)
            commit()
            return SignIn()
        stop = stages.stopping_stage(user, method="password")
        if stop is not None:
            attempt.failed()
            _stopped(user, stop)
            return SignIn()
        attempt.succeeded()
    return first_factor_passed(user, method="password", remember=remember, next_url=next_url)


def first_factor_passed(user: User, *, method: str, remember: bool, next_url: str | None) -> SignIn:
    """Where every first factor (``method``: "password", "passkey", "social"; SAML later)
    hands over once it has proved ``user``: the stages, then the session."""
    return _advance(user, method=method, remember=remember, next_url=next_url, after=None)


def _stopped(user: User, stage: stages.Stage) -> None:
    """A first factor passed, but ``stage`` stops the sign-in: audit it, and mail a fresh
    confirmation link when the address is what is missing. Commits."""
    audit.record("login", "failure", user=user, detail=f"{stage.key} pending")
    if stage.key == "email_confirmation":
        signup.remind_to_confirm(user)
    commit()


def record_invalid_form() -> None:
    """A login form refused before any check (missing or over-long fields)."""
    audit.record("login", "failure", detail="invalid form")
    commit()


def _advance(
    user: User, *, method: str, remember: bool, next_url: str | None, after: str | None
) -> SignIn:
    """Run the stages after ``after``: stop, hold the sign-in for a stage's page, or start the
    session. Commits."""
    stage = stages.next_stage(user, method=method, after=after)
    if stage is not None and stage.page is None:
        audit.record("login", "failure", user=user, detail=f"{stage.key} pending")
        commit()
        return SignIn()
    if stage is not None and stage.page is not None:
        pending_logins.start(
            user, stage=stage.key, method=method, remember=remember, next_url=safe_next(next_url)
        )
        commit()
        return SignIn(waiting_at=stage.key)
    _start_session(user, remember=remember)
    return SignIn(user=user, next_url=landing_url(next_url))


def _pending(stage: str) -> tuple[PendingLogin, User] | None:
    """This browser's live pending sign-in waiting at ``stage``, and its account, if any."""
    pending = pending_logins.current(stage)
    user = users.find_by_id(pending.user_id) if pending is not None else None
    return None if pending is None or user is None else (pending, user)


def pending_user(stage: str) -> User | None:
    """The account of this browser's pending sign-in waiting at ``stage`` (for that stage's
    page), if any."""
    found = _pending(stage)
    return found[1] if found is not None else None


def _resume(pending: PendingLogin, user: User, *, after: str) -> SignIn:
    """Go on with a pending sign-in (spent by the caller) past its stage ``after``."""
    return _advance(
        user,
        method=pending.method,
        remember=pending.remember,
        next_url=pending.next_url,
        after=after,
    )


def change_required_password(password: str) -> SignIn | None:
    """Complete the password-change stage with ``password`` (already checked against the
    policy), then go on with the stages after it; None when the pending sign-in expired or
    was used meanwhile."""
    password_hash = hash_password(password)  # before the transaction takes any lock
    found = _pending("password_change")
    if found is None or not pending_logins.finish(found[0]):
        commit()
        return None
    pending, user = found
    users.set_password(user, password_hash)
    return _resume(pending, user, after="password_change")


#: Wrong second-factor codes a pending sign-in allows before it is discarded.
MAX_CODE_ATTEMPTS = 5


@dataclass(frozen=True)
class CodeCheck:
    """How a second-factor code ended: "passed" (``sign_in`` says what next), "wrong" (try
    again), "discarded" (too many wrong codes: back to the password), "locked" (the account's
    second step is locked for ``retry_after`` seconds) or "expired"."""

    outcome: Literal["passed", "wrong", "discarded", "locked", "expired"]
    sign_in: SignIn | None = None
    retry_after: int | None = None


def pass_two_factor(
    code: str, *, trust_browser: bool, assertion: dict[str, Any] | None = None
) -> CodeCheck:
    """Complete the two-factor stage with a code from the authenticator app or a recovery
    code, or with the ``assertion`` of one of the account's passkeys or security keys (user
    verification not needed: the password was the first factor), trusting this browser from
    now on if asked; then go on with the stages after it.

    The attempt is counted before it is checked, so parallel guesses cannot overrun the
    limit; the fifth wrong one discards the pending sign-in. Wrong ones also count towards
    the account's lockout for codes (``second_factor``)."""
    found = _pending("two_factor")
    if found is None:
        return CodeCheck("expired")
    pending, user = found
    attempts = pending_logins.count_code_attempt(pending)
    if attempts > MAX_CODE_ATTEMPTS:
        pending_logins.finish(pending)
        commit()
        return CodeCheck("discarded")
    check = second_factor.check(user, code, action="two_factor", assertion=assertion)
    if check.retry_after is not None:
        commit()
        return CodeCheck("locked", retry_after=check.retry_after)
    if check.passed_by is None:
        discard = attempts >= MAX_CODE_ATTEMPTS
        if discard:
            pending_logins.finish(pending)
            audit.record("two_factor", "failure", user=user, detail="sign-in discarded")
        commit()
        return CodeCheck("discarded" if discard else "wrong")
    return _second_factor_passed(pending, user, check.passed_by, trust_browser=trust_browser)


def _second_factor_passed(
    pending: PendingLogin, user: User, passed_by: str, *, trust_browser: bool
) -> CodeCheck:
    """The two-factor stage passed by ``passed_by``: on with the stages after it."""
    if not pending_logins.finish(pending):
        commit()
        return CodeCheck("expired")
    audit.record("two_factor", "success", user=user, detail=passed_by)
    if trust_browser:
        trusted_browsers.trust(user)
    result = _resume(pending, user, after="two_factor")
    return CodeCheck("passed", result)


def passkey_options(purpose: passkeys.Purpose, user: User | None) -> dict[str, Any]:
    """Options for a passkey ceremony of ``purpose`` ("sign_in" with no user; "second_factor"
    for the pending sign-in's account; "reauthenticate" for the signed-in one). Commits the
    challenge."""
    options = passkeys.authentication_options(purpose, user)
    commit()
    return options


def second_factor_options() -> dict[str, Any] | None:
    """Options for a second-factor passkey of this browser's pending sign-in; None without
    one."""
    user = pending_user("two_factor")
    return passkey_options("second_factor", user) if user is not None else None


def sign_in_with_passkey(credential: dict[str, Any], *, next_url: str | None) -> SignIn:
    """A passkey with user verification as the first factor, and the second at once (so the
    two-factor stages are skipped); then the other stages and the session. A refused passkey
    is audited (a cloned one is also flagged and its owner told) and signs nobody in."""
    try:
        assertion = passkeys.authenticate(credential, "sign_in", None)
    except passkeys.RefusedError as refused:
        audit.record("login", "failure", detail=f"passkey refused: {refused}")
        commit()
        return SignIn()
    user = users.find_by_id(assertion.credential.user_id)
    if user is None or not user.active:
        audit.record("login", "failure", user=user, detail="passkey of an inactive account")
        commit()
        return SignIn()
    return proven_identity(user, method="passkey", next_url=next_url)


def proven_identity(user: User, *, method: str, next_url: str | None) -> SignIn:
    """A first factor that proved who signs in (``method``: "passkey", "social", ...) and so
    may say why a stopping stage stops it; else on with the stages and the session."""
    stop = stages.stopping_stage(user, method=method)
    if stop is not None:
        _stopped(user, stop)
        return SignIn(stopped_at=stop.key)
    return first_factor_passed(user, method=method, remember=False, next_url=next_url)


@dataclass(frozen=True)
class Enrolment:
    """The two-factor enrolment stage's page: the secret to add to an app, and until when the
    user may still postpone (None: no longer)."""

    enrolment: totp.Enrolment
    postpone_until: datetime | None


def enrolment_stage(*, fresh: bool) -> Enrolment | None:
    """What the enrolment stage shows this browser's pending sign-in: a fresh secret (with
    ``fresh``), else the one being enrolled; None when no sign-in waits there. The first
    time a user is asked starts their grace period. Commits."""
    user = pending_user("two_factor_enrolment")
    if user is None:
        return None
    record = None if fresh else totp.factor(user)
    if record is None or record.confirmed_at is not None:
        record = totp.start_enrolment(user)
    ends = second_factor.grace_ends(user)
    shown = Enrolment(totp.enrolment(record, user.email), ends if ends > utcnow() else None)
    commit()
    return shown


@dataclass(frozen=True)
class Enrolled:
    """A required enrolment ended: ``codes`` are the new recovery codes to show once (None
    when the code was wrong), ``sign_in`` says what next."""

    codes: list[str] | None
    sign_in: SignIn | None = None


def enrol_at_sign_in(code: str) -> Enrolled | None:
    """Switch two-factor on with the first code from the app, then go on with the stages
    after enrolment; None when the pending sign-in expired or was used meanwhile."""
    found = _pending("two_factor_enrolment")
    if found is None:
        return None
    pending, user = found
    codes = second_factor.enable(user, code)
    if codes is None:
        commit()
        return Enrolled(None)
    if not pending_logins.finish(pending):
        commit()
        return None
    result = _resume(pending, user, after="two_factor_enrolment")
    return Enrolled(codes, result)


def postpone_enrolment() -> SignIn | Literal["expired", "grace_over"]:
    """Sign in without enrolling, while the grace period lasts: "expired" when no sign-in
    waits (any more), "grace_over" when it is too late to postpone (the sign-in then stays at
    the enrolment stage)."""
    found = _pending("two_factor_enrolment")
    if found is None:
        return "expired"
    pending, user = found
    if second_factor.grace_ends(user) <= utcnow():
        commit()
        return "grace_over"
    if not pending_logins.finish(pending):
        commit()
        return "expired"
    audit.record("two_factor_postponed", "success", user=user)
    return _resume(pending, user, after="two_factor_enrolment")


def _start_session(user: User, *, remember: bool) -> None:
    """Open a session for this browser, mail a "new sign-in" notice for a browser the
    account never used (never on its first login: every browser is new then), and commit
    the session, the login event and the notice as one."""
    new_device = not throttle.is_known_device(user.email)
    throttle.remember_device(user.email)
    # A fresh Flask session (and so a fresh CSRF token) for the signed-in browser.
    session.clear()
    record = sessions.start(user, remember=remember)
    notify = (
        new_device
        and user.last_login_at is not None
        and current_app.config["GATEHOUSE_NOTIFY_NEW_DEVICE"]
    )
    user.last_login_at = record.created_at
    if notify:
        mail.send("new_device", **_new_device_notice(user, record))
    audit.record("login", "success", user=user)
    commit()


def _new_device_notice(user: User, record: UserSession) -> dict[str, Any]:
    """The "new sign-in" mail (recipient and context), with a link that signs that session
    out and starts a password reset if it was not the owner."""
    token = tokens.issue("secure", user, session_id=record.id)
    return {
        "to": user.email,
        "username": user.username,
        "device": record.device,
        "ip": record.ip,
        "time": record.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        "secure_link": mail.link("gatehouse.secure_account", token=token),
    }


def sign_out(user: User) -> None:
    """End this browser's session: the record, the cookie, Flask-Login's state and Flask's
    session (with its CSRF token), and audit it."""
    audit.record("logout", "success", user=user)
    sessions.end_current()
    commit()
    logout_user()
    session.clear()


@dataclass(frozen=True)
class Reauthentication:
    """How entering the password again ended: ``ok``, or refused by ``password`` (wrong or
    locked) or, for an account with two-factor, by ``code`` (wrong or locked)."""

    ok: bool
    password: users.PasswordCheck
    code: second_factor.Check | None = None


def reauthenticate_with_passkey(user: User, credential: dict[str, Any]) -> bool:
    """Re-authenticate with one of ``user``'s own passkeys, verifying its user (which stands
    for the password and the second factor); False when refused."""
    try:
        assertion = passkeys.authenticate(credential, "reauthenticate", user)
    except passkeys.RefusedError as refused:
        audit.record("reauthenticated", "failure", user=user, detail=f"passkey refused: {refused}")
        commit()
        return False
    if assertion.credential.kind != "passkey":
        audit.record("reauthenticated", "failure", user=user, detail="a security key alone")
        commit()
        return False
    sessions.reauthenticated()
    audit.record("reauthenticated", "success", user=user, detail="passkey")
    commit()
    return True


def reauthenticate(
    user: User, password: str, code: str | None, assertion: dict[str, Any] | None = None
) -> Reauthentication:
    """Enter the password again, and a second-factor ``code`` (or a passkey's ``assertion``)
    when the account has two-factor: on success the session counts as freshly signed in
    (and gets a new token)."""
    check = users.check_password(user, password, action="reauthenticated")
    if not check.ok:
        commit()
        return Reauthentication(False, check)
    if second_factor.is_enabled(user):
        factor = second_factor.check(
            user, code or "", action="reauthenticated", assertion=assertion
        )
        if factor.passed_by is None:
            commit()
            return Reauthentication(False, check, factor)
    sessions.reauthenticated()
    audit.record("reauthenticated", "success", user=user)
    commit()
    return Reauthentication(True, check)
