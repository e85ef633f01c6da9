"""Access control for views: who may reach a page (signed in, recently re-authenticated),
how often (the route limits), and what everyone else sees."""

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, ParamSpec, TypeVar, overload

from flask import current_app, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from .models import User
from .services import access_tokens, sessions, throttle

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


def signup_limits(action: str) -> Callable[[F], F]:
    """Every sign-up submission of ``action`` per client IP, accepted or refused: each one
    costs the password policy's checks. (Accepted sign-ups are counted by the sign-up flow.)
    A page and its API twin name the same action, and so spend the same counters."""
    return throttle.limit(throttle.signup_attempt_limit, scope=f"signup:{action}")


def account_change_limits(action: str) -> Callable[[F], F]:
    """Submissions of one account-changing form (``action``: its page and its API twin alike)
    per signed-in account. A visitor's request is not counted: every such route sends it to
    sign in (401) before anything runs, and counting it by IP would answer 429 instead."""
    return throttle.limit(
        throttle.account_change_limit,
        scope=f"account_change:{action}",
        key_func=throttle.account_key,
        exempt_when=_is_visitor,
    )


def _is_visitor() -> bool:
    return not current_user.is_authenticated


def signed_in_user() -> User:
    """The signed-in user as the model object (Flask-Login's ``current_user`` is a proxy),
    for views behind ``login_required``."""
    user: User = current_user._get_current_object()
    return user


@overload
def login_required(view: Callable[P, R]) -> Callable[P, R | ResponseReturnValue]: ...


@overload
def login_required(
    *, scopes: Iterable[str]
) -> Callable[[Callable[P, R]], Callable[P, R | ResponseReturnValue]]: ...


def login_required(
    view: Callable[P, R] | None = None, *, scopes: Iterable[str] | None = None
) -> Any:
    """Let only signed-in users reach ``view``.

    Unlike Flask-Login's decorator this one exempts no method (Flask-Login lets OPTIONS
    through to the view body) and ignores ``LOGIN_DISABLED``.

    ``@login_required(scopes=["read"])`` also lets a personal access token in
    (``Authorization: Bearer gth_...``) when it carries every scope listed; a token without
    them gets 403. Routes without ``scopes`` never accept a token.
    """
    if view is None:
        needed = frozenset(scopes or ())
        return lambda inner: _signed_in_only(inner, needed)
    return _signed_in_only(view, None)


def _signed_in_only(
    view: Callable[P, R], token_scopes: frozenset[str] | None
) -> Callable[P, R | ResponseReturnValue]:
    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | ResponseReturnValue:
        if not current_user.is_authenticated:
            return unauthorized()
        granted = access_tokens.scopes_of_request()
        if granted is not None and token_scopes is not None and not token_scopes <= granted:
            missing = " ".join(sorted(token_scopes - granted))
            message = f"This token lacks the scope this needs: {missing}."
            return jsonify(error={"code": 403, "message": message}), 403
        return view(*args, **kwargs)

    # Read by the request loader (access_tokens.load_user): only such routes take tokens.
    wrapped.gatehouse_token_scopes = token_scopes  # type: ignore[attr-defined]
    return wrapped


def recent_login_required(view: Callable[P, R]) -> Callable[P, R | ResponseReturnValue]:
    """Let only sessions that entered the password within GATEHOUSE_REAUTHENTICATE_AFTER reach
    ``view`` (implies ``login_required``): a session cookie stolen or left open an hour ago
    must not be enough to change the password or the address, or to delete the account."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | ResponseReturnValue:
        if not sessions.is_recently_authenticated():
            return reauthentication_required()
        return view(*args, **kwargs)

    return login_required(wrapped)


def wants_json() -> bool:
    """True for API clients: a JSON body, an ``Authorization`` header, any path under
    Gatehouse's ``/api/`` (an unknown one included), or JSON preferred over HTML."""
    if request.is_json or "Authorization" in request.headers:
        return True
    api = f"{current_app.config['GATEHOUSE_URL_PREFIX']}/api/"
    if request.path.startswith(api):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def unauthorized() -> ResponseReturnValue:
    """Send browsers to the login page (remembering where they were), API clients a 401."""
    if wants_json():
        return jsonify(error={"code": 401, "message": "Sign in required."}), 401
    return redirect(
        url_for("gatehouse.login", next=request.script_root + request.full_path.rstrip("?"))
    )


def reauthentication_required() -> ResponseReturnValue:
    """Send browsers to enter the password again and come back, API clients a 401.

    A POST cannot be replayed after the detour, so it comes back to its page's GET URL
    (which is the same path for every form Gatehouse protects this way).
    """
    if wants_json():
        message = "Enter your password again to continue: this action needs a recent sign-in."
        return jsonify(error={"code": 401, "message": message}), 401
    back = request.full_path.rstrip("?") if request.method == "GET" else request.path
    return redirect(url_for("gatehouse.reauthenticate", next=request.script_root + back))
