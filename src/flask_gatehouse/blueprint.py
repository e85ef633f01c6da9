"""Every page Gatehouse serves, in one table (the JSON API's are in ``api.urls``). The host
mounts them with GATEHOUSE_URL_PREFIX."""

from flask import Blueprint
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import IntegerConverter

from . import errors
from .api import urls as api_urls
from .views import (
    auth,
    confirmation,
    health,
    mailbox,
    passkeys,
    password_reset,
    profile,
    saml,
    settings,
    social,
    tokens,
    two_factor,
)
from .views.providers import sign_in_buttons

blueprint = Blueprint(
    "gatehouse",
    "flask_gatehouse",
    template_folder="templates",
    static_folder="static/gatehouse",
    static_url_path="/gatehouse-static",
)


class RowId(IntegerConverter):
    """A row's id in a URL: 0 to 2147483647, the range of PostgreSQL's INTEGER. The pattern
    itself stops at the bound, so a larger number is no page (404) on every route, where
    ``int(max=...)`` would let a route with another method on the same path answer 405."""

    regex = (
        r"(?:0|[1-9]\d{0,8}|1\d{9}|20\d{8}|21[0-3]\d{7}|214[0-6]\d{6}|2147[0-3]\d{5}"
        r"|21474[0-7]\d{4}|214748[0-2]\d{3}|2147483[0-5]\d{2}|21474836[0-3]\d|214748364[0-7])"
    )


