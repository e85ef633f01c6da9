"""Health endpoints for load balancers and orchestrators.

``/healthz`` says the process answers; ``/readyz`` that it can serve, i.e. the database and
the rate-limit storage (Redis, when configured) are reachable. Neither says why a check
failed: details go to the log, not to whoever can reach the URL.
"""

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .. import state
from ..services.database import db


def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


def readyz() -> ResponseReturnValue:
    checks = {"database": _database_ok(), "ratelimit_storage": _storage_ok()}
    ready = all(checks.values())
    body = {"status": "ok" if ready else "unavailable"} | {
        name: "ok" if ok else "unavailable" for name, ok in checks.items()
    }
    return jsonify(body), 200 if ready else 503


def _database_ok() -> bool:
    session = db().session
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        current_app.logger.warning("readiness: database unavailable: %s", error)
        session.rollback()
        return False
    return True


def _storage_ok() -> bool:
    if state.get().limiter.storage.check():
        return True
    current_app.logger.warning("readiness: rate-limit storage unavailable")
    return False
