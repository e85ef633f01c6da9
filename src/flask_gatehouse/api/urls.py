"""Every URL of the JSON API, in one table (the pages' are in ``blueprint``).

Routes under ``/api/v1/<client>/`` serve both kinds of client: ``browser`` (the session
cookie, and a CSRF token in ``X-CSRFToken``) and ``app`` (``X-Session-Token``, no cookies):
see ``services.transport``. Endpoints are named ``api_*``, which tells ``access.wants_json``
to answer JSON errors.
"""

from flask import Blueprint

from . import account_routes, auth_routes, document, factor_routes, recovery_routes, token_routes

#: The two kinds of client, as the first part of a route.
CLIENT = "/api/v1/<any(browser, app):client>"


def register(blueprint: Blueprint) -> None:
    """Add the API's routes to Gatehouse's blueprint."""
    route = blueprint.add_url_rule
    route("/api/openapi.json", view_func=document.openapi, endpoint="api_openapi")
    route(
        "/api/v1/account", view_func=auth_routes.account_of_any_credential, endpoint="api_account"
    )

    # Signing up, in and out, and the stages of a sign-in.
    auth = f"{CLIENT}/auth"
    route(f"{auth}/session", view_func=auth_routes.session, endpoint="api_session")
    route(
        f"{auth}/session",
        view_func=auth_routes.sign_out,
        endpoint="api_sign_out",
        methods=["DELETE"],
    )
    route(f"{auth}/signup", view_func=auth_routes.sign_up, endpoint="api_sign_up", methods=["POST"])
    route(f"{auth}/login", view_func=auth_routes.log_in, endpoint="api_log_in", methods=["POST"])
    route(
        f"{auth}/two-factor",
        view_func=auth_routes.two_factor,
        endpoint="api_two_factor",
        methods=["POST"],
    )
    route(
        f"{auth}/two-factor/passkey/options",
        view_func=auth_routes.two_factor_passkey_options,
        endpoint="api_two_factor_passkey_options",
        methods=["POST"],
    )
    route(
        f"{auth}/two-factor/passkey",
        view_func=auth_routes.two_factor_passkey,
        endpoint="api_two_factor_passkey",
        methods=["POST"],
    )
    route(
        f"{auth}/two-factor/setup",
        view_func=auth_routes.two_factor_setup,
        endpoint="api_two_factor_setup",
        methods=["GET", "POST"],
    )
    route(
        f"{auth}/two-factor/setup/later",
        view_func=auth_routes.postpone_two_factor,
        endpoint="api_postpone_two_factor",
        methods=["POST"],
    )
    route(
        f"{auth}/new-password",
        view_func=auth_routes.new_password,
        endpoint="api_new_password",
        methods=["POST"],
    )
    route(
        f"{auth}/passkey/options",
        view_func=auth_routes.passkey_options,
        endpoint="api_passkey_options",
        methods=["POST"],
    )
    route(
        f"{auth}/passkey",
        view_func=auth_routes.passkey_login,
        endpoint="api_passkey_login",
        methods=["POST"],
    )
    route(
        f"{auth}/reauthenticate",
        view_func=auth_routes.reauthenticate,
        endpoint="api_reauthenticate",
        methods=["POST"],
    )
    route(
        f"{auth}/reauthenticate/second-factor/options",
        view_func=auth_routes.reauthenticate_second_factor_options,
        endpoint="api_reauthenticate_second_factor_options",
        methods=["POST"],
    )
    route(
        f"{auth}/reauthenticate/passkey/options",
        view_func=auth_routes.reauthenticate_passkey_options,
        endpoint="api_reauthenticate_passkey_options",
        methods=["POST"],
    )
    route(
        f"{auth}/reauthenticate/passkey",
        view_func=auth_routes.reauthenticate_with_passkey,
        endpoint="api_reauthenticate_passkey",
        methods=["POST"],
    )

    # The signed-in owner's account: password, address, sessions, deletion, data.
    own = f"{CLIENT}/account"
    route(
        f"{own}/password",
        view_func=account_routes.change_password,
        endpoint="api_change_password",
        methods=["POST"],
    )
    route(
        f"{own}/email",
        view_func=account_routes.change_email,
        endpoint="api_change_email",
        methods=["POST"],
    )
    route(
        f"{own}/email/confirm",
        view_func=account_routes.confirm_email_change,
        endpoint="api_confirm_email_change",
        methods=["POST"],
    )
    route(f"{own}/sessions", view_func=account_routes.sessions, endpoint="api_sessions")
    route(
        f"{own}/sessions/<row_id:session_id>",
        view_func=account_routes.revoke_session,
        endpoint="api_revoke_session",
        methods=["DELETE"],
    )
    route(
        f"{own}/sessions/revoke-others",
        view_func=account_routes.revoke_other_sessions,
        endpoint="api_revoke_other_sessions",
        methods=["POST"],
    )
    route(
        f"{own}/delete",
        view_func=account_routes.delete_account,
        endpoint="api_delete_account",
        methods=["POST"],
    )
    route(f"{own}/data", view_func=account_routes.account_data, endpoint="api_account_data")

    # Second factors and passkeys on the signed-in owner's account.
    factors = f"{CLIENT}/account"
    route(
        f"{factors}/two-factor",
        view_func=factor_routes.two_factor_status,
        endpoint="api_two_factor_status",
    )
    route(
        f"{factors}/two-factor/setup",
        view_func=factor_routes.two_factor_enrol_start,
        endpoint="api_two_factor_enrol_start",
        methods=["POST"],
    )
    route(
        f"{factors}/two-factor",
        view_func=factor_routes.two_factor_enrol,
        endpoint="api_two_factor_enrol",
        methods=["POST"],
    )
    route(
        f"{factors}/two-factor",
        view_func=factor_routes.two_factor_disable,
        endpoint="api_two_factor_disable",
        methods=["DELETE"],
    )
    route(
        f"{factors}/two-factor/recovery-codes",
        view_func=factor_routes.recovery_codes,
        endpoint="api_recovery_codes",
        methods=["POST"],
    )
    route(
        f"{factors}/trusted-browsers/<row_id:browser_id>",
        view_func=factor_routes.forget_trusted_browser,
        endpoint="api_forget_trusted_browser",
        methods=["DELETE"],
    )
    route(f"{factors}/passkeys", view_func=factor_routes.passkeys_list, endpoint="api_passkeys")
    route(
        f"{factors}/passkeys/options",
        view_func=factor_routes.passkey_add_options,
        endpoint="api_passkey_add_options",
        methods=["POST"],
    )
    route(
        f"{factors}/passkeys",
        view_func=factor_routes.passkey_add,
        endpoint="api_passkey_add",
        methods=["POST"],
    )
    route(
        f"{factors}/passkeys/<row_id:passkey_id>",
        view_func=factor_routes.passkey_rename,
        endpoint="api_passkey_rename",
        methods=["PATCH"],
    )
    route(
        f"{factors}/passkeys/<row_id:passkey_id>",
        view_func=factor_routes.passkey_remove,
        endpoint="api_passkey_remove",
        methods=["DELETE"],
    )

    # Getting in without signing in: a forgotten password, mailed links, passkey sign-up.
    for path, view, endpoint in (
        ("password/forgot", recovery_routes.forgot_password, "api_forgot_password"),
        ("password/reset", recovery_routes.reset_password, "api_reset_password"),
        (
            "password/reset/passkey/options",
            recovery_routes.reset_passkey_options,
            "api_reset_passkey_options",
        ),
        ("email/confirm", recovery_routes.confirm_email, "api_confirm_email"),
        ("email/resend", recovery_routes.resend_confirmation, "api_resend_confirmation"),
        ("secure", recovery_routes.secure_account, "api_secure_account"),
        (
            "signup/passkey/options",
            recovery_routes.passkey_sign_up_options,
            "api_passkey_sign_up_options",
        ),
        ("signup/passkey", recovery_routes.passkey_sign_up, "api_passkey_sign_up"),
    ):
        route(f"{auth}/{path}", view_func=view, endpoint=endpoint, methods=["POST"])

    # Personal access tokens (sessions only: a token cannot reach them).
    tokens = f"{CLIENT}/account/tokens"
    route(tokens, view_func=token_routes.list_tokens, endpoint="api_access_tokens")
    route(
        tokens,
        view_func=token_routes.create_token,
        endpoint="api_create_access_token",
        methods=["POST"],
    )
    route(
        f"{tokens}/<row_id:token_id>",
        view_func=token_routes.revoke_token,
        endpoint="api_revoke_access_token",
        methods=["DELETE"],
    )
