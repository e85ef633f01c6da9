"""The ``Gatehouse`` extension object: configuration defaults and the wiring of the parts."""

import re
from urllib.parse import urlsplit

from flask import Flask, Response, request
from flask_cors import CORS
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.utils import import_string

from . import durations, errors, headers, state
from .access import unauthorized
from .blueprint import blueprint
from .cli import cli
from .config import DEFAULTS
from .forms import RegisterForm
from .models import Model
from .services import access_tokens, mail, oidc, outbox, saml, sessions, throttle
from .services.database import add_version_location, configure_engines
from .services.passwords import MIN_LENGTH_FLOOR

#: Applied when the host left Flask's MAX_CONTENT_LENGTH unset: auth forms are small.
DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024
_MIN_SECRET_KEY_LENGTH = 16


class Gatehouse:
    """Accounts for a Flask app: ``Gatehouse(app, db)`` or ``gatehouse.init_app(app, db)``."""

    def __init__(self, app: Flask | None = None, db: SQLAlchemy | None = None) -> None:
        if app is not None:
            if db is None:
                raise RuntimeError("Gatehouse(app, db) needs the app's SQLAlchemy object too.")
            self.init_app(app, db)

    def init_app(self, app: Flask, db: SQLAlchemy) -> None:
        """Register Gatehouse on ``app``, storing accounts through ``db``.

        Reads the ``GATEHOUSE_*`` keys listed with their defaults in ``flask_gatehouse.config``
        (durations as a timedelta, seconds or ISO 8601, e.g. "PT5M") and Flask's
        ``SECRET_KEY``; Flask-Mailman's ``MAIL_*`` keys when the host has not set
        up Flask-Mailman itself. Sets ``MAX_CONTENT_LENGTH`` when unset, and makes Flask's
        own session cookie ``Secure`` (when ``GATEHOUSE_COOKIE_SECURE``) and ``SameSite=Lax``.
        Everything it builds for ``app`` (rate limiter, mail worker) is kept in
        ``app.extensions["gatehouse"]``; one ``Gatehouse`` object may serve many apps.
        """
        if "gatehouse" in app.extensions:
            raise RuntimeError("Gatehouse is already registered on this app.")
        if hasattr(app, "login_manager"):
            raise RuntimeError(
                "This app already has a Flask-Login LoginManager. Gatehouse brings its own "
                "(server-side sessions decide who is signed in): remove the app's "
                "LoginManager, and use flask_gatehouse.login_required and current_user."
            )
        if app.extensions.get("sqlalchemy") is not db:
            raise RuntimeError("Call db.init_app(app) before gatehouse.init_app(app, db).")
        if db.metadata is not Model.metadata:
            raise RuntimeError(
                "Create the SQLAlchemy object on Gatehouse's base so both share one metadata: "
                "db = SQLAlchemy(model_class=flask_gatehouse.Model)."
            )
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        durations.normalise(app.config)
        _secure_config(app)

        login_manager = LoginManager(app)
        # No Flask-Login state in the signed cookie: the server-side session is the only
        # source of identity, so nothing is written to Flask's session on page views.
        login_manager.session_protection = None
        # The session cookie; else, on routes that take them, a personal access token.
        login_manager.request_loader(
            lambda request: sessions.load_user(request) or access_tokens.load_user()
        )
        # Flask-Login reads its remember-me cookie instead of calling the request loader
        # whenever one is present, so a stray "remember_token" (a sibling subdomain can plant
        # one) would sign the user out. Gatehouse never sets that cookie: its name is one no
        # browser can send (a cookie name holds no spaces).
        app.config["REMEMBER_COOKIE_NAME"] = "no remember cookie: Gatehouse sessions decide"
        login_manager.unauthorized_handler(unauthorized)

        proxies = app.config["GATEHOUSE_TRUSTED_PROXIES"]
        if proxies:
            # Only the nearest ``proxies`` hops of X-Forwarded-For/-Proto are believed.
            app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
        mail.init_app(app)
        app.register_blueprint(blueprint, url_prefix=app.config["GATEHOUSE_URL_PREFIX"])
        _allow_cross_origin_api(app)
        # Headers check their scope per request (GATEHOUSE_HARDEN_WHOLE_APP); error pages are
        # the blueprint's own unless the host asks for them everywhere.
        app.after_request(headers.apply)
        if app.config["GATEHOUSE_HARDEN_WHOLE_APP"]:
            errors.register(app)
        app.cli.add_command(cli)
        engines = configure_engines(app, db)
        migrate = app.extensions.get("migrate")
        if migrate is not None and add_version_location not in migrate.migrate.configure_callbacks:
            migrate.migrate.configure(add_version_location)
        app.extensions["gatehouse"] = state.State(
            limiter=throttle.create_limiter(app),
            outbox=outbox.Outbox(app),
            engines=engines,
            register_form=_register_form(app.config["GATEHOUSE_REGISTER_FORM"]),
            providers=oidc.configure(app),
            saml_providers=saml.configure(app),
        )


