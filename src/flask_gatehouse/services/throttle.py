"""Rate limits (Flask-Limiter) and login lockout, on one shared counter storage.

Route limits are Flask-Limiter limits, marked on the views by ``limit`` and applied per app by
``create_limiter`` (each app has its own Limiter and counters). Lockout needs more than a route
limit can give: attempts are counted per account *before* the password is checked (one atomic
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
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any, Literal, TypeVar

from flask import Flask, current_app, has_request_context, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeSerializer
from limits import RateLimitItem, parse, parse_many
from limits.errors import StorageError
from limits.storage import Storage
from limits.strategies import RateLimiter
from limits.util import WindowStats
from werkzeug.exceptions import TooManyRequests

from .. import state
from . import transport
from .counters import limiter_storage

F = TypeVar("F", bound=Callable[..., Any])

#: Each factor's lockout: its counters' namespace and the setting that holds its tiers.
_FACTORS = {
    "password": ("gatehouse-lockout", "GATEHOUSE_LOCKOUT_LIMITS"),
    "code": ("gatehouse-code-lockout", "GATEHOUSE_TWO_FACTOR_LOCKOUT_LIMITS"),
}
Factor = Literal["password", "code"]
_REPORT_NAMESPACE = "gatehouse-lockout-report"
_REPORT_EVERY = parse("1 per 5 minutes")
_LOGIN_IP_NAMESPACE = "gatehouse-login-ip"
_QUOTA_NAMESPACE = "gatehouse-quota"
_INFLIGHT_NAMESPACE = "gatehouse-lockout-in-flight"
#: A slot left by a process that died mid-check lapses after this many seconds.
_INFLIGHT_EXPIRY = 60
#: How long an attempt waits for attempts in flight before it is refused, and how often it
#: looks again while waiting (seconds).
_INFLIGHT_WAIT = 5.0
_INFLIGHT_POLL = 0.02
_DEVICE_COOKIE = "gatehouse_device"
_DEVICE_LIFETIME = timedelta(days=365)
#: The methods a route limit counts: those that change something.
_ACTING_METHODS = ["POST", "PUT", "PATCH", "DELETE"]
#: Where ``limit`` leaves a view's route limits for ``create_limiter`` to apply.
_LIMITS_ATTRIBUTE = "_gatehouse_limits"


@dataclass(frozen=True)
class _RouteLimit:
    """A Flask-Limiter ``shared_limit`` call, kept until an app's own Limiter exists."""

    spec: Callable[[], str]
    scope: str
    key_func: Callable[[], str] | None
    exempt_when: Callable[[], bool] | None


def limit(
    spec: Callable[[], str],
    *,
    scope: str,
    key_func: Callable[[], str] | None = None,
    exempt_when: Callable[[], bool] | None = None,
) -> Callable[[F], F]:
    """Mark a Gatehouse view with a limit on the requests that act (POST, PUT, PATCH,
    DELETE; never a GET), counted in ``scope``: every view of
    one scope (a page and its JSON API twin) spends the same counters. Nothing is wrapped
    here (``exempt_when`` says which requests it does not count): the views are shared by
    every app, while each app has its own Limiter (and so its
    own counters), which ``create_limiter`` applies to that app's copy of the view."""

    def mark(view: F) -> F:
        limits: list[_RouteLimit] = view.__dict__.setdefault(_LIMITS_ATTRIBUTE, [])
        limits.append(_RouteLimit(spec, scope, key_func, exempt_when))
        return view

    return mark


