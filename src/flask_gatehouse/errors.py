"""Plain error pages and JSON errors: a stable message per status, nothing else.

No exception text reaches the client (it can hold SQL, paths or framework names); the
status code picks the message.
"""

from flask import Blueprint, Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from flask_limiter.errors import RateLimitExceeded
from limits.errors import StorageError
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import (
    BadHost,
    BadRequest,
    HTTPException,
    SecurityError,
    ServiceUnavailable,
    TooManyRequests,
)

from .access import wants_json
from .services import throttle

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Please check it and try again."),
    401: ("Sign in required", "Please sign in to continue."),
    403: ("Forbidden", "You don't have access to this page."),
    404: ("Not found", "There is no page at this address."),
    405: ("Method not allowed", "This page does not accept that kind of request."),
    413: ("Too large", "The request was too large."),
    429: ("Too many requests", "Too many attempts. Please wait a moment and try again."),
    500: ("Something went wrong", "An unexpected error happened. Please try again later."),
    503: ("Unavailable", "The service is briefly unavailable. Please try again shortly."),
}


def handle(error: HTTPException) -> ResponseReturnValue:
    code = error.code or 500
    title, message = MESSAGES.get(code, MESSAGES[500 if code >= 500 else 400])
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    if wants_json():
        return jsonify(error={"code": code, "message": message}), code, headers
    if isinstance(request.routing_exception, (BadHost, SecurityError)):
        # The Host header is unusable (no valid host name, or not in TRUSTED_HOSTS): Flask
        # then has no URL adapter, so no page whose layout calls url_for can be rendered.
        return (
            f"{title}\n\n{message}\n",
            code,
            [*headers, ("Content-Type", "text/plain; charset=utf-8")],
        )
    # Rendered without context processors: Flask-Login's would load the user, which needs
    # the database, which may be exactly what failed.
    template = current_app.jinja_env.get_template("gatehouse/error.html")
    page = template.render(code=code, title=title, message=message, show_account_nav=False)
    return page, code, headers


def database_unavailable(error: SQLAlchemyError) -> ResponseReturnValue:
    """A lost or refused database connection: 503 and a log line, nothing half-written.

    Each flow commits once at its end, so the failed request's work is rolled back when the
    session is removed. SQLAlchemy invalidates the pool on a disconnect, so the first request
    after the database returns reconnects by itself.
    """
    current_app.logger.error("database unavailable: %s", error)
    return handle(ServiceUnavailable(retry_after=5))


def rate_limited(error: RateLimitExceeded) -> ResponseReturnValue:
    """A route limit is full: 429 with Retry-After. Flask-Limiter writes no headers (see
    ``throttle.create_limiter``), so the wait is added here; without the counter storage
    the page goes out without it rather than fail."""
    wait = throttle.route_retry_after()
    if wait is not None:
        return handle(TooManyRequests(retry_after=wait))
    return handle(error)


def unreadable_body(error: Exception) -> ResponseReturnValue:
    """The WSGI server could not decode the request body (gunicorn raises its own parse
    errors from ``wsgi.input`` for a malformed chunked body): the client's fault, a 400."""
    return handle(BadRequest())


def _server_body_errors() -> tuple[type[Exception], ...]:
    """The exceptions the WSGI server raises while the app reads a malformed body, when they
    are not an OSError (which Werkzeug already answers with a 400)."""
    try:
        from gunicorn.http.errors import ParseException  # type: ignore[import-untyped]
    except ImportError:  # served by another server
        return ()
    return (ParseException,)


def counters_unavailable(error: StorageError) -> ResponseReturnValue:
    """The rate-limit storage (Redis) is unreachable: refuse the rate-limited action with a
    503 rather than let it through unlimited. Pages without limits are not affected."""
    current_app.logger.error("rate-limit storage unavailable: %s", error.storage_error)
    return handle(ServiceUnavailable(retry_after=5))


def register(target: Flask | Blueprint) -> None:
    """Handle every HTTP error (unhandled exceptions arrive here as 500s), outages of the
    database or the rate-limit storage (503) and bodies the WSGI server could not decode
    (400): on Gatehouse's blueprint always, on the whole app when GATEHOUSE_HARDEN_WHOLE_APP
    is set."""
    target.register_error_handler(HTTPException, handle)
    for outage in (OperationalError, InterfaceError, PoolTimeoutError):
        target.register_error_handler(outage, database_unavailable)
    target.register_error_handler(StorageError, counters_unavailable)
    for unreadable in _server_body_errors():
        target.register_error_handler(unreadable, unreadable_body)
    target.register_error_handler(RateLimitExceeded, rate_limited)
