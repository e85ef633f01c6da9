"""Sign-up, login and logout: thin views over the ``registration`` and ``signin`` flows."""

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from ..services import audit, throttle
from ..flows import signup
from ..access import signed_in_user
from ..forms import ConfirmForm, EmailRequestForm, LoginForm, RegisterForm
from ..services.passwords import password_rules
from ..services.redirects import safe_next
from ..flows.signin import sign_in, sign_out


def _after_login_url() -> str:
    """``next`` when it is a safe same-origin path, else the configured landing page."""
    default: str = current_app.config["GATEHOUSE_POST_LOGIN_URL"]
    return safe_next(request.args.get("next")) or default


@throttle.limiter.limit(throttle.signup_ip_limit, methods=["POST"], deduct_when=throttle.accepted)
@throttle.limiter.limit(
    throttle.signup_email_limit,
    key_func=throttle.submitted_email_key,
    methods=["POST"],
    deduct_when=throttle.accepted,
)
def register() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(_after_login_url())
    form = RegisterForm()
    if form.validate_on_submit():
        # A taken address gets the same answer as a new one: the page must not tell a
        # stranger which addresses have accounts.
        registration.sign_up(
            email=form.clean_email, username=form.clean_username, password=form.password.data or ""
        )
        if current_app.config["GATEHOUSE_EMAIL_CONFIRMATION"] == "off":
            flash("Your account is ready. Sign in to continue.", "success")
        else:
            # No address in the message: flashes travel in Flask's readable session cookie.
            flash("Check your inbox: we sent you a link to confirm your address.", "success")
        return redirect(url_for("gatehouse.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/register.html", form=form, rules=password_rules()), status


@throttle.limiter.limit(throttle.login_ip_limit, methods=["POST"], deduct_when=throttle.failed)
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(_after_login_url())
    form = LoginForm()
    if form.validate_on_submit():
        result = sign_in(
            form.email.data or "", form.password.data or "", remember=form.remember.data
        )
        if result.user is not None:
            return redirect(_after_login_url())
        if result.unconfirmed:
            resend = EmailRequestForm(formdata=None, email=form.email.data)
            form.form_errors.append(
                "Confirm your email address first: follow the link we sent you."
            )
            return render_template("gatehouse/login.html", form=form, resend=resend), 403
        if result.retry_after is not None:
            form.form_errors.append(throttle.locked_message(result.retry_after))
            page = render_template("gatehouse/login.html", form=form)
            return page, 429, {"Retry-After": str(result.retry_after)}
        form.form_errors.append("Incorrect email or password.")
    elif form.is_submitted() and not form.csrf_token.errors:
        audit.record("login", "failure", detail="invalid form")
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/login.html", form=form), status


def logout() -> ResponseReturnValue:
    """GET asks for confirmation; only a POST (with its CSRF token) signs out."""
    if not current_user.is_authenticated:
        return redirect(url_for("gatehouse.login"))
    form = ConfirmForm()
    if form.validate_on_submit():
        sign_out(signed_in_user())
        flash("You have been signed out.", "success")
        return redirect(url_for("gatehouse.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/logout.html", form=form), status
