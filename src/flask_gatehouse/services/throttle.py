"""Rate limits (Flask-Limiter) and login lockout, on one shared counter storage.

Route limits are Flask-Limiter decorators on the views. Lockout needs more than a route limit
can give: attempts are counted per account *before* the password is checked (one atomic
``hit`` per tier), so 50 parallel guesses cannot get more than the limit through, and a
locked account refuses even the right password without hashing anything.

Keys are the normalised identifier whether or not an account exists, so a lockout reveals
nothing. So that an attacker cannot keep the real user out, a browser that has signed in to
the account before carries a signed device cookie and is counted on its own key instead
(OWASP's device cookies): failures from elsewhere never lock a known device, and a stolen
device cookie is still limited. Everyone else waits for the window or resets the password,
which clears the account's counters.
"""

import hashlib
import math
import secrets
import time
from collections.abc import Callable
from functools import lru_cache
from typing import ParamSpec, TypeVar

from flask import Flask, Response, after_this_request, current_app, has_request_context, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeSerializer
from limits import RateLimitItem, parse, parse_many

from .identity import InvalidIdentity, normalize_email
from .sessions import cookie_options, host_cookie

P = ParamSpec("P")
R = TypeVar("R")

#: One Limiter for Gatehouse's routes; ``init_app`` points it at the app's storage.
limiter = Limiter(key_func=get_remote_address, headers_enabled=True, strategy="moving-window")

_LOCKOUT_NAMESPACE = "gatehouse-lockout"
_REPORT_NAMESPACE = "gatehouse-lockout-report"
_REPORT_EVERY = parse("1 per 5 minutes")
_DEVICE_COOKIE = "gatehouse_device"
_DEVICE_LIFETIME = 365 * 24 * 3600


@limiter.request_filter
def _outside_gatehouse() -> bool:
    """Only Gatehouse's own pages carry its limits: let the rest skip the limiter early."""
    return request.blueprint != "gatehouse"


