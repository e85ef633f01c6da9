"""Duration settings as ``timedelta``, whatever form the host wrote them in.

``app.config.from_prefixed_env()`` parses each value as JSON, so an environment variable gives
a number (``FLASK_GATEHOUSE_RESET_MAX_AGE=300``) or a string (``=PT5M``), never a timedelta.
``Gatehouse.init_app`` turns every duration key (those whose default in ``config.py`` is a
timedelta) into one, so the code reading them at request time sees one type, and refuses
anything else (and durations of zero or less, where zero makes no sense) at start-up rather
than failing at the first request that reads it.

ISO 8601 durations are parsed by isodate: it answers calendar durations (years, months) with
its own ``Duration`` type instead of guessing their length (aniso8601 silently takes a month
as 30 days), which lets them be refused; a month is no fixed number of seconds.
"""

import math
from datetime import timedelta
from typing import Any

import isodate
from flask import Config

from .config import DEFAULTS

#: The keys whose value is a duration: those Gatehouse gives a timedelta default.
KEYS = tuple(key for key, value in DEFAULTS.items() if isinstance(value, timedelta))

#: Durations where zero means "none" (no grace period to postpone a required enrolment).
MAY_BE_ZERO = frozenset({"GATEHOUSE_MFA_GRACE"})

_ACCEPTED = (
    'a number of seconds (300), an ISO 8601 duration ("PT5M", "PT1H30M", "P30D") '
    "or a datetime.timedelta"
)


def normalise(config: Config) -> None:
    """Replace each duration setting of ``config`` by its timedelta; RuntimeError naming the
    key and the accepted forms for any other value."""
    for key in KEYS:
        config[key] = _parse(key, config[key])


def _parse(key: str, value: Any) -> timedelta:
    problem = f"{key} must be {_ACCEPTED}, not {value!r}."
    if isinstance(value, timedelta):
        delta = value
    # bool is an int, but FLASK_..._MAX_AGE=true is a mistake, not one second.
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise RuntimeError(problem)
        try:
            delta = timedelta(seconds=value)
        except OverflowError:
            raise RuntimeError(problem) from None
    elif isinstance(value, str):
        delta = _iso_8601(value, problem)
    else:
        raise RuntimeError(problem)
    if key in MAY_BE_ZERO and delta < timedelta(0):
        raise RuntimeError(f"{key} cannot be negative, not {value!r}.")
    if key not in MAY_BE_ZERO and delta <= timedelta(0):
        raise RuntimeError(f"{key} must be longer than zero, not {value!r}.")
    return delta


def _iso_8601(text: str, problem: str) -> timedelta:
    try:
        parsed = isodate.parse_duration(text)
    except (isodate.ISO8601Error, OverflowError):
        raise RuntimeError(problem) from None
    if not isinstance(parsed, timedelta):
        raise RuntimeError(
            f"{problem} Years and months have no fixed length: count in days (P30D)."
        )
    return parsed
