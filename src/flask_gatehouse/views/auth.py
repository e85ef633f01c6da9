"""Sign-up, login (and its pending stages) and logout: thin views over the sign-up and
sign-in flows."""

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from ..access import signed_in_user, signup_limits
from ..flows import signin, signup
from ..forms import (
    CodeForm,
    ConfirmForm,
    LoginForm,
    NewPasswordForm,
    locked_message,
    password_rules,
    register_form,
)

#: A refused login's one message. The right password for an unconfirmed address gets the same
#: answer as a wrong one (anything else tells an attacker the password is right); it also
#: gets a fresh link by mail, which the message points a new user to.
_REFUSED = {
    "required": "Incorrect email or password. If you have just created your account, confirm "
    "your address first: follow the link in the email we sent you.",
    "optional": "Incorrect email or password.",
    "off": "Incorrect email or password.",
}


@signup_limits
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
        if current_app.config["GATEHOUSE_EMAIL_CONFIRMATION"] == "off":
            flash("Your account is ready. Sign in to continue.", "success")
        else:
            # No address in the message: flashes travel in Flask's readable session cookie.
            flash("Check your inbox: we sent you a link to confirm your address.", "success")
        return redirect(url_for("gatehouse.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/register.html", form=form, rules=password_rules()), status


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
            page = render_template("gatehouse/login.html", form=form)
            return page, 429, {"Retry-After": str(result.retry_after)}
        form.form_errors.append(_REFUSED[current_app.config["GATEHOUSE_EMAIL_CONFIRMATION"]])
    elif form.is_submitted() and not form.csrf_errors:
        signin.record_invalid_form()
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/login.html", form=form), status


def login_new_password() -> ResponseReturnValue:
    """The password-change stage of a sign-in: no session until a new password is chosen."""
    user = signin.pending_user("password_change")
    if user is None:
        flash("That sign-in expired. Please sign in again.", "info")
        return redirect(url_for("gatehouse.login"))
    form = NewPasswordForm(user)
    if form.validate_on_submit():
        result = signin.change_required_password(form.password.data or "")
        if result is None:
            flash("That sign-in expired. Please sign in again.", "info")
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
        flash("That sign-in expired. Please sign in again.", "info")
        return redirect(url_for("gatehouse.login"))
    form = CodeForm()
    if form.validate_on_submit():
        check = signin.pass_two_factor(form.code.data or "")
        if check.outcome == "expired":
            flash("That sign-in expired. Please sign in again.", "info")
            return redirect(url_for("gatehouse.login"))
        if check.outcome == "discarded":
            flash("Too many wrong codes. Please sign in again.", "error")
            return redirect(url_for("gatehouse.login"))
        if check.sign_in is not None:
            if check.sign_in.next_page is not None:
                return redirect(url_for(check.sign_in.next_page))
            if check.sign_in.user is None:  # a later stage stopped the sign-in
                return redirect(url_for("gatehouse.login"))
            return redirect(check.sign_in.next_url)
        form.code.errors = ["That code is not right. Try the code your app shows now."]
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/login_two_factor.html", form=form), status


def logout() -> ResponseReturnValue:
    """GET asks for confirmation; only a POST (with its CSRF token) signs out."""
    if not current_user.is_authenticated:
        return redirect(url_for("gatehouse.login"))
    form = ConfirmForm()
    if form.validate_on_submit():
        signin.sign_out(signed_in_user())
        flash("You have been signed out.", "success")
        return redirect(url_for("gatehouse.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("gatehouse/logout.html", form=form), status
