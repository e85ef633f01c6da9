"""Sign-up, login and logout: thin views over ``users`` and ``sessions``."""

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, logout_user

from .. import sessions, users
from ..forms import ConfirmForm, LoginForm, RegisterForm
from ..passwords import password_rules
from ..redirects import safe_next


def _after_login_url() -> str:
    """``next`` when it is a safe same-origin path, else the configured landing page."""
    default: str = current_app.config["GATEHOUSE_POST_LOGIN_URL"]
    return safe_next(request.args.get("next")) or default


def register() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(_after_login_url())
    form = RegisterForm()
    if form.validate_on_submit():
        # A taken address gets the same answer as a new one: the page must not tell a
        # stranger which addresses have accounts.
        users.register(
            email=form.clean_email, username=form.clean_username, password=form.password.data or ""
        )
        flash("Your account is ready. Sign in to continue.", "success")
        return redirect(url_for("gatehouse.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/register.html", form=form, rules=password_rules()), status


def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(_after_login_url())
    form = LoginForm()
    if form.validate_on_submit():
        user = users.authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            # A new CSRF token (and nothing else) carries over into the signed-in session.
            session.clear()
            sessions.start(user, remember=form.remember.data)
            return redirect(_after_login_url())
        form.form_errors.append("Incorrect email or password.")
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/login.html", form=form), status


def logout() -> ResponseReturnValue:
    """GET asks for confirmation; only a POST (with its CSRF token) signs out."""
    if not current_user.is_authenticated:
        return redirect(url_for("gatehouse.login"))
    form = ConfirmForm()
    if form.validate_on_submit():
        sessions.end_current()
        logout_user()
        session.clear()
        flash("You have been signed out.", "success")
        return redirect(url_for("gatehouse.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/logout.html", form=form), status
