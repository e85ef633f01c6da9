"""The tutorial's blog behind a login, built on Gatehouse as any host app would use it.

Configuration comes from ``FLASK_*`` environment variables (``app.config.from_prefixed_env``),
e.g. ``FLASK_SECRET_KEY``, ``FLASK_SQLALCHEMY_DATABASE_URI``, ``FLASK_GATEHOUSE_BASE_URL``,
``FLASK_MAIL_SERVER``.
"""

import secrets
from pathlib import Path
from typing import Any

from flask import Flask, redirect, render_template
from flask.typing import ResponseReturnValue
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from flask_gatehouse import Gatehouse, Model, login_required

db = SQLAlchemy(model_class=Model)
migrate = Migrate(directory=str(Path(__file__).parent.parent / "migrations"))
gatehouse = Gatehouse()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI="sqlite:///blog.db",
        GATEHOUSE_SITE_NAME="The Blog",
        GATEHOUSE_POST_LOGIN_URL="/blogs",
        # The whole site is the blog: Gatehouse's headers and error pages on every route.
        GATEHOUSE_HARDEN_WHOLE_APP=True,
    )
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.from_mapping(test_config)
    if app.debug:
        # Development on this machine: a kept random key, links to the local server, and
        # mail kept in the dev mailbox (/dev/mailbox) unless an SMTP server is configured.
        if not app.config.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = _instance_secret_key(app)
        app.config.setdefault("GATEHOUSE_BASE_URL", "http://localhost:5000")
        app.config.setdefault("GATEHOUSE_DEV_MAILBOX", "MAIL_SERVER" not in app.config)

    db.init_app(app)
    migrate.init_app(app, db)
    gatehouse.init_app(app, db)

    @app.get("/")
    def index() -> ResponseReturnValue:
        return redirect("/blogs")

    @app.get("/favicon.ico")
    def favicon() -> ResponseReturnValue:
        # Browsers and crawlers ask for /favicon.ico whatever the page links.
        return app.send_static_file("favicon.svg")

    @app.get("/blogs")
    @login_required
    def blog() -> ResponseReturnValue:
        return render_template("blog.html")

    return app


def _instance_secret_key(app: Flask) -> str:
    """In debug mode only: a random key kept in the instance folder, so a fresh checkout runs
    without setup and sessions survive restarts. Outside debug, a missing FLASK_SECRET_KEY
    stops start-up (Gatehouse refuses to run without one)."""
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()
