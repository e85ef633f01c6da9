"""The forms behind Gatehouse's pages (Flask-WTF: every one carries a CSRF token).

Each form that takes an address yields it normalised, once (``clean_email`` or
``typed_email``); nothing after the form normalises it again.
"""

import json
from typing import Any

from flask import abort, current_app, request
from flask_wtf import FlaskForm
from flask_wtf.form import SUBMIT_METHODS
from werkzeug.datastructures import FileStorage, MultiDict
from wtforms import (
    BooleanField,
    EmailField,
    Field,
    FileField,
    HiddenField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import InputRequired, Length, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from . import state
from .models import User
from .services import json_body
from .services.identity import (
    InvalidIdentity,
    TypedEmail,
    normalize_email,
    normalize_username,
    typed_email,
)
from .services.mail import duration
from .services.passwords import password_problems, password_rules

__all__ = [
    "AccessTokenForm",
    "ChangeEmailForm",
    "ChangePasswordForm",
    "CodeForm",
    "ConfirmForm",
    "CurrentPasswordForm",
    "DeleteAccountForm",
    "EmailRequestForm",
    "GatehouseForm",
    "LinkForm",
    "LoginForm",
    "NewPasswordForm",
    "PasskeyNameForm",
    "PasskeySignUpForm",
    "ReauthenticateForm",
    "RegisterForm",
    "ResetPasswordForm",
    "TwoFactorLoginForm",
    "code_refusal",
    "locked_message",
    "password_rules",
    "register_form",
]


def locked_message(retry_after: int) -> str:
    """What a locked account's form says: the wait, in whole minutes."""
    minutes = max(1, round(retry_after / 60))
    return f"Too many failed attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."


#: A refused second-factor code's message.
WRONG_CODE = "That code is not right. Enter the code your app shows now, or a recovery code."


def code_refusal(retry_after: int | None) -> tuple[str, int, dict[str, str]]:
    """What a form says of a refused second-factor code, with the page's status and headers:
    wrong, or not checked because the account's second step is locked."""
    if retry_after is None:
        return WRONG_CODE, 400, {}
    return locked_message(retry_after), 429, {"Retry-After": str(retry_after)}


def _normalized_email(field: EmailField) -> str:
    """The field's address through ``normalize_email``, its refusal as the field's error."""
    try:
        return normalize_email(field.data or "")
    except InvalidIdentity as error:
        raise ValidationError(str(error)) from None


def _fits(field: Field | None, value: object) -> bool:
    """Whether a JSON value can go into ``field``: a boolean for a check box, a list of texts
    for a multiple choice, else text that UTF-8 can carry (JSON can escape a lone surrogate,
    which no page could show back). An object goes under no field: it is a passkey's answer
    beside the form's fields, which the view reads (``json_body.credential``)."""
    if field is None and isinstance(value, dict):
        return True
    if isinstance(field, BooleanField):
        return isinstance(value, bool)
    if isinstance(field, SelectMultipleField):
        return isinstance(value, list) and all(
            isinstance(item, str) and _fits(None, item) for item in value
        )
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


class GatehouseForm(FlaskForm):
    """Base form: its fields get text (booleans for check boxes), whatever the body.

    Flask-WTF feeds a JSON body straight into the fields, and a multipart body's uploads too; a
    list, an object or a file there would reach string code as the wrong type (Flask-Security
    PR #1258 was a 500 of this kind). So a JSON body must be an object of strings (Unicode
    text), and an upload counts only for a file field: elsewhere the field is missing.
    """

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            if request.is_json and request.method in SUBMIT_METHODS:
                body = json_body.read()
                if not isinstance(body, dict) or not all(
                    _fits(form._fields.get(name), value) for name, value in body.items()
                ):
                    abort(
                        400, description="Send a JSON object of strings (booleans for check boxes)."
                    )
            data = super().wrap_formdata(form, formdata)
            if isinstance(data, MultiDict) and request.files:
                uploads = {field.name for field in form if isinstance(field, FileField)}
                data = MultiDict(
                    (name, value)
                    for name, value in data.items(multi=True)
                    if name in uploads or not isinstance(value, FileStorage)
                )
            return data

    @property
    def csrf_errors(self) -> list[str]:
        """The CSRF token's errors: none when the host turned the check off
        (``WTF_CSRF_ENABLED = False``), and then the form has no token field at all."""
        if not self.meta.csrf:
            return []
        return list(self[self.meta.csrf_field_name].errors)


class _NewIdentityForm(GatehouseForm):
    """A new account's address and name, normalised (``clean_email``, ``clean_username``)."""

    # Lengths are checked by the identity normalisers, with their own messages.
    email = EmailField("Email", validators=[InputRequired()])
    username = StringField("Username", validators=[InputRequired()])

    #: Normalised values, set by validation.
    clean_email: str
    clean_username: str

    def validate_email(self, field: EmailField) -> None:
        self.clean_email = _normalized_email(field)

    def validate_username(self, field: StringField) -> None:
        try:
            self.clean_username = normalize_username(field.data or "")
        except InvalidIdentity as error:
            raise ValidationError(str(error)) from None


class PasskeySignUpForm(_NewIdentityForm):
    """A sign-up with a passkey instead of a password (its JSON options request)."""


class RegisterForm(_NewIdentityForm):
    """The sign-up form. A host subclasses it for extra fields (named in
    GATEHOUSE_REGISTER_FORM) and stores them in ``save_host_data``; see docs/host-data.md."""

    password = PasswordField("Password", validators=[InputRequired()])

    def validate_password(self, field: PasswordField) -> None:
        problems = password_problems(
            field.data or "", email=self.email.data or "", username=self.username.data or ""
        )
        if problems:
            raise ValidationError(" ".join(problems))

    def save_host_data(self, user: User) -> None:
        """Add the host's own rows for the new ``user`` (its extra fields) to the database
        session: they commit with the account, or not at all. Not called for a taken
        address. Does nothing here."""


def register_form() -> RegisterForm:
    """The app's sign-up form (GATEHOUSE_REGISTER_FORM, checked by ``init_app``)."""
    form_class: type[RegisterForm] = state.get().register_form
    return form_class()


class _TypedEmailForm(GatehouseForm):
    """A form whose address is never refused for its syntax (the answer must not differ):
    ``typed_email`` is what was typed, normalised once."""

    email = EmailField("Email", validators=[InputRequired(), Length(max=254)])

    @property
    def typed_email(self) -> TypedEmail:
        return typed_email(self.email.data or "")


class LoginForm(_TypedEmailForm):
    password = PasswordField("Password", validators=[InputRequired(), Length(max=4096)])
    remember = BooleanField("Keep me signed in on this device for 30 days")


class ConfirmForm(GatehouseForm):
    """A button-only form (logout, revoke): its CSRF token is the whole point."""


class CodeForm(GatehouseForm):
    """A code from an authenticator app, or a recovery code (spaces and dashes allowed)."""

    code = StringField("Code", validators=[InputRequired(), Length(max=64)])


class TwoFactorLoginForm(CodeForm):
    """The two-factor stage of a sign-in: the code, and whether to trust this browser."""

    trust_browser = BooleanField("Trust this browser")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        lifetime = duration(current_app.config["GATEHOUSE_TWO_FACTOR_TRUST_DURATION"])
        self.trust_browser.label.text = f"Trust this browser for {lifetime}: skip the code here"


class PasskeyNameForm(GatehouseForm):
    """A passkey's new name (not blank: spaces alone are no name)."""

    name = StringField(
        "Name",
        validators=[
            InputRequired(),
            Length(max=64),
            Regexp(r".*\S", message="Give the passkey a name of 1 to 64 characters."),
        ],
    )


class AccessTokenForm(GatehouseForm):
    """A new personal access token: a name, its scopes (check boxes, at least one) and how
    long it lives (the choices the host allows)."""

    name = StringField("Name", validators=[InputRequired(), Length(max=64)])
    scopes = SelectMultipleField(
        "Scopes",
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validators=[InputRequired(message="Choose at least one scope.")],
    )
    lifetime = SelectField("Expires")

    def __init__(
        self,
        *,
        scopes: tuple[str, ...],
        lifetimes: list[int],
        may_not_expire: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.scopes.choices = [(scope, scope) for scope in scopes]
        choices = [(str(days), f"in {days} days") for days in lifetimes]
        if may_not_expire:
            choices.append(("never", "never"))
        self.lifetime.choices = choices
        if self.lifetime.data is None:
            self.lifetime.data = choices[0][0]

    @property
    def clean_name(self) -> str:
        return " ".join((self.name.data or "").split())

    @property
    def lifetime_days(self) -> int | None:
        return None if self.lifetime.data == "never" else int(self.lifetime.data or "30")

    def validate_name(self, field: StringField) -> None:
        if not self.clean_name:
            raise ValidationError("Give the token a name.")


class LinkForm(GatehouseForm):
    """A mailed link's token, in an API body (the pages take it in their URL; a token that is
    no link of ours is refused by the link's flow, with the page's answer)."""

    token = StringField("Token", validators=[InputRequired()])


class EmailRequestForm(_TypedEmailForm):
    """An address to mail a link to (forgot password, resend confirmation)."""


class CurrentPasswordForm(GatehouseForm):
    """The signed-in user's password, asked again (re-authentication, account deletion)."""

    password = PasswordField("Password", validators=[InputRequired(), Length(max=4096)])


class DeleteAccountForm(CurrentPasswordForm):
    """The password before deleting the account; not asked of an account without one
    (passkeys only), which has just re-authenticated with a passkey."""

    def __init__(self, user: User, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if user.password_hash is None:
            del self.password


class _CodeWhenEnabled(GatehouseForm):
    """A second-factor code, required only when ``needs_code`` (the account has two-factor);
    or instead the browser's answer to a second-factor passkey request (``assertion``), which
    passkeys.js puts in the hidden ``passkey_assertion`` field."""

    code = StringField("Two-factor code", validators=[Length(max=64)])
    passkey_assertion = HiddenField(validators=[Length(max=16384)])
    needs_code = False

    @property
    def assertion(self) -> dict[str, Any] | None:
        """The passkey's answer, or None when a code was typed instead ({} when unreadable:
        refused as a wrong answer)."""
        if not self.passkey_assertion.data:
            return None
        try:
            found = json.loads(self.passkey_assertion.data)
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    def validate_code(self, field: StringField) -> None:
        if self.assertion is not None:
            return
        if self.needs_code and not (field.data or "").strip():
            raise ValidationError(
                "Enter the code your authenticator app shows, or a recovery code."
            )


class ReauthenticateForm(CurrentPasswordForm, _CodeWhenEnabled):
    """The password again, and a second-factor code when the account has two-factor."""

    def __init__(self, *, needs_code: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.needs_code = needs_code


class NewPasswordForm(GatehouseForm):
    """A new password for ``user``, checked against the policy (reset)."""

    password = PasswordField("New password", validators=[InputRequired()])

    def __init__(self, user: User, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user = user

    def validate_password(self, field: PasswordField) -> None:
        problems = password_problems(
            field.data or "", email=self.user.email, username=self.user.username
        )
        if problems:
            raise ValidationError(" ".join(problems))


class ResetPasswordForm(NewPasswordForm, _CodeWhenEnabled):
    """A new password from a reset link, and a second-factor code when the account has
    two-factor: a mailbox alone must not be enough."""

    def __init__(self, user: User, *, needs_code: bool, **kwargs: Any) -> None:
        super().__init__(user, **kwargs)
        self.needs_code = needs_code


class ChangePasswordForm(NewPasswordForm):
    """A new password after the current one; an account without one (passkeys only) has
    just re-authenticated with a passkey, and is not asked for it."""

    current_password = PasswordField(
        "Current password", validators=[InputRequired(), Length(max=4096)]
    )

    def __init__(self, user: User, **kwargs: Any) -> None:
        super().__init__(user, **kwargs)
        if user.password_hash is None:
            del self.current_password


class ChangeEmailForm(GatehouseForm):
    email = EmailField("New email", validators=[InputRequired()])
    current_password = PasswordField(
        "Current password", validators=[InputRequired(), Length(max=4096)]
    )

    #: The normalised new address, set by validation.
    clean_email: str

    def validate_email(self, field: EmailField) -> None:
        self.clean_email = _normalized_email(field)