def _allow_cross_origin_api(app: Flask) -> None:
    """CORS for Gatehouse's API routes, off unless GATEHOUSE_CORS_ORIGINS names origins:
    exactly those, with credentials (cookies, Authorization) for those alone; never a
    wildcard. Flask-Cors does the protocol (preflights, Vary: Origin)."""
    origins = list(app.config["GATEHOUSE_CORS_ORIGINS"])
    if not origins:
        return
    if any(origin == "*" or not origin.startswith(("https://", "http://")) for origin in origins):
        raise RuntimeError(
            'GATEHOUSE_CORS_ORIGINS lists exact origins such as "https://app.example.com"; '
            "a wildcard would lend every site the signed-in user's credentials."
        )
    prefix = app.config["GATEHOUSE_URL_PREFIX"]
    CORS(
        app,
        resources={rf"^{re.escape(prefix)}/api/.*": {"origins": origins}},
        supports_credentials=True,
        allow_headers=["Authorization", "Content-Type", "X-CSRFToken", "X-Session-Token"],
        # A script on another origin may read only the headers listed here.
        expose_headers=["Retry-After"],
        max_age=600,
    )

    @app.after_request
    def vary_on_origin(response: Response) -> Response:
        # Flask-Cors leaves Vary out when one origin is listed, yet the answer still depends
        # on the request's Origin (a cache must not hand one origin's answer to another).
        if request.path.startswith(f"{prefix}/api/"):
            response.vary.add("Origin")
        return response


def _register_form(setting: object) -> type[RegisterForm]:
    """GATEHOUSE_REGISTER_FORM as a class: the class itself, or its import path."""
    found = import_string(setting) if isinstance(setting, str) else setting
    if not (isinstance(found, type) and issubclass(found, RegisterForm)):
        raise RuntimeError(
            "GATEHOUSE_REGISTER_FORM must be a subclass of flask_gatehouse.forms.RegisterForm "
            '(or its import path, e.g. "blog.forms:SignUpForm").'
        )
    return found


def _secure_config(app: Flask) -> None:
    """Refuse unsafe settings (saying how to fix them) and tighten Flask's own defaults."""
    config = app.config
    secret = config.get("SECRET_KEY")
    if not secret or len(secret) < _MIN_SECRET_KEY_LENGTH:
        raise RuntimeError(
            "SECRET_KEY is missing or shorter than 16 characters. Set FLASK_SECRET_KEY to a "
            'random value, e.g. python -c "import secrets; print(secrets.token_hex())".'
        )
    base_url = config["GATEHOUSE_BASE_URL"]
    if not base_url or urlsplit(base_url).scheme not in ("http", "https"):
        raise RuntimeError(
            "GATEHOUSE_BASE_URL must be the site's public URL, e.g. https://example.com: links "
            "in emails are built from it, never from the request's Host header."
        )
    if config["GATEHOUSE_EMAIL_CONFIRMATION"] not in ("required", "optional", "off"):
        raise RuntimeError('GATEHOUSE_EMAIL_CONFIRMATION must be "required", "optional" or "off".')
    if config["GATEHOUSE_PASSKEYS"] not in ("on", "second-factor-only", "off"):
        raise RuntimeError('GATEHOUSE_PASSKEYS must be "on", "second-factor-only" or "off".')
    policy = config["GATEHOUSE_MFA_REQUIRED"]
    if not callable(policy) and policy not in ("off", "all"):
        raise RuntimeError(
            'GATEHOUSE_MFA_REQUIRED must be "off", "all" or a callable taking the user.'
        )
    if config["GATEHOUSE_PASSWORD_MIN_LENGTH"] < MIN_LENGTH_FLOOR:
        raise RuntimeError("GATEHOUSE_PASSWORD_MIN_LENGTH cannot be below 8 (NIST 800-63B).")
    if config["MAX_CONTENT_LENGTH"] is None:
        config["MAX_CONTENT_LENGTH"] = DEFAULT_MAX_CONTENT_LENGTH
    if config["GATEHOUSE_COOKIE_SECURE"]:
        config["SESSION_COOKIE_SECURE"] = True
    if config["SESSION_COOKIE_SAMESITE"] is None:
        config["SESSION_COOKIE_SAMESITE"] = "Lax"
