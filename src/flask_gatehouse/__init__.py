"""Gatehouse: complete, secure user accounts for Flask.

The public API is what this module exports; everything else (``flows``, ``services``,
``views``) is internal and may change in any release. ``flask_gatehouse.signals`` and
``flask_gatehouse.testing`` are public too, and so is ``flask_gatehouse.forms.RegisterForm``
for a host's extra sign-up fields (docs/host-data.md).
"""

from flask_login import current_user

from . import signals
from .access import login_required, recent_login_required
from .extension import Gatehouse
from .models import Event, Model, User, UserSession

__all__ = [
    "Event",
    "Gatehouse",
    "Model",
    "User",
    "UserSession",
    "current_user",
    "login_required",
    "recent_login_required",
    "signals",
]