def create_limiter(app: Flask) -> Limiter:
    """A Limiter of ``app``'s own, counting at GATEHOUSE_RATELIMIT_STORAGE_URI, applied to the
    Gatehouse views ``limit`` marked (call after the blueprint is registered).

    Flask-Limiter keeps a decorated view's limits on the Limiter that decorated it, so each
    app's ``view_functions`` gets its own wrapped copy, and only Gatehouse's pages pay for
    the check (the request filter lets the host's routes skip it early).
    """
    storage_uri, storage_options = limiter_storage(app)
    limiter = Limiter(
        key_func=get_remote_address,
        storage_uri=storage_uri,
        storage_options=storage_options,
        # No X-RateLimit headers: writing them reads the storage after the view has done its
        # work, and an outage there would turn a completed action into a 500.
        headers_enabled=False,
        strategy="moving-window",
    )
    limiter.request_filter(_outside_gatehouse)
    limiter.init_app(app)
    for endpoint, view in list(app.view_functions.items()):
        marks: list[_RouteLimit] = getattr(view, _LIMITS_ATTRIBUTE, [])
        if not endpoint.startswith("gatehouse.") or not marks:
            continue
        wrapped: Any = view
        for mark in marks:
            wrapped = limiter.shared_limit(
                mark.spec,
                mark.scope,
                key_func=mark.key_func,
                methods=_ACTING_METHODS,
                exempt_when=mark.exempt_when,
            )(wrapped)
        app.view_functions[endpoint] = wrapped
    return limiter


def route_retry_after() -> int | None:
    """Seconds until the route limit this request broke frees a slot (None when the counter
    storage cannot tell)."""
    broken = state.get().limiter.current_limit
    if broken is None:
        return None
    try:
        return max(1, int(broken.reset_at - time.time()))
    except StorageError:
        return None


def _outside_gatehouse() -> bool:
    """Only Gatehouse's own pages carry its limits: let the rest skip the limiter early."""
    return request.blueprint != "gatehouse"


def _strategy() -> RateLimiter:
    """The current app's counters."""
    return state.get().limiter.limiter


def _storage() -> Storage:
    """Where the current app's counters live (for the plain counters of attempts in flight)."""
    return state.get().limiter.storage


def signup_attempt_limit() -> str:
    return str(current_app.config["GATEHOUSE_SIGNUP_ATTEMPT_LIMIT"])


def account_change_limit() -> str:
    return str(current_app.config["GATEHOUSE_ACCOUNT_CHANGE_LIMIT"])


def account_key() -> str:
    """``key_func`` for limits per signed-in account (the client IP before sign-in)."""
    user_id: str | None = current_user.get_id()
    return f"user:{user_id}" if user_id else get_remote_address()


