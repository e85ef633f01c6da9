"""The API's OpenAPI 3.1 document, kept in the package (``api/openapi.json``) and served."""

import json
from functools import cache
from importlib.resources import files
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue


@cache
def _spec() -> dict[str, Any]:
    """The document: constant data, read once per process."""
    found: dict[str, Any] = json.loads(
        files("flask_gatehouse").joinpath("api/openapi.json").read_text("utf-8")
    )
    return found


def openapi() -> ResponseReturnValue:
    return jsonify(_spec())
