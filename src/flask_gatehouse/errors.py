"""Plain error pages and JSON errors: a stable message per status, nothing else.

No exception text reaches the client (it can hold SQL, paths or framework names); the
status code picks the message.
"""

from flask import Flask, jsonify, render_template
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from .access import wants_json

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
    page = render_template(
        "gatehouse/error.html", code=code, title=title, message=message, show_account_nav=False
    )
    return page, code, headers


def register(app: Flask) -> None:
    """Handle every HTTP error (unhandled exceptions arrive here as 500s)."""
    app.register_error_handler(HTTPException, handle)
