"""The dev mailbox pages (like Rails' letter_opener): the mail a development server kept.

A message page shows the plain-text part with its links clickable, and the HTML part as
source, not rendered. Email HTML depends on inline styles, which the pages' CSP forbids; an
``<iframe srcdoc>`` inherits that CSP, so rendering it would take a second response with a
looser policy. The text part carries the same words and links, which is what a developer
needs to follow a confirmation or reset link.
"""

from flask import abort, current_app, render_template
from flask.typing import ResponseReturnValue

from ..services import devmailbox, mail


def _folder() -> str:
    """The mailbox folder; 404 unless the app runs in debug mode with the dev mailbox on,
    since these pages show every message, live links included, to whoever asks."""
    if not (current_app.debug and current_app.config["GATEHOUSE_DEV_MAILBOX"]):
        abort(404)
    return mail.dev_mailbox_path(current_app)


def index() -> ResponseReturnValue:
    return render_template("gatehouse/dev_mailbox.html", envelopes=devmailbox.envelopes(_folder()))


def message(name: str) -> ResponseReturnValue:
    found = devmailbox.read(_folder(), name)
    if found is None:
        abort(404)
    return render_template("gatehouse/dev_mailbox_message.html", message=found)
