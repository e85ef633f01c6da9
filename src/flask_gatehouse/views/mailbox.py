"""Placeholder: being written."""

from typing import Any


def index(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def message(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError
