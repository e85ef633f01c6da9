"""``flask gatehouse ...``: account administration from the shell.

Every failure is a one-line ``Error: ...`` and a non-zero exit (click's convention).
"""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from .flows import admin
from .models import User, utcnow
from .services import audit, users
from .services.database import db
from .services.identity import InvalidIdentity, normalize_email, normalize_username
from .services.passwords import password_problems

cli = AppGroup("gatehouse", help="Manage Gatehouse accounts.")


def _user(email: str) -> User:
    try:
        canonical = normalize_email(email)
    except InvalidIdentity:
        canonical = None
    user = users.find_by_email(canonical)
    if user is None:
        raise click.ClickException(f"No account with the email {email!r}.")
    return user


def _checked_password(password: str, *, email: str, username: str) -> str:
    problems = password_problems(password, email=email, username=username)
    if problems:
        raise click.ClickException(" ".join(problems))
    return password


@cli.command("create-user")
@click.option("--email", required=True)
@click.option("--username", required=True)
@click.password_option(help="Prompted for (twice) when not given.")
def create_user(email: str, username: str, password: str) -> None:
    """Create an active account; its address counts as confirmed (you vouch for it)."""
    try:
        clean_email, clean_username = normalize_email(email), normalize_username(username)
    except InvalidIdentity as error:
        raise click.ClickException(str(error)) from None
    _checked_password(password, email=clean_email, username=clean_username)
    created = admin.create_user(email=clean_email, username=clean_username, password=password)
    if created is None:
        raise click.ClickException(f"An account with the email {clean_email!r} already exists.")
    click.echo(f"Created {clean_email}.")


@cli.command("set-password")
@click.argument("email")
@click.password_option(help="Prompted for (twice) when not given.")
@click.option(
    "--temporary", is_flag=True, help="The owner must choose a new password at the next sign-in."
)
def set_password(email: str, password: str, temporary: bool) -> None:
    """Set a new password and end the account's sessions."""
    user = _user(email)
    checked = _checked_password(password, email=user.email, username=user.username)
    address = user.email
    admin.set_password(user, checked, temporary=temporary)
    then = " It must be changed at the next sign-in." if temporary else ""
    click.echo(f"Password changed for {address}; its sessions were ended.{then}")


@cli.command("deactivate")
@click.argument("email")
def deactivate(email: str) -> None:
    """Block sign-in and end every session of the account."""
    user = _user(email)
    address = user.email
    admin.set_active(user, False)
    click.echo(f"Deactivated {address}.")


@cli.command("activate")
@click.argument("email")
def activate(email: str) -> None:
    """Allow a deactivated account to sign in again."""
    user = _user(email)
    address = user.email
    admin.set_active(user, True)
    click.echo(f"Activated {address}.")


@cli.command("list-users")
def list_users() -> None:
    """Print every account: id, email, username, status."""
    for user in db().session.scalars(select(User).order_by(User.id)):
        status = "active" if user.active else "inactive"
        click.echo(f"{user.id}\t{user.email}\t{user.username}\t{status}")


@cli.command("revoke-sessions")
@click.argument("email")
def revoke_sessions(email: str) -> None:
    """Sign the account out everywhere."""
    user = _user(email)
    address = user.email
    count = admin.revoke_sessions(user)
    click.echo(f"Ended {count} session{'s' if count != 1 else ''} of {address}.")


@cli.group("two-factor")
def two_factor() -> None:
    """Two-factor authentication of an account."""


@two_factor.command("reset")
@click.argument("email")
def reset_two_factor(email: str) -> None:
    """Switch two-factor off for an owner who lost the app and the recovery codes; they
    are told by email."""
    user = _user(email)
    address = user.email
    if admin.reset_two_factor(user):
        click.echo(f"Two-factor authentication is off for {address}; they were told by email.")
    else:
        click.echo(f"Two-factor authentication was not on for {address}.")


@cli.command("import-tutorial")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--trust-emails",
    is_flag=True,
    help="Count the imported addresses as confirmed (the tutorial never checked them).",
)
def import_tutorial(path: Path, trust_emails: bool) -> None:
    """Bring over the users of a Flask-Login tutorial ``data.db`` (table ``users``).

    Their addresses were never confirmed, so by default each user confirms theirs (the login
    page offers the link) before signing in; --trust-emails skips that.
    """
    try:
        report = admin.import_tutorial(path, trust_emails=trust_emails)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    for line in report.skipped:
        click.echo(f"skipped: {line}", err=True)
    click.echo(f"Imported {report.imported} users, skipped {len(report.skipped)}.")


_AGE = re.compile(r"(\d+)([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def _since(value: str) -> datetime:
    """An ISO date/time (UTC unless it says otherwise) or an age such as 7d, 12h, 30m."""
    age = _AGE.fullmatch(value)
    try:
        if age:
            return utcnow() - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise click.BadParameter(
            "use an ISO date such as 2026-11-01, or an age such as 7d, 12h, 30m"
        ) from None


@cli.command("events")
@click.option("--user", "email", help="Only this account's events.")
@click.option("--since", "since", help="ISO date/time or an age (7d, 12h, 30m).")
@click.option("--kind", help="Only this kind of event, e.g. login.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def events(
    email: str | None, since: str | None, kind: str | None, limit: int, as_json: bool
) -> None:
    """Print security events, newest first."""
    user = _user(email) if email else None
    start = _since(since) if since else None
    for event in audit.recent(user=user, since=start, kind=kind, limit=limit):
        if as_json:
            click.echo(json.dumps(audit.as_dict(event), ensure_ascii=False))
        else:
            who = event.identifier or (f"user {event.user_id}" if event.user_id else "-")
            click.echo(
                f"{event.created_at:%Y-%m-%d %H:%M:%S}\t{event.kind}\t{event.outcome}"
                f"\t{who}\t{event.ip or '-'}\t{event.detail or ''}".rstrip()
            )


@cli.command("mail")
@click.option("--retry", is_flag=True, help="Queue the failed messages again, attempts reset.")
@click.option("--send", is_flag=True, help="Send the due messages now, from this process.")
def mail_queue(retry: bool, send: bool) -> None:
    """Show the mail outbox: counts by status, then each pending or failed message."""
    if retry:
        click.echo(f"Queued {admin.retry_failed_mail()} failed message(s) again.")
    if send:
        done = admin.send_due_mail()
        click.echo(
            f"Sent {done['sent']}, to retry later {done['retried']}, given up {done['failed']}."
        )
    queue = admin.mail_queue()
    click.echo("  ".join(f"{status}: {count}" for status, count in queue.counts.items()))
    for row in queue.unfinished:
        when = row.next_attempt_at if row.status == "pending" else row.finished_at
        click.echo(
            f"{row.id}\t{row.status}\t{row.template}\t{row.recipient}\t{row.attempts} attempts"
            f"\t{'next' if row.status == 'pending' else 'at'} {when:%Y-%m-%d %H:%M:%S}"
            f"\t{row.error or ''}".rstrip()
        )
