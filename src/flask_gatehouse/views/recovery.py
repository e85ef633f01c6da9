"""Placeholder: being written."""

from typing import Any


def forgot_password(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def reset_password(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def secure_account(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError
