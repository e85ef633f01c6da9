"""Configuration keys Gatehouse reads, with their defaults.

`Gatehouse.init_app` copies each default into ``app.config`` with ``setdefault``, so a host
overrides any of them the usual Flask ways (``app.config.from_prefixed_env()`` reads
``FLASK_GATEHOUSE_...`` environment variables). Values are read at request time.
Durations (the keys with a ``timedelta`` default) also take a number of seconds or an ISO 8601
duration, e.g. ``FLASK_GATEHOUSE_RESET_MAX_AGE=300`` or ``=PT5M``; ``init_app`` turns them into
a ``timedelta`` and refuses anything else (``flask_gatehouse.durations``).
Every default is the safe choice; a weaker value is the host's explicit decision.
"""

from datetime import timedelta
from typing import Any

DEFAULTS: dict[str, Any] = {
    #: Shown in page titles; passwords built from it are refused.
    "GATEHOUSE_SITE_NAME": "Gatehouse",
    #: Where the blueprint is mounted ("" keeps /login, /register, ... at the root).
    "GATEHOUSE_URL_PREFIX": "",
    #: The sign-up form: a subclass of ``flask_gatehouse.forms.RegisterForm`` with the host's
    #: extra fields (or its import path, "package.module:Class"); see docs/host-data.md.
    "GATEHOUSE_REGISTER_FORM": "flask_gatehouse.forms:RegisterForm",
    #: Where a successful login goes when there is no acceptable ``next``.
    "GATEHOUSE_POST_LOGIN_URL": "/",
    #: argon2id parameters (OWASP Password Storage: m=19 MiB, t=2, p=1); see docs/passwords.md.
    "GATEHOUSE_ARGON2_TIME_COST": 2,
    "GATEHOUSE_ARGON2_MEMORY_COST": 19 * 1024,
    "GATEHOUSE_ARGON2_PARALLELISM": 1,
    #: NIST 800-63B-4 asks 15 for password-only accounts; may be lowered to 8, no further.
    "GATEHOUSE_PASSWORD_MIN_LENGTH": 15,
    #: Longer passwords are refused (never truncated); bounds the hashing work per request.
    "GATEHOUSE_PASSWORD_MAX_LENGTH": 1024,
    #: Cookies carry ``Secure``; turn off only to serve over plain HTTP away from localhost.
    "GATEHOUSE_COOKIE_SECURE": True,
    #: Name of the cookie holding the opaque session id (``__Host-`` prefixed when secure).
    "GATEHOUSE_SESSION_COOKIE_NAME": "gatehouse_session",
    #: A session not used for this long ends (remembered sessions excepted).
    "GATEHOUSE_SESSION_IDLE_TIMEOUT": timedelta(minutes=30),
    #: A session ends this long after login, however active.
    "GATEHOUSE_SESSION_ABSOLUTE_TIMEOUT": timedelta(hours=12),
    #: Lifetime of a "remember me" session, counted from login.
    "GATEHOUSE_REMEMBER_DURATION": timedelta(days=30),
    #: "Last seen" is written at most this often per session, so page views stay read-only.
    "GATEHOUSE_SESSION_TOUCH_INTERVAL": timedelta(minutes=1),
    #: Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (ProxyFix).
    #: 0 means none: the client IP is the TCP peer and spoofed headers change nothing.
    "GATEHOUSE_TRUSTED_PROXIES": 0,
    #: Where rate-limit and lockout counters live: "database" (tables in the app's database,
    #: shared by every worker and server on it), "redis://host:6379" (faster, for busy sites),
    #: or "memory://" (one process only: with several workers, each counts on its own and the
    #: limits let that many times more through). See docs/abuse.md.
    "GATEHOUSE_RATELIMIT_STORAGE_URI": "database",
    #: Failed logins allowed per client IP, whatever the account (password spraying).
    "GATEHOUSE_LOGIN_IP_LIMIT": "10 per minute",
    #: Login attempts per account (or per known device of it) before it locks, tier by tier:
    #: 5 in 5 minutes, then backoff, and a hard stop at 20 a day (NIST 800-63B 3.2.2).
    "GATEHOUSE_LOCKOUT_LIMITS": "5 per 5 minutes; 10 per hour; 20 per day",
    #: Wrong second-factor codes per account (or per known device of it), wherever they are
    #: typed (sign-in, re-authentication, password reset), before its second step locks and
    #: the owner is mailed. A pending sign-in also ends after 5 wrong codes.
    "GATEHOUSE_TWO_FACTOR_LOCKOUT_LIMITS": "10 per hour",
    #: Sign-ups (accepted forms) per client IP and per email address.
    "GATEHOUSE_SIGNUP_IP_LIMIT": "10 per hour",
    "GATEHOUSE_SIGNUP_EMAIL_LIMIT": "3 per hour",
    #: Every sign-up submission per client IP, accepted or refused: each costs a password
    #: check, and a refused one must not be free to repeat (django-allauth: 20 a minute).
    "GATEHOUSE_SIGNUP_ATTEMPT_LIMIT": "20 per minute",
    #: Requests that send mail to an address (forgot password, resend confirmation), per client
    #: IP and per address; each page has its own counters.
    "GATEHOUSE_EMAIL_REQUEST_IP_LIMIT": "10 per hour",
    "GATEHOUSE_EMAIL_REQUEST_ADDRESS_LIMIT": "3 per hour",
    #: Password, email, deletion and two-factor forms submitted per signed-in account.
    "GATEHOUSE_ACCOUNT_CHANGE_LIMIT": "10 per hour",
    #: The site's public URL (scheme, host, port): every link in an email starts with it, never
    #: with the request's Host header. Required.
    "GATEHOUSE_BASE_URL": None,
    #: "required" (no login until the address is confirmed), "optional" (a link is sent, login
    #: works meanwhile) or "off" (no confirmation mail).
    "GATEHOUSE_EMAIL_CONFIRMATION": "required",
    #: Lifetimes of the links sent by email (OWASP Forgot Password; ASVS v5 6.4.1).
    "GATEHOUSE_CONFIRM_MAX_AGE": timedelta(hours=48),
    "GATEHOUSE_RESET_MAX_AGE": timedelta(minutes=30),
    #: The "this wasn't me" links in security notifications.
    "GATEHOUSE_SECURE_ACCOUNT_MAX_AGE": timedelta(days=7),
    #: Password, email, deletion and data download need a password entered this recently.
    "GATEHOUSE_REAUTHENTICATE_AFTER": timedelta(minutes=15),
    #: Mail a "new sign-in" notice when an account signs in from a browser it never used.
    "GATEHOUSE_NOTIFY_NEW_DEVICE": True,
    #: Passkeys (WebAuthn): "on" (passwordless sign-in, and as a second factor),
    #: "second-factor-only" (security keys beside the authenticator app's code) or "off".
    "GATEHOUSE_PASSKEYS": "on",
    #: The WebAuthn relying party id: by default the host of GATEHOUSE_BASE_URL (never the
    #: request's Host header). A parent domain lets subdomains share passkeys.
    "GATEHOUSE_WEBAUTHN_RP_ID": None,
    #: Social login: a short name (in the URLs /login/<name>) to a provider's settings:
    #: "discovery_url" (any OpenID Connect provider) or "preset" ("google", "microsoft" with
    #: "tenant", "gitlab", "github"), "client_id", "client_secret", and optionally "name" (the
    #: button's label), "scopes", "trusted" (link a verified address to an existing account
    #: without asking; off) and, for GitHub Enterprise, "authorize_url", "token_url" and
    #: "api_base_url". Read once, at start-up. See docs/social-login.md.
    "GATEHOUSE_OIDC_PROVIDERS": {},
    #: SAML single sign-on: a short name (in the URLs /saml/<name>/...) to an identity
    #: provider's settings: "metadata_url" or "metadata_xml" (the IdP's metadata), and
    #: optionally "name" (the button's label), "email_attribute" (default "email"; else an
    #: address-shaped NameID), "trust_email" (the IdP's addresses count as verified; off),
    #: "sp_cert" and "sp_key" (PEM: the SP signs its requests), "idp_initiated" (accept
    #: responses nobody here asked for; off), "mfa_enforced" (the host vouches that the IdP
    #: asks a second factor, so Gatehouse does not; off) and "subject_attribute" (a
    #: persistent attribute naming the user instead of the NameID). Read at start-up. See
    #: docs/saml.md.
    "GATEHOUSE_SAML_PROVIDERS": {},
    #: Origins (exact, e.g. "https://app.example.com") whose pages may call the API routes
    #: with the user's credentials; empty: none (CORS off).
    "GATEHOUSE_CORS_ORIGINS": (),
    #: Scopes a personal access token may carry; a host adds its own after "read" and "write".
    "GATEHOUSE_ACCESS_TOKEN_SCOPES": ("read", "write"),
    #: The longest a personal access token may live (the page offers 7 to 366 days; 30 first).
    "GATEHOUSE_ACCESS_TOKEN_MAX_AGE": timedelta(days=366),
    #: Let users make tokens that never expire (off: every token expires).
    "GATEHOUSE_ACCESS_TOKENS_MAY_NOT_EXPIRE": False,
    #: How long "trust this browser" on the two-factor sign-in page spares that browser the
    #: code (docs/two-factor.md).
    "GATEHOUSE_TWO_FACTOR_TRUST_DURATION": timedelta(days=30),
    #: Who must use two-factor authentication: "off", "all", or a callable taking the user and
    #: answering True for those who must. They enrol while signing in.
    "GATEHOUSE_MFA_REQUIRED": "off",
    #: How long after they are first asked such users may still postpone enrolling (0: never).
    "GATEHOUSE_MFA_GRACE": timedelta(days=7),
    #: Sender of Gatehouse's mail (Flask-Mailman's MAIL_* keys configure the SMTP server).
    "GATEHOUSE_MAIL_SENDER": "no-reply@localhost",
    #: Attempts per message before it is given up (and logged as lost), and the wait before the
    #: first retry, doubled for each later one.
    "GATEHOUSE_MAIL_ATTEMPTS": 4,
    "GATEHOUSE_MAIL_RETRY_DELAY": timedelta(seconds=5),
    #: How often each process's mail worker looks for due messages it was not woken for
    #: (written by other processes, retries, rows left by a process that died).
    "GATEHOUSE_MAIL_POLL_INTERVAL": timedelta(seconds=5),
    #: Debug mode only: keep mail in a local folder shown at /dev/mailbox instead of sending it.
    "GATEHOUSE_DEV_MAILBOX": False,
    #: Security events older than this are deleted.
    "GATEHOUSE_AUDIT_RETENTION": timedelta(days=90),
    #: Have I Been Pwned range API (k-anonymity) for new passwords, e.g.
    #: "https://api.pwnedpasswords.com/range/"; None turns the check off. It fails open.
    "GATEHOUSE_HIBP_URL": None,
    "GATEHOUSE_HIBP_TIMEOUT": 2.0,
    #: Gatehouse's security headers (below) and error pages (plain, leaking nothing; 503 while
    #: the database or the counter storage is down) on every route of the app, not only on
    #: Gatehouse's own pages. Off, the host's routes keep the host's own behaviour.
    "GATEHOUSE_HARDEN_WHOLE_APP": False,
    #: Sent on every response unless the view set the header itself.
    "GATEHOUSE_CONTENT_SECURITY_POLICY": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    #: ``Strict-Transport-Security`` value for requests that arrived over HTTPS.
    "GATEHOUSE_HSTS": "max-age=63072000; includeSubDomains",
}
