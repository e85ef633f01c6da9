"""Health endpoints for load balancers and orchestrators.

``/healthz`` says the process answers; ``/readyz`` that it can serve, i.e. the database is
reachable and holds Gatehouse's schema at the revision this code expects, and the rate-limit
storage (Redis, when configured) is reachable. Neither says why a check failed: details go to
the log, not to whoever can reach the URL.
"""

from datetime import timedelta

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .. import state
from ..models import utcnow
from ..services.database import db, schema_problem

#: How long a schema found ready is trusted: a probe every few seconds then costs one
#: ``SELECT 1``, and a dropped table or a database restored from an old backup is still
#: noticed within the minute. A schema found wanting is checked again on every probe.
SCHEMA_TRUSTED_FOR = timedelta(seconds=30)


def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


def readyz() -> ResponseReturnValue:
    reachable = _database_ok()
    checks = {
        "database": reachable,
        "schema": reachable and _schema_ok(),
        "ratelimit_storage": _storage_ok(),
    }
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


def _schema_ok() -> bool:
    app_state = state.get()
    now = utcnow()
    trusted_since = app_state.schema_ready_at
    if trusted_since is not None and trusted_since <= now < trusted_since + SCHEMA_TRUSTED_FOR:
        return True
    app_state.schema_ready_at = None
    try:
        problem = schema_problem()
    except SQLAlchemyError as error:
        problem = f"database unavailable: {error}"
    if problem is not None:
        current_app.logger.warning("readiness: schema not ready: %s", problem)
        return False
    app_state.schema_ready_at = now
    return True


def _storage_ok() -> bool:
    if state.get().limiter.storage.check():
        return True
    current_app.logger.warning("readiness: rate-limit storage unavailable")
    return False
