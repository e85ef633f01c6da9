"""Gatehouse's state for one app, kept in ``app.extensions["gatehouse"]``.

Nothing lives at module level: two apps in one process (tests, or a host mounting two sites)
keep separate rate-limit counters, mail workers and settings.
"""

import os
import threading
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, cast

from flask import Flask, current_app
from limits.storage import MemoryStorage

if TYPE_CHECKING:
    from flask_limiter import Limiter
    from sqlalchemy.engine import Engine

    from .forms import RegisterForm
    from .services.oidc import Provider
    from .services.outbox import Outbox
    from .services.saml import Provider as SamlProvider
    from .services.session_lookup import Lane


@dataclass(eq=False)
class State:
    """What ``Gatehouse.init_app`` built for one app."""

    #: Flask-Limiter for Gatehouse's routes, counting in GATEHOUSE_RATELIMIT_STORAGE_URI.
    limiter: "Limiter"
    #: The worker that sends this app's outbox (started on the first request of a process).
    outbox: "Outbox"
    #: The app's database engines (their pools are rebuilt in a forked child).
    engines: "list[Engine]"
    #: The sign-up form class (GATEHOUSE_REGISTER_FORM).
    register_form: "type[RegisterForm]"
    #: Social login's providers by short name (GATEHOUSE_OIDC_PROVIDERS), in their order.
    providers: "dict[str, Provider]"
    #: SAML identity providers by short name (GATEHOUSE_SAML_PROVIDERS).
    saml_providers: "dict[str, SamlProvider]"
    #: The signed-in look-up's lean path per engine (``services/session_lookup``).
    session_lanes: "dict[Engine, Lane | None]" = field(default_factory=dict)
    #: When this process last deleted expired audit events (``audit.record``).
    events_pruned_at: datetime | None = None
    #: When this process last found the database's schema ready (``/readyz`` trusts it a while).
    schema_ready_at: datetime | None = None

    def __post_init__(self) -> None:
        _live.add(self)

    def after_fork(self) -> None:
        """In a forked child (a pre-forking server): nothing may be shared with the parent,
        and a lock another thread held at the fork would never be released here. Database
        pools start empty (the parent keeps its connections: ``close=False``), the mail
        worker gets new locks and no thread (the next request starts one), in-memory counters
        get new locks (their expiry timer re-arms by itself)."""
        for engine in self.engines:
            engine.dispose(close=False)
        self.outbox.after_fork()
        storage = self.limiter.storage
        if isinstance(storage, MemoryStorage):
            storage.locks = defaultdict(threading.RLock)


#: Every app's state in this process, only so a forked child can rebuild their locks.
_live: "weakref.WeakSet[State]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for found in list(_live):
        found.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def get(app: Flask | None = None) -> State:
    """The state of ``app`` (by default the current app)."""
    target = app if app is not None else current_app
    return cast(State, target.extensions["gatehouse"])