def init_app(app: Flask) -> None:
    """Bind the limiter to ``app``, storing counters at GATEHOUSE_RATELIMIT_STORAGE_URI."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["GATEHOUSE_RATELIMIT_STORAGE_URI"])
    # Storage failures surface as limits' StorageError, which errors.py turns into a 503.
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"wrap_exceptions": True})
    limiter.init_app(app)


def login_ip_limit() -> str:
    return str(current_app.config["GATEHOUSE_LOGIN_IP_LIMIT"])


def signup_ip_limit() -> str:
    return str(current_app.config["GATEHOUSE_SIGNUP_IP_LIMIT"])


def signup_email_limit() -> str:
    return str(current_app.config["GATEHOUSE_SIGNUP_EMAIL_LIMIT"])


def email_request_ip_limit() -> str:
    return str(current_app.config["GATEHOUSE_EMAIL_REQUEST_IP_LIMIT"])


def email_request_address_limit() -> str:
    return str(current_app.config["GATEHOUSE_EMAIL_REQUEST_ADDRESS_LIMIT"])


def account_change_limit() -> str:
    return str(current_app.config["GATEHOUSE_ACCOUNT_CHANGE_LIMIT"])


def email_request_limits(view: Callable[P, R]) -> Callable[P, R]:
    """The limits of a page that mails a typed address (forgot password, resend
    confirmation): per client IP and per address, counting only accepted forms."""
    per_address = limiter.limit(
        email_request_address_limit,
        key_func=submitted_email_key,
        methods=["POST"],
        deduct_when=accepted,
    )
    per_ip = limiter.limit(email_request_ip_limit, methods=["POST"], deduct_when=accepted)
    return per_ip(per_address(view))


def account_key() -> str:
    """``key_func`` for limits per signed-in account (the client IP before sign-in)."""
    user_id: str | None = current_user.get_id()
    return f"user:{user_id}" if user_id else get_remote_address()


def failed(response: Response) -> bool:
    """``deduct_when`` for login: only refused credentials (a 400 form) count."""
    return response.status_code == 400


def accepted(response: Response) -> bool:
    """``deduct_when`` for sign-up: only forms that went through (a redirect) count."""
    return response.status_code == 302


def identifier_key(raw: str) -> str:
    """A storage key for what was typed as the account: the normalised email (or, when it is
    not an email, the case-folded text), hashed so counters hold no addresses."""
    try:
        identifier = normalize_email(raw)
    except InvalidIdentity:
        identifier = raw.strip().casefold()
    return hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()


def submitted_email_key() -> str:
    """``key_func`` for per-address limits: the form's (or JSON body's) email. Each route
    keeps its own counters (Flask-Limiter scopes a route's limits by its endpoint)."""
    value = request.form.get("email")
    if value is None and request.is_json:
        body = request.get_json(silent=True)
        value = body.get("email") if isinstance(body, dict) else None
    return "email:" + identifier_key(value if isinstance(value, str) else "")


@lru_cache(maxsize=16)
def _tiers(spec: str) -> list[RateLimitItem]:
    return parse_many(spec)


def _lockout_key(identifier: str) -> str:
    device = _known_device(identifier)
    return f"device:{device}" if device else f"account:{identifier}"


def reserve_login_attempt(raw_identifier: str) -> int | None:
    """Count one login attempt for this account before its password is checked.

    Returns None when the attempt may go ahead, or the seconds until it may be retried when
    the account (or this known device of it) is locked: the wait of the longest full tier.
    A refused attempt is not counted, so hammering a locked account does not extend it.
    """
    identifier = identifier_key(raw_identifier)
    key = _lockout_key(identifier)
    strategy = limiter.limiter
    tiers = _tiers(current_app.config["GATEHOUSE_LOCKOUT_LIMITS"])
    full = [tier for tier in tiers if not strategy.test(tier, _LOCKOUT_NAMESPACE, key)]
    # Each hit is atomic, so parallel attempts that all passed the test above still cannot
    # get more than the limit through: the surplus hits fail here.
    if not full:
        full = [tier for tier in tiers if not strategy.hit(tier, _LOCKOUT_NAMESPACE, key)]
    if not full:
        return None
    reset_at = max(
        strategy.get_window_stats(tier, _LOCKOUT_NAMESPACE, key).reset_time for tier in full
    )
    # One second of margin: Flask-Limiter rewrites Retry-After rounding down.
    return max(1, math.ceil(reset_at - time.time()) + 1)


def locked_message(retry_after: int) -> str:
    """What a locked account's form says: the wait, in whole minutes."""
    minutes = max(1, round(retry_after / 60))
    return f"Too many failed attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."


def first_refusal(raw_identifier: str) -> bool:
    """True for the first refused attempt on this locked account in five minutes."""
    key = identifier_key(raw_identifier)
    return limiter.limiter.hit(_REPORT_EVERY, _REPORT_NAMESPACE, key)


def clear_lockout(raw_identifier: str) -> None:
    """Forget the account's counted attempts (after a successful login or a password reset),
    and this browser's as a known device when there is a request."""
    identifier = identifier_key(raw_identifier)
    keys = {f"account:{identifier}"}
    if has_request_context():
        keys.add(_lockout_key(identifier))
    strategy = limiter.limiter
    for key in keys:
        for tier in _tiers(current_app.config["GATEHOUSE_LOCKOUT_LIMITS"]):
            strategy.clear(tier, _LOCKOUT_NAMESPACE, key)


def _device_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="gatehouse.device")


def _known_device(identifier: str) -> str | None:
    """The device id of this browser's cookie when it was issued for ``identifier``."""
    cookie = request.cookies.get(host_cookie(_DEVICE_COOKIE))
    if not cookie:
        return None
    try:
        data = _device_serializer().loads(cookie)
    except BadSignature:
        return None
    if not isinstance(data, list) or len(data) != 2 or data[0] != identifier[:32]:
        return None
    return str(data[1])


def is_known_device(raw_identifier: str) -> bool:
    """True when this browser has signed in to the account before (its device cookie)."""
    return _known_device(identifier_key(raw_identifier)) is not None


def remember_device(raw_identifier: str) -> None:
    """After a successful login, mark this browser as a known device of the account."""
    identifier = identifier_key(raw_identifier)
    device = _known_device(identifier) or secrets.token_urlsafe(16)
    value = _device_serializer().dumps([identifier[:32], device])
    name, options = host_cookie(_DEVICE_COOKIE), cookie_options()

    @after_this_request
    def set_cookie(response: Response) -> Response:
        response.set_cookie(name, value, max_age=_DEVICE_LIFETIME, **options)
        return response
