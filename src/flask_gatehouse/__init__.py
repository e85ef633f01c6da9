"""Gatehouse: complete, secure user accounts for Flask."""

from .access import login_required
from .extension import Gatehouse
from .models import Model, User, UserSession

__all__ = ["Gatehouse", "Model", "User", "UserSession", "login_required"]
