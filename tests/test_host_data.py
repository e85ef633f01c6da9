"""A host app's own data about its users, as docs/host-data.md sets it up: tables with a
foreign key to ``gatehouse_users``, relationships reaching them from ``current_user``, extra
sign-up fields through a ``RegisterForm`` subclass, and rows that go with the account.
"""

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

from flask_gatehouse import Gatehouse, Model, User, current_user, login_required, state, testing
from flask_gatehouse.forms import RegisterForm
from flask_gatehouse.services import users
from tests.conftest import PASSWORD, TEST_CONFIG, csrf_token, login
from tests.smtp import SMTPServer

# The host's module, as docs/host-data.md writes it.

db = SQLAlchemy(model_class=Model)


class Profile(Model):
    """One row per account, created at sign-up from the form's extra fields."""

    __tablename__ = "host_profiles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="CASCADE"), primary_key=True
    )
    display_name: Mapped[str] = mapped_column(String(80))
    user: Mapped[User] = relationship(
        backref=backref("profile", uselist=False, passive_deletes=True)
    )


class Post(Model):
    """Many rows per account."""

    __tablename__ = "host_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(
        ForeignKey("gatehouse_users.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    author: Mapped[User] = relationship(
        backref=backref("posts", order_by="Post.id", passive_deletes=True)
    )


class SignUpForm(RegisterForm):
    display_name = StringField("Display name", validators=[InputRequired(), Length(max=80)])
    accept_terms = BooleanField("I accept the terms of use", validators=[DataRequired()])

    def save_host_data(self, user: User) -> None:
        db.session.add(Profile(user=user, display_name=self.display_name.data))


# The host's tables join Gatehouse's metadata only while this module's tests run: the other
# modules build and drop their databases from that metadata, and a table of ours left behind
# in a shared (PostgreSQL) database would make their drop_all fail on its foreign keys.
HOST_TABLES = [Profile.__table__, Post.__table__]
for _table in HOST_TABLES:
    Model.metadata.remove(_table)


def create_app(config: dict[str, Any]) -> Flask:
    app = Flask(__name__)
    app.config.update(GATEHOUSE_REGISTER_FORM=SignUpForm)
    app.config.update(config)
    db.init_app(app)
    Gatehouse().init_app(app, db)

    @app.get("/me")
    @login_required
    def me() -> str:
        posts = ", ".join(post.title for post in current_user.posts)
        return f"{current_user.profile.display_name}: {posts}"

    return app


# The tests.


@pytest.fixture(scope="module", autouse=True)
def host_tables() -> Iterator[None]:
    for table in HOST_TABLES:
        Model.metadata._add_table(table.name, table.schema, table)
    yield
    for table in HOST_TABLES:
        Model.metadata.remove(table)


@pytest.fixture
def app(database_url: str, ratelimit_storage_uri: str, smtp_server: SMTPServer) -> Iterator[Flask]:
    app = create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "GATEHOUSE_RATELIMIT_STORAGE_URI": ratelimit_storage_uri,
            "GATEHOUSE_EMAIL_CONFIRMATION": "off",
            "MAIL_PORT": smtp_server.port,
        }
    )
    with app.app_context():
        db.drop_all()
        db.create_all()
        state.get(app).limiter.reset()
    yield app
    try:
        assert testing.wait_for_mail(app)
    finally:
        testing.stop_mail(app)
        with app.app_context():
            db.session.remove()
            db.metadata.drop_all(db.engine, tables=HOST_TABLES)
            db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def sign_up(client: FlaskClient, email: str, **fields: str) -> int:
    form = {"email": email, "username": "hana", "password": PASSWORD, **fields}
    response = client.post(
        "/register", data={"csrf_token": csrf_token(client.get("/register")), **form}
    )
    return response.status_code


def add_account(app: Flask, email: str, display_name: str, *titles: str) -> int:
    """An account made through the library, with the host's rows written by the host."""
    with app.app_context():
        user = users.register(email=email, username="hana", password=PASSWORD, confirmed=True)
        assert user is not None
        db.session.add(Profile(user=user, display_name=display_name))
        db.session.add_all(Post(author=user, title=title) for title in titles)
        db.session.commit()
        return user.id


def host_rows(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    with app.app_context():
        return {
            "profiles": [
                (row.user_id, row.display_name) for row in db.session.scalars(sa.select(Profile))
            ],
            "posts": [
                (row.author_id, row.title)
                for row in db.session.scalars(sa.select(Post).order_by(Post.id))
            ],
        }


def delete_account(client: FlaskClient) -> int:
    token = csrf_token(client.get("/account/delete"))
    response = client.post("/account/delete", data={"csrf_token": token, "password": PASSWORD})
    return response.status_code


# Sign-up with extra fields: GATEHOUSE_REGISTER_FORM and RegisterForm.save_host_data.


def test_sign_up_page_shows_the_extra_fields(client: FlaskClient) -> None:
    page = client.get("/register").text
    assert 'name="display_name"' in page
    assert 'name="accept_terms"' in page


def test_sign_up_stores_the_extra_fields_with_the_account(app: Flask, client: FlaskClient) -> None:
    assert sign_up(client, "hana@example.com", display_name="Hana S.", accept_terms="y") == 302
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "hana@example.com"))
        assert user is not None
        assert host_rows(app)["profiles"] == [(user.id, "Hana S.")]


def test_extra_fields_are_checked_like_the_others(app: Flask, client: FlaskClient) -> None:
    assert sign_up(client, "hana@example.com", display_name="Hana S.") == 400
    assert sign_up(client, "hana@example.com", accept_terms="y") == 400
    with app.app_context():
        assert db.session.scalars(sa.select(User)).all() == []
    assert host_rows(app)["profiles"] == []


def test_a_taken_address_stores_nothing(app: Flask, client: FlaskClient) -> None:
    owner = add_account(app, "hana@example.com", "The real Hana")
    assert sign_up(client, "hana@example.com", display_name="Impostor", accept_terms="y") == 302
    assert host_rows(app)["profiles"] == [(owner, "The real Hana")]


# Relationships, deletion and ids: foreign keys and Flask-Login only.


def test_a_host_page_reaches_the_data_from_current_user(app: Flask, client: FlaskClient) -> None:
    add_account(app, "hana@example.com", "Hana S.", "First post", "Second post")
    add_account(app, "ivan@example.com", "Ivan", "Not Hana's")
    assert login(client, "hana@example.com").status_code == 302
    assert client.get("/me").text == "Hana S.: First post, Second post"


def test_deleting_the_account_deletes_its_host_rows(app: Flask, client: FlaskClient) -> None:
    hana = add_account(app, "hana@example.com", "Hana S.", "First post", "Second post")
    ivan = add_account(app, "ivan@example.com", "Ivan", "Ivan's post")
    login(client, "hana@example.com")
    assert delete_account(client) == 302
    assert host_rows(app) == {"profiles": [(ivan, "Ivan")], "posts": [(ivan, "Ivan's post")]}
    with app.app_context():
        assert db.session.get(User, hana) is None


def test_a_deleted_accounts_id_is_never_given_again(app: Flask, client: FlaskClient) -> None:
    """Counters keyed ``user:<id>``, the audit log and any host data kept by id must not
    follow a deleted account's id to a stranger (SQLite would reuse the highest id)."""
    add_account(app, "hana@example.com", "Hana S.")
    newest = add_account(app, "ivan@example.com", "Ivan")
    login(client, "ivan@example.com")
    assert delete_account(client) == 302
    assert add_account(app, "jana@example.com", "Jana") > newest
