"""One module per user action (sign-up, sign-in, recovery, email change, account settings,
the operator's CLI). Internal: the views and the CLI call them; a host calls the views.

Every entry point (the HTML views, the CLI, later the JSON API) calls a flow, and each flow
ends its action with one ``services.transaction.commit``: the action's rows, its audit events
and its outgoing mail (rows of the outbox) are stored together or not at all.
"""