def identifier_key(key: str) -> str:
    """A storage key for an account's identifier (``TypedEmail.key``, or a stored address),
    hashed so counters hold no addresses."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@lru_cache(maxsize=16)
def _tiers(spec: str) -> list[RateLimitItem]:
    return parse_many(spec)


def _lockout_key(identifier: str) -> str:
    device = _known_device(identifier)
    return f"device:{device}" if device else f"account:{identifier}"


class LoginAttempt:
    """One password check's (or, with ``factor="code"``, one second-factor code's) place in
    its account's lockout, held while the check runs. Each factor counts on its own.

    Only checks that ran and found the password wrong count (``failed``): an attempt the
    server could not check (the database down, a crash) counts nothing. The per-IP limit on
    failed logins counts passwords only. So that parallel
    guesses still cannot overrun the limit, each attempt first takes an in-flight slot:
    failures plus attempts in flight never exceed a tier. An attempt that finds the tiers
    full only because of attempts still in flight waits briefly for them, so ten browsers
    entering the right password at once all get in, while fifty wrong guesses at once still
    reach at most five checks.
    """

    def __init__(self, typed_key: str, *, factor: Factor = "password") -> None:
        self._typed_key = typed_key
        self._factor = factor
        self._namespace, self._limits = _FACTORS[factor]
        self._key = _lockout_key(identifier_key(typed_key))
        self._held = False
        #: Seconds to wait when the attempt was refused unchecked (the account is locked).
        self.retry_after: int | None = self._reserve()
        self._held = self.retry_after is None

    def _reserve(self) -> int | None:
        """Take an in-flight slot, waiting up to _INFLIGHT_WAIT for attempts in flight; else
        the seconds until a retry: when the account's failures alone fill a tier, or when
        the wait ran out. A client IP that failed too often gets TooManyRequests."""
        storage, strategy = _storage(), _strategy()
        if self._factor == "password":
            refuse_failing_ip()
        tiers = _tiers(current_app.config[self._limits])
        in_flight_key = self._in_flight_key
        deadline = time.monotonic() + _INFLIGHT_WAIT
        while True:
            # The increment is atomic: parallel attempts each see a different count.
            in_flight = storage.incr(in_flight_key, _INFLIGHT_EXPIRY)
            windows = [
                strategy.get_window_stats(tier, self._namespace, self._key) for tier in tiers
            ]
            if all(window.remaining >= in_flight for window in windows):
                return None
            storage.incr(in_flight_key, _INFLIGHT_EXPIRY, amount=-1)
            locked = [window for window in windows if window.remaining <= 0]
            if locked or time.monotonic() >= deadline:
                return _wait(locked or windows)
            time.sleep(_INFLIGHT_POLL)

    @property
    def _in_flight_key(self) -> str:
        return f"{_INFLIGHT_NAMESPACE}/{self._factor}/{self._key}"

    def failed(self) -> bool:
        """The password (or code) was checked and is wrong: count it against the account and,
        for a password, this client's IP (before the flow commits, so an outage here fails
        the whole request). True when this failure locked the account: in-flight slots let
        only one failure be the one that fills a tier."""
        if not self._held:
            return False
        strategy = _strategy()
        if self._factor == "password":
            count_failing_ip()
        tiers = _tiers(current_app.config[self._limits])
        for tier in tiers:
            strategy.hit(tier, self._namespace, self._key)
        self._release()
        return any(
            strategy.get_window_stats(tier, self._namespace, self._key).remaining <= 0
            for tier in tiers
        )

    def succeeded(self) -> None:
        """The password (or code) was right: forget the account's failures of that factor
        (before the flow commits)."""
        if not self._held:
            return
        clear_lockout(self._typed_key, factor=self._factor)
        self._release()

    def _release(self) -> None:
        self._held = False
        _storage().incr(self._in_flight_key, _INFLIGHT_EXPIRY, amount=-1)

    def __enter__(self) -> "LoginAttempt":
        return self

    def __exit__(self, *exc_info: object) -> None:
        """An attempt that ended neither way (an error while checking) counts nothing."""
        if not self._held:
            return
        try:
            self._release()
        except StorageError as error:
            # The slot lapses after _INFLIGHT_EXPIRY; the error that ended the check is
            # the one to report.
            current_app.logger.error("could not release a login attempt: %s", error)


def refuse_failing_ip() -> None:
    """Raise TooManyRequests when this client's failed logins fill GATEHOUSE_LOGIN_IP_LIMIT:
    the client, not an account, is refused (the plain 429 page, or a JSON error)."""
    strategy, ip = _strategy(), get_remote_address()
    windows = [
        strategy.get_window_stats(tier, _LOGIN_IP_NAMESPACE, ip)
        for tier in _tiers(current_app.config["GATEHOUSE_LOGIN_IP_LIMIT"])
    ]
    full = [window for window in windows if window.remaining <= 0]
    if full:
        raise TooManyRequests(retry_after=_wait(full))


def count_failing_ip() -> None:
    """One failed login (a wrong password, a refused provider callback) of this client."""
    strategy, ip = _strategy(), get_remote_address()
    for tier in _tiers(current_app.config["GATEHOUSE_LOGIN_IP_LIMIT"]):
        strategy.hit(tier, _LOGIN_IP_NAMESPACE, ip)


def _wait(windows: list[WindowStats]) -> int:
    """Seconds until the latest of these full windows frees a slot (rounded up)."""
    reset_at = max(window.reset_time for window in windows)
    return max(1, math.ceil(reset_at - time.time()))


#: The limits on accepted forms of each action: (per client IP, per address).
_ACCEPTED_LIMITS = {
    "signup": ("GATEHOUSE_SIGNUP_IP_LIMIT", "GATEHOUSE_SIGNUP_EMAIL_LIMIT"),
    "reset": ("GATEHOUSE_EMAIL_REQUEST_IP_LIMIT", "GATEHOUSE_EMAIL_REQUEST_ADDRESS_LIMIT"),
    "confirmation": ("GATEHOUSE_EMAIL_REQUEST_IP_LIMIT", "GATEHOUSE_EMAIL_REQUEST_ADDRESS_LIMIT"),
}


def count_accepted(action: str, address_key: str) -> None:
    """Count one accepted form of ``action`` ("signup", "reset", "confirmation") for this
    client IP and for the address (``TypedEmail.key``, or a stored address), or raise
    TooManyRequests when either limit is full (counting nothing then).

    Flows call it before they write anything. Counting after the response, as Flask-Limiter's
    ``deduct_when`` does, would let a storage outage turn a committed action into a 500.
    """
    config = current_app.config
    ip_limit, address_limit = _ACCEPTED_LIMITS[action]
    counters = [
        (tier, ids)
        for spec, ids in (
            (config[ip_limit], (action, "ip", get_remote_address())),
            (config[address_limit], _address_ids(action, address_key)),
        )
        for tier in _tiers(spec)
    ]
    strategy = _strategy()
    full = [
        strategy.get_window_stats(tier, _QUOTA_NAMESPACE, *ids)
        for tier, ids in counters
        if not strategy.test(tier, _QUOTA_NAMESPACE, *ids)
    ]
    if full:
        raise TooManyRequests(retry_after=_wait(full))
    for tier, ids in counters:
        strategy.hit(tier, _QUOTA_NAMESPACE, *ids)


def count_for_address(action: str, address_key: str) -> bool:
    """Count one more mail of ``action`` to the address on the counter of its per-address
    limit (the one ``count_accepted`` counts on); False, when that limit is full."""
    _, address_limit = _ACCEPTED_LIMITS[action]
    ids = _address_ids(action, address_key)
    strategy = _strategy()
    return all(
        strategy.hit(tier, _QUOTA_NAMESPACE, *ids)
        for tier in _tiers(current_app.config[address_limit])
    )


def _address_ids(action: str, address_key: str) -> tuple[str, str, str]:
    return (action, "address", identifier_key(address_key))


def first_refusal(typed_key: str) -> bool:
    """True for the first refused attempt on this locked account in five minutes."""
    key = identifier_key(typed_key)
    return _strategy().hit(_REPORT_EVERY, _REPORT_NAMESPACE, key)


def clear_lockout(typed_key: str, *, factor: Factor = "password") -> None:
    """Forget the account's counted attempts of ``factor`` (after a successful login or a
    password reset), and this browser's as a known device when there is a request."""
    identifier = identifier_key(typed_key)
    keys = {f"account:{identifier}"}
    if has_request_context():
        keys.add(_lockout_key(identifier))
    namespace, limits = _FACTORS[factor]
    strategy = _strategy()
    for key in keys:
        for tier in _tiers(current_app.config[limits]):
            strategy.clear(tier, namespace, key)


def _device_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="gatehouse.device")


def _known_device(identifier: str) -> str | None:
    """The device id of this browser's cookie when it was issued for ``identifier``."""
    cookie = transport.read(_DEVICE_COOKIE)
    if not cookie:
        return None
    try:
        data = _device_serializer().loads(cookie)
    except BadSignature:
        return None
    if not isinstance(data, list) or len(data) != 2 or data[0] != identifier[:32]:
        return None
    return str(data[1])


def is_known_device(typed_key: str) -> bool:
    """True when this browser has signed in to the account before (its device cookie)."""
    return _known_device(identifier_key(typed_key)) is not None


def remember_device(typed_key: str) -> None:
    """After a successful login, mark this browser as a known device of the account."""
    identifier = identifier_key(typed_key)
    device = _known_device(identifier) or secrets.token_urlsafe(16)
    value = _device_serializer().dumps([identifier[:32], device])
    transport.keep(_DEVICE_COOKIE, value, max_age=_DEVICE_LIFETIME)
