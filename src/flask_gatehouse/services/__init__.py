"""Internal: the services the flows are built from, each owning one idea (sessions, tokens,
the mail outbox, audit, throttling, ...). Not a public API: names here may change in any
release. Services add to the database session and never commit; the flow that called them
commits once."""
