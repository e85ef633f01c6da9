"""Every URL Gatehouse serves, in one table. The host mounts it with GATEHOUSE_URL_PREFIX."""

from flask import Blueprint

from .views import account, auth, health

blueprint = Blueprint(
    "gatehouse",
    "flask_gatehouse",
    template_folder="templates",
    static_folder="static/gatehouse",
    static_url_path="/gatehouse-static",
)

blueprint.add_url_rule("/register", view_func=auth.register, methods=["GET", "POST"])
blueprint.add_url_rule("/login", view_func=auth.login, methods=["GET", "POST"])
blueprint.add_url_rule("/logout", view_func=auth.logout, methods=["GET", "POST"])
blueprint.add_url_rule("/account", view_func=account.account)
blueprint.add_url_rule(
    "/account/sessions/<int:session_id>/revoke",
    view_func=account.revoke_session,
    methods=["POST"],
)
blueprint.add_url_rule(
    "/account/sessions/revoke-others",
    view_func=account.revoke_other_sessions,
    methods=["POST"],
)
blueprint.add_url_rule("/healthz", view_func=health.healthz)
blueprint.add_url_rule("/readyz", view_func=health.readyz)
