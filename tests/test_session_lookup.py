"""The signed-in look-up's lean path (services/session_lookup): taken where it is exact, and
left for the ordinary path where a host watches statements or the database misbehaves."""

from typing import Any

from blog import db
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from flask_gatehouse import state
from flask_gatehouse.services import users
from flask_gatehouse.services.session_lookup import Lane
from tests.conftest import PASSWORD, Account, login, logout


def lane(app: Flask) -> Lane | None:
    with app.app_context():
        return state.get(app).session_lanes.get(db.engine)


def test_a_page_view_takes_no_pooled_connection(
    app: Flask, client: FlaskClient, user: Account
) -> None:
    login(client, user.email)
    assert client.get("/blogs").status_code == 200  # the lane opens its connection
    assert isinstance(lane(app), Lane)
    taken: list[object] = []
    with app.app_context():
        pool = db.engine.pool

    def count(*args: Any) -> None:
        taken.append(args)

    event.listen(pool, "checkout", count)
    try:
        assert "Hi alice" in client.get("/blogs").text
    finally:
        event.remove(pool, "checkout", count)
    assert taken == []


def test_a_host_watching_statements_sees_the_look_up(
    app: Flask, client: FlaskClient, user: Account
) -> None:
    """A tracing listener turns the lean path off: nothing is silently skipped."""
    login(client, user.email)
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", watch)
    try:
        assert "Hi alice" in client.get("/blogs").text
    finally:
        event.remove(engine, "before_cursor_execute", watch)
    assert any("gatehouse_sessions" in statement for statement in seen)


def test_a_broken_lean_connection_falls_back_and_is_replaced(
    app: Flask, client: FlaskClient, user: Account
) -> None:
    login(client, user.email)
    assert client.get("/blogs").status_code == 200
    found = lane(app)
    assert found is not None
    for connection in found._idle:  # as a database restart would leave them
        connection.close()
    assert "Hi alice" in client.get("/blogs").text
    assert "Hi alice" in client.get("/blogs").text
    logout(client)
    assert client.get("/blogs").status_code == 302  # the revocation is seen at once


def test_disposing_the_engine_closes_the_lean_connections(
    app: Flask, client: FlaskClient, user: Account
) -> None:
    login(client, user.email)
    assert client.get("/blogs").status_code == 200
    assert lane(app) is not None
    with app.app_context():
        db.engine.dispose()
    assert lane(app) is None
    assert "Hi alice" in client.get("/blogs").text


def test_an_in_memory_database_keeps_the_ordinary_path(make_app: Any) -> None:
    """``sqlite://`` is one connection, which the lean path must not take for itself."""
    app = make_app(SQLALCHEMY_DATABASE_URI="sqlite://")
    with app.app_context():
        db.create_all()
        users.register(email="mem@example.com", username="mem", password=PASSWORD, confirmed=True)
        db.session.commit()
    client = app.test_client()
    login(client, "mem@example.com")
    assert "Hi mem" in client.get("/blogs").text
    with app.app_context():
        assert db.engine in state.get(app).session_lanes
        assert state.get(app).session_lanes[db.engine] is None
