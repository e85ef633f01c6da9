"""Engine settings Gatehouse applies to SQLite, and the constraints the schema relies on."""

import pytest
import sqlalchemy as sa
from blog import db
from flask import Flask

from flask_gatehouse import User, UserSession
from tests.conftest import login


@pytest.fixture
def sqlite_app(make_app, tmp_path) -> Flask:
    app: Flask = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'pragmas.db'}")
    with app.app_context():
        db.create_all()
    return app


def test_sqlite_pragmas(sqlite_app: Flask) -> None:
    with sqlite_app.app_context(), db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


def test_deleting_a_user_deletes_their_sessions(app: Flask, client, user) -> None:
    login(client, user.email)
    with app.app_context():
        db.session.execute(sa.delete(User).where(User.id == user.id))
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(UserSession)) == 0
    assert client.get("/blogs").status_code == 302
