"""Access control for views: the protected-page decorator and what unauthenticated users see."""

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

P = ParamSpec("P")
R = TypeVar("R")


def login_required(view: Callable[P, R]) -> Callable[P, R | ResponseReturnValue]:
    """Let only signed-in users reach ``view``.

    Unlike Flask-Login's decorator this one exempts no method (Flask-Login lets OPTIONS
    through to the view body) and ignores ``LOGIN_DISABLED``.
    """

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | ResponseReturnValue:
        if not current_user.is_authenticated:
            return unauthorized()
        return view(*args, **kwargs)

    return wrapped


def wants_json() -> bool:
    """True for API clients: a JSON body, or JSON preferred over HTML."""
    if request.is_json:
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
