"""Sign-up, login (and its pending stages) and logout: thin views over the sign-up and
sign-in flows."""

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from .. import messages, state
from ..access import signed_in_user, signup_limits
from ..flows import signin, signup
from ..forms import (
    CodeForm,
    ConfirmForm,
    LoginForm,
    NewPasswordForm,
    RegisterForm,
    TwoFactorLoginForm,
    code_refusal,
    locked_message,
    password_rules,
    register_form,
)
from ..services import passkeys, totp
from ..services.passkeys import mode
from .two_factor import recovery_codes_page


@signup_limits("register")
def register() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(signin.landing_url(request.args.get("next")))
    form = register_form()
    if form.validate_on_submit():
        # A taken address gets the same answer as a new one: the page must not tell a
        # stranger which addresses have accounts.
        signup.sign_up(
            email=form.clean_email,
            username=form.clean_username,
            password=form.password.data or "",
            save_host_data=form.save_host_data,
        )
        flash_signed_up()
        return redirect(url_for("gatehouse.login"))
    status = 400 if form.is_submitted() else 200
    page = render_template(
        "gatehouse/register.html",
        form=form,
        rules=password_rules(),
        passkey_sign_up=passkey_sign_up_offered(),
    )
    return page, status


def flash_signed_up() -> None:
    """What a sign-up says, whether the address was new or taken."""
    flash(messages.signed_up_message(), "success")


def passkey_sign_up_offered() -> bool:
    """Sign-up with a passkey instead of a password: with passkeys on, and Gatehouse's own
    sign-up form (a host's extra fields are posted with the password form only)."""
    return mode() == "on" and state.get().register_form is RegisterForm


def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(signin.landing_url(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        result = signin.sign_in_with_password(
            form.typed_email,
            form.password.data or "",
            remember=form.remember.data,
            next_url=request.args.get("next"),
        )
        if result.user is not None:
            return redirect(result.next_url)
        if result.next_page is not None:
            return redirect(url_for(result.next_page))
        if result.retry_after is not None:
            form.form_errors.append(locked_message(result.retry_after))
            return _login_page(form), 429, {"Retry-After": str(result.retry_after)}
        form.form_errors.append(messages.login_refusal())
    elif form.is_submitted() and not form.csrf_errors:
        signin.record_invalid_form()
    return _login_page(form), 400 if form.is_submitted() else 200


def _login_page(form: LoginForm) -> str:
    return render_template("gatehouse/login.html", form=form, passkeys_enabled=mode() == "on")


def login_new_password() -> ResponseReturnValue:
    """The password-change stage of a sign-in: no session until a new password is chosen."""
    user = signin.pending_user("password_change")
    if user is None:
        flash(messages.SIGN_IN_EXPIRED, "info")
        return redirect(url_for("gatehouse.login"))
    form = NewPasswordForm(user)
    if form.validate_on_submit():
        result = signin.change_required_password(form.password.data or "")
        if result is None:
            flash(messages.SIGN_IN_EXPIRED, "info")
            return redirect(url_for("gatehouse.login"))
        if result.next_page is not None:
            return redirect(url_for(result.next_page))
        flash("Your new password is set.", "success")
        return redirect(result.next_url)
    status = 400 if form.is_submitted() else 200
    page = render_template(
        "gatehouse/login_new_password.html", form=form, email=user.email, rules=password_rules()
    )
    return page, status


def login_two_factor() -> ResponseReturnValue:
    """The two-factor stage of a sign-in: no session until a code from the authenticator app
    or a recovery code; five wrong codes send the browser back to the password."""
    user = signin.pending_user("two_factor")
    if user is None:
        return _sign_in_expired()
    form = TwoFactorLoginForm()
    status, headers = (400 if form.is_submitted() else 200), dict[str, str]()
    if form.validate_on_submit():
        check = signin.pass_two_factor(form.code.data or "", trust_browser=form.trust_browser.data)
        if check.outcome == "expired":
            return _sign_in_expired()
        if check.outcome == "discarded":
            flash(messages.TOO_MANY_CODES, "error")
            return redirect(url_for("gatehouse.login"))
        if check.sign_in is not None:
            return _continue(check.sign_in)
        message, status, headers = code_refusal(check.retry_after)
        form.code.errors = [message]
    keys = mode() != "off" and passkeys.count(user) > 0
    page = render_template(
        "gatehouse/login_two_factor.html",
        form=form,
        security_keys=keys,
        authenticator_app=totp.is_enabled(user),
    )
    return page, status, headers


def login_two_factor_setup() -> ResponseReturnValue:
    """The enrolment stage of a sign-in, when GATEHOUSE_MFA_REQUIRED asks for a second
    factor the account does not have: enrol an app (or postpone, during the grace period)."""
    form = CodeForm()
    if form.validate_on_submit():
        enrolled = signin.enrol_at_sign_in(form.code.data or "")
        if enrolled is None:
            return _sign_in_expired()
        if enrolled.codes is not None and enrolled.sign_in is not None:
            # The codes are shown this once, before the browser goes on.
            return recovery_codes_page(enrolled.codes, next_url_of(enrolled.sign_in))
        form.code.errors = [messages.WRONG_ENROLMENT_CODE]
    shown = signin.enrolment_stage(fresh=not form.is_submitted())
    if shown is None:
        return _sign_in_expired()
    page = render_template(
        "gatehouse/login_two_factor_setup.html", form=form, stage=shown, later=ConfirmForm()
    )
    return page, 400 if form.is_submitted() else 200


def postpone_two_factor() -> ResponseReturnValue:
    """Sign in without enrolling, while the grace period lasts."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash(messages.FORM_EXPIRED, "error")
        return redirect(url_for("gatehouse.login_two_factor_setup"))
    result = signin.postpone_enrolment()
    if result == "expired":
        return _sign_in_expired()
    if result == "grace_over":
        flash(messages.GRACE_OVER, "error")
        return redirect(url_for("gatehouse.login_two_factor_setup"))
    return _continue(result)


def _sign_in_expired() -> ResponseReturnValue:
    flash(messages.SIGN_IN_EXPIRED, "info")
    return redirect(url_for("gatehouse.login"))


def next_url_of(result: signin.SignIn) -> str:
    """Where a sign-in step (by form or by passkey) sends the browser: the next stage's
    page, the login page when a later stage stopped it, or the page it was heading for."""
    if result.next_page is not None:
        return url_for(result.next_page)
    if result.user is None:
        return url_for("gatehouse.login")
    return result.next_url


def _continue(result: signin.SignIn) -> ResponseReturnValue:
    return redirect(next_url_of(result))


def logout() -> ResponseReturnValue:
    """GET asks for confirmation; only a POST (with its CSRF token) signs out."""
    if not current_user.is_authenticated:
        return redirect(url_for("gatehouse.login"))
    form = ConfirmForm()
    if form.validate_on_submit():
        signin.sign_out(signed_in_user())
        flash(messages.SIGNED_OUT, "success")
        return redirect(url_for("gatehouse.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/logout.html", form=form), status
