"""Blinker signals beside the audit events, for host apps (as Flask-Login's ``signals``).

Each is sent with the app as sender once the action's transaction has committed, with the
keyword arguments ``user`` (the ``User``, or None when the event names no account, e.g. a
failed login of an unknown address) and ``event`` (the stored ``Event`` row). Receivers run in
the request; what they write to ``db.session`` must be committed by themselves.

``security_event`` is sent for every event; the others for one kind of event each::

    from flask_gatehouse import signals

    @signals.user_registered.connect_via(app)
    def welcome(app, user, event, **extra):
        ...
"""

from blinker import Namespace

_signals = Namespace()

#: Every audit event, whatever its kind and outcome.
security_event = _signals.signal("gatehouse.security-event")
#: A new account was created (sign-up, or ``flask gatehouse create-user``).
user_registered = _signals.signal("gatehouse.user-registered")
#: An account's address was confirmed through its link.
email_confirmed = _signals.signal("gatehouse.email-confirmed")
#: A session started.
user_logged_in = _signals.signal("gatehouse.user-logged-in")
#: A login was refused (wrong credentials, unconfirmed address); ``user`` may be None.
login_failed = _signals.signal("gatehouse.login-failed")
#: A browser signed out.
user_logged_out = _signals.signal("gatehouse.user-logged-out")
#: The password was entered again for a sensitive action.
user_reauthenticated = _signals.signal("gatehouse.user-reauthenticated")
#: A new password was stored (change, reset, operator); every session ended.
password_changed = _signals.signal("gatehouse.password-changed")
#: A password reset link was used.
password_reset = _signals.signal("gatehouse.password-reset")
#: The account moved to a new, confirmed address.
email_changed = _signals.signal("gatehouse.email-changed")
#: The owner used a "this wasn't me" link.
account_secured = _signals.signal("gatehouse.account-secured")
#: The account was deleted (``user`` is None; the event names the former address and id).
account_deleted = _signals.signal("gatehouse.account-deleted")

#: A sign-in or a link through a social-login provider committed: sent with ``user``,
#: ``provider`` (its short name) and ``token`` (the provider's token response, as Authlib
#: returns it) instead of ``event``. Gatehouse keeps no provider token; a host that calls the
#: provider's API for the user keeps it here.
provider_token = _signals.signal("gatehouse.provider-token")

#: (event kind, outcome) -> the signals for it, besides ``security_event``. A reset stores
#: a new password too: it is one event, and both its signals.
BY_EVENT = {
    ("register", "success"): (user_registered,),
    ("email_confirmed", "success"): (email_confirmed,),
    ("login", "success"): (user_logged_in,),
    ("login", "failure"): (login_failed,),
    ("logout", "success"): (user_logged_out,),
    ("reauthenticated", "success"): (user_reauthenticated,),
    ("password_changed", "success"): (password_changed,),
    ("password_reset", "success"): (password_reset, password_changed),
    ("email_changed", "success"): (email_changed,),
    ("account_secured", "success"): (account_secured,),
    ("account_deleted", "success"): (account_deleted,),
}