def _add_converters(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("row_id", RowId)


# Before any rule: the rules below use it.
blueprint.record_once(_add_converters)

blueprint.add_url_rule("/register", view_func=auth.register, methods=["GET", "POST"])
blueprint.add_url_rule("/login", view_func=auth.login, methods=["GET", "POST"])
blueprint.add_url_rule(
    "/login/new-password", view_func=auth.login_new_password, methods=["GET", "POST"]
)
blueprint.add_url_rule(
    "/login/two-factor", view_func=auth.login_two_factor, methods=["GET", "POST"]
)
blueprint.add_url_rule(
    "/login/two-factor/setup", view_func=auth.login_two_factor_setup, methods=["GET", "POST"]
)
blueprint.add_url_rule(
    "/login/two-factor/later", view_func=auth.postpone_two_factor, methods=["POST"]
)
blueprint.add_url_rule("/logout", view_func=auth.logout, methods=["GET", "POST"])
blueprint.add_url_rule(
    "/confirm/<token>", view_func=confirmation.confirm_email, methods=["GET", "POST"]
)
blueprint.add_url_rule(
    "/confirm/resend", view_func=confirmation.resend_confirmation, methods=["GET", "POST"]
)
blueprint.add_url_rule("/forgot", view_func=password_reset.forgot_password, methods=["GET", "POST"])
blueprint.add_url_rule(
    "/reset/<token>", view_func=password_reset.reset_password, methods=["GET", "POST"]
)
blueprint.add_url_rule(
    "/secure/<token>", view_func=password_reset.secure_account, methods=["GET", "POST"]
)
blueprint.add_url_rule(
    "/reauthenticate", view_func=settings.reauthenticate, methods=["GET", "POST"]
)
blueprint.add_url_rule("/account", view_func=profile.account_page, endpoint="account")
blueprint.add_url_rule(
    "/account/password", view_func=settings.change_password, methods=["GET", "POST"]
)
blueprint.add_url_rule("/account/email", view_func=settings.change_email, methods=["GET", "POST"])
blueprint.add_url_rule(
    "/account/email/confirm/<token>",
    view_func=settings.confirm_email_change,
    methods=["GET", "POST"],
)
blueprint.add_url_rule(
    "/account/delete", view_func=settings.delete_account, methods=["GET", "POST"]
)
blueprint.add_url_rule("/account/data", view_func=settings.download_data)
blueprint.add_url_rule(
    "/account/two-factor",
    view_func=two_factor.two_factor_page,
    endpoint="two_factor",
    methods=["GET", "POST"],
)
blueprint.add_url_rule(
    "/account/two-factor/disable", view_func=two_factor.disable_two_factor, methods=["POST"]
)
blueprint.add_url_rule(
    "/account/two-factor/recovery-codes",
    view_func=two_factor.regenerate_recovery_codes,
    methods=["POST"],
)
# Ids are 32-bit integers in the database (PostgreSQL's INTEGER): a larger one is no page
# (RowId), rather than a number the database refuses.
blueprint.add_url_rule(
    "/account/sessions/<row_id:session_id>/revoke",
    view_func=profile.revoke_session,
    methods=["POST"],
)
blueprint.add_url_rule(
    "/account/trusted-browsers/<row_id:browser_id>/revoke",
    view_func=profile.forget_trusted_browser,
    methods=["POST"],
)
blueprint.add_url_rule(
    "/account/sessions/revoke-others",
    view_func=profile.revoke_other_sessions,
    methods=["POST"],
)
blueprint.add_url_rule("/healthz", view_func=health.healthz)
blueprint.add_url_rule("/readyz", view_func=health.readyz)
blueprint.add_url_rule("/dev/mailbox", view_func=mailbox.index)
blueprint.add_url_rule("/dev/mailbox/<name>", view_func=mailbox.message)

# Gatehouse's error pages on its own pages; the whole app's with GATEHOUSE_HARDEN_WHOLE_APP.
errors.register(blueprint)

# Passkeys (GATEHOUSE_PASSKEYS): the account's page, and the JSON endpoints of each ceremony.
blueprint.add_url_rule("/account/passkeys", view_func=passkeys.passkeys_page, endpoint="passkeys")
blueprint.add_url_rule(
    "/account/passkeys/options",
    view_func=passkeys.add_options,
    endpoint="passkey_add_options",
    methods=["POST"],
)
blueprint.add_url_rule(
    "/account/passkeys", view_func=passkeys.add, endpoint="passkey_add", methods=["POST"]
)
blueprint.add_url_rule(
    "/account/passkeys/<row_id:passkey_id>/rename",
    view_func=passkeys.rename,
    endpoint="passkey_rename",
    methods=["POST"],
)
blueprint.add_url_rule(
    "/account/passkeys/<row_id:passkey_id>/delete",
    view_func=passkeys.remove,
    endpoint="passkey_remove",
    methods=["POST"],
)
blueprint.add_url_rule(
    "/register/passkey/options",
    view_func=passkeys.sign_up_options,
    endpoint="passkey_sign_up_options",
    methods=["POST"],
)
blueprint.add_url_rule(
    "/register/passkey", view_func=passkeys.sign_up, endpoint="passkey_sign_up", methods=["POST"]
)
blueprint.add_url_rule(
    "/login/passkey/options",
    view_func=passkeys.login_options,
    endpoint="passkey_login_options",
    methods=["POST"],
)
blueprint.add_url_rule(
    "/login/passkey", view_func=passkeys.login, endpoint="passkey_login", methods=["POST"]
)
blueprint.add_url_rule(
    "/login/two-factor/passkey/options",
    view_func=passkeys.two_factor_options,
    endpoint="two_factor_passkey_options",
    methods=["POST"],
)
blueprint.add_url_rule(
    "/login/two-factor/passkey",
    view_func=passkeys.two_factor,
    endpoint="two_factor_passkey",
    methods=["POST"],
)
blueprint.add_url_rule(
    "/reset/<token>/passkey/options",
    view_func=passkeys.reset_options,
    endpoint="reset_passkey_options",
    methods=["POST"],
)
blueprint.add_url_rule(
    "/reauthenticate/second-factor/options",
    view_func=passkeys.second_factor_options,
    endpoint="reauthenticate_second_factor_options",
    methods=["POST"],
)
blueprint.add_url_rule(
    "/reauthenticate/passkey/options",
    view_func=passkeys.reauthenticate_options,
    endpoint="reauthenticate_passkey_options",
    methods=["POST"],
)
blueprint.add_url_rule(
    "/reauthenticate/passkey",
    view_func=passkeys.reauthenticate,
    endpoint="reauthenticate_passkey",
    methods=["POST"],
)

# Personal access tokens, and the API routes that take them.
blueprint.add_url_rule(
    "/account/tokens",
    view_func=tokens.tokens_page,
    endpoint="access_tokens",
    methods=["GET", "POST"],
)
blueprint.add_url_rule(
    "/account/tokens/<row_id:token_id>/revoke",
    view_func=tokens.revoke_token,
    endpoint="revoke_access_token",
    methods=["POST"],
)

# Social login (GATEHOUSE_OIDC_PROVIDERS): to the provider and back, and the account's links.
blueprint.add_url_rule("/login/<provider>", view_func=social.social_login, endpoint="social_login")
blueprint.add_url_rule(
    "/login/<provider>/callback", view_func=social.social_callback, endpoint="social_callback"
)
blueprint.add_url_rule(
    "/account/connections/<provider>",
    view_func=social.connect_provider,
    endpoint="connect_provider",
)
blueprint.add_url_rule(
    "/account/connections/<row_id:identity_id>/remove",
    view_func=social.disconnect_provider,
    endpoint="disconnect_provider",
    methods=["POST"],
)
# SAML single sign-on (GATEHOUSE_SAML_PROVIDERS). The assertion consumer service takes the
# IdP's cross-site POST.
blueprint.add_url_rule("/saml/<provider>/login", view_func=saml.saml_login, endpoint="saml_login")
blueprint.add_url_rule(
    "/saml/<provider>/acs", view_func=saml.saml_acs, endpoint="saml_acs", methods=["POST"]
)
blueprint.add_url_rule(
    "/saml/<provider>/metadata", view_func=saml.saml_metadata, endpoint="saml_metadata"
)
blueprint.add_url_rule(
    "/saml/<provider>/connect", view_func=saml.saml_connect, endpoint="saml_connect"
)
blueprint.add_url_rule("/saml/<provider>/sls", view_func=saml.saml_sls, endpoint="saml_sls")
# The buttons on the login and sign-up pages, and the account page's "Connect" links.
blueprint.add_app_template_global(sign_in_buttons, "gatehouse_providers")

# The JSON API's routes: their own table.
api_urls.register(blueprint)
