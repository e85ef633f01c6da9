"""Durations set from the environment: seconds or ISO 8601, anything else refused at start-up.

``app.config.from_prefixed_env()`` parses each ``FLASK_*`` variable as JSON: ``300`` arrives
as an int and ``PT5M`` as a string, never as a timedelta.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_gatehouse import Gatehouse, Model
from flask_gatehouse.config import DEFAULTS
from tests.conftest import TEST_CONFIG, all_mail_sent, csrf_token
from tests.smtp import Mailbox, link_path, text

DURATION_KEYS = [key for key, value in DEFAULTS.items() if isinstance(value, timedelta)]


def host_from_environment(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Flask:
    """A host app configured only by FLASK_* environment variables, as in production."""
    environment = {
        "FLASK_SECRET_KEY": TEST_CONFIG["SECRET_KEY"],
        "FLASK_GATEHOUSE_BASE_URL": "https://gatehouse.test",
        "FLASK_SQLALCHEMY_DATABASE_URI": "sqlite://",
        **variables,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    app = Flask(__name__)
    app.config.from_prefixed_env()
    db = SQLAlchemy(model_class=Model)
    db.init_app(app)
    Gatehouse().init_app(app, db)
    return app


@pytest.fixture
def app(make_app: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Flask:
    """The demo (it reads FLASK_* variables) with FLASK_GATEHOUSE_RESET_MAX_AGE set to
    ``request.param``."""
    monkeypatch.setenv("FLASK_GATEHOUSE_RESET_MAX_AGE", request.param)
    app: Flask = make_app()
    return app


@pytest.mark.parametrize("app", ["300", "PT5M"], indirect=True)
def test_a_reset_link_lives_as_long_as_the_environment_says(
    app: Flask, user: Any, mailbox: Mailbox
) -> None:
    client = app.test_client()
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        form = {"csrf_token": csrf_token(client.get("/forgot")), "email": user.email}
        assert client.post("/forgot", data=form).status_code == 302
        assert all_mail_sent()
        (message,) = mailbox.messages
        assert "expires in 5 minutes" in text(message)
        path = link_path(message, "/reset/")
        clock.shift(timedelta(minutes=4, seconds=59))
        assert client.get(path).status_code == 200
        clock.shift(timedelta(seconds=1))
        assert client.get(path).status_code == 400


@pytest.mark.parametrize("key", DURATION_KEYS)
def test_every_duration_can_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    app = host_from_environment(monkeypatch, **{f"FLASK_{key}": "PT5M"})
    assert app.config[key] == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        ("90", timedelta(seconds=90)),
        ("0.25", timedelta(milliseconds=250)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P30D", timedelta(days=30)),
        ("P1W", timedelta(days=7)),
    ],
)
def test_seconds_and_iso_8601_durations(
    monkeypatch: pytest.MonkeyPatch, variable: str, expected: timedelta
) -> None:
    app = host_from_environment(monkeypatch, FLASK_GATEHOUSE_AUDIT_RETENTION=variable)
    assert app.config["GATEHOUSE_AUDIT_RETENTION"] == expected


@pytest.mark.parametrize("key", DURATION_KEYS)
def test_every_duration_is_checked_at_start_up(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    with pytest.raises(RuntimeError, match=f"^{key} must be .*PT5M"):
        host_from_environment(monkeypatch, **{f"FLASK_{key}": "5 minutes"})


@pytest.mark.parametrize(
    "variable",
    [
        "5 minutes",  # not ISO 8601
        "pt5m",
        "-1",
        "0",
        "-PT5M",
        "true",  # JSON true: a bool, not one second
        "P1M",  # a month has no fixed length
        "NaN",
        "1e400",  # infinity
        "1e20",  # beyond what a timedelta holds
        '{"minutes": 5}',
        "null",
    ],
)
def test_anything_else_stops_start_up_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    with pytest.raises(RuntimeError, match=r"^GATEHOUSE_RESET_MAX_AGE must be"):
        host_from_environment(monkeypatch, FLASK_GATEHOUSE_RESET_MAX_AGE=variable)
