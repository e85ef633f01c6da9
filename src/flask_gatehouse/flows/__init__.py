"""One module per user action (sign-up, sign-in, recovery, email change, account settings).

Every entry point (the HTML views, the CLI, later the JSON API) calls a flow, and each flow
ends its action with one ``commit``: the action's rows, its audit events and its outgoing
mail (rows of the outbox) are stored together or not at all.
"""

from ..services import audit
from ..services.database import db


def commit() -> None:
    """Commit the action; then log and signal its audit events (never for a rollback)."""
    recorded = audit.take_recorded()
    db().session.commit()
    audit.announce_committed(recorded)
