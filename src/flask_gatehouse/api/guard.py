"""What every JSON API route checks before its view runs, and the forms it reads bodies with.

- A request with a body must send JSON (415 otherwise): the forms read nothing else here;
  and a JSON object (400 otherwise), as the document says of every body.
- A ``browser`` client proves each unsafe request with the CSRF token the API hands it
  (``meta.csrf_token`` in answers), sent back in ``X-CSRFToken``: a browser sends its cookies
  with every request, even one another site's page makes. An ``app`` client keeps no cookies
  (``services.transport``), so a forged request has nothing to act with: it needs no token.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, request
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from ..forms import GatehouseForm
from ..services import json_body, transport
from .replies import refusal

F = TypeVar("F", bound=Callable[..., Any])
G = TypeVar("G", bound=GatehouseForm)

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_UNSAFE = _WITH_BODY | {"DELETE"}


def api_route(view: F) -> F:
    """Check the body's type and a browser's CSRF token before ``view``; drop the route's
    ``client`` argument (``services.transport`` reads it)."""

    @wraps(view)
    def wrapped(*args: Any, client: str | None = None, **kwargs: Any) -> Any:
        if request.method in _WITH_BODY and not request.is_json:
            return refusal(415, "Send a JSON body (Content-Type: application/json).")
        if request.method in _UNSAFE and not _csrf_passes():
            return refusal(403, _CSRF_REFUSED)
        if request.method in _WITH_BODY and not isinstance(json_body.read(), dict):
            # Every body is an object, even where the route reads none of it.
            return refusal(400, "Send a JSON object.")
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


_CSRF_REFUSED = (
    "The CSRF token is missing or wrong: send the one the last answer gave (meta.csrf_token; "
    "GET the session for one) in the X-CSRFToken header."
)


def _csrf_passes() -> bool:
    if transport.is_app() or not current_app.config.get("WTF_CSRF_ENABLED", True):
        return True
    try:
        validate_csrf(request.headers.get("X-CSRFToken"))
    except ValidationError:
        return False
    return True


def form(form_class: Callable[..., G], *args: Any, **kwargs: Any) -> G:
    """``form_class`` reading the JSON body, without a CSRF field of its own (``api_route``
    checked the header)."""
    return form_class(*args, meta={"csrf": False}, **kwargs)
