"""One module per user action (sign-up, sign-in, recovery, email change, account settings).

Every entry point (the HTML views, the CLI, later the JSON API) calls a flow, and each flow
commits its work once, together with its audit events and its mail, through ``commit``.
"""
