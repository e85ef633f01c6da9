"""Gatehouse's state for one app, kept in ``app.extensions["gatehouse"]``.

Nothing lives at module level: two apps in one process (tests, or a host mounting two sites)
keep separate rate-limit counters, mail workers and settings.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from flask import Flask, current_app

if TYPE_CHECKING:
    from flask_limiter import Limiter

    from .services.outbox import Outbox


@dataclass
class State:
    """What ``Gatehouse.init_app`` built for one app."""

    #: Flask-Limiter for Gatehouse's routes, counting in GATEHOUSE_RATELIMIT_STORAGE_URI.
    limiter: "Limiter"
    #: The worker that sends this app's outbox (started on the first request of a process).
    outbox: "Outbox"


def get(app: Flask | None = None) -> State:
    """The state of ``app`` (by default the current app)."""
    target = app if app is not None else current_app
    return cast(State, target.extensions["gatehouse"])
