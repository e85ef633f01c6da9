"""Placeholder: being written."""

from typing import Any


def reauthenticate(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def change_password(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def change_email(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def confirm_email_change(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def delete_account(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def download_data(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError
