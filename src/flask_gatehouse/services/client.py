"""What Gatehouse records about the client of a request: its address and user agent.

Both come from the request and so from whoever sent it: the user agent is cleaned of control
characters (PostgreSQL refuses NUL) and cut to the column's size before it is stored.
"""

from flask import request

USER_AGENT_LENGTH = 512


def ip() -> str:
    """The client's address (after ProxyFix, when trusted proxies are configured)."""
    return request.remote_addr or ""


def user_agent() -> str:
    raw = request.headers.get("User-Agent", "")
    printable = "".join(char for char in raw if char.isprintable())
    return printable[:USER_AGENT_LENGTH]
