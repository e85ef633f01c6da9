"""The one way an action's work is stored: ``commit``.

Services add rows to the SQLAlchemy session and never commit. Whoever owns an action (a flow,
or the mail worker for a delivery) ends it with ``commit``: the rows, the audit events and
the outgoing mail are stored together or not at all, and only then are the events logged and
signalled (never for work that was rolled back).
"""

from .. import state
from . import audit
from .database import db


def commit() -> None:
    """Commit the session; then hand its mail to this process's worker, and log and signal
    its audit events."""
    outbox = state.get().outbox
    recorded = audit.take_recorded()
    written = outbox.take_written()
    db().session.commit()
    outbox.hand_over(written)
    audit.announce_committed(recorded)
