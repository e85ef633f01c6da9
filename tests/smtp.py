"""A real SMTP server for the tests (aiosmtpd), and the mailbox it delivers to."""

import email
import email.policy
import re
import socket
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

_LINK = re.compile(r"https?://[^\s<>\"']+")


def free_port() -> int:
    """A TCP port nobody listens on (aiosmtpd cannot take port 0: it probes its own port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Mailbox:
    """What the SMTP server received. ``refuse`` makes the next N messages fail with a
    temporary error (451), as a struggling mail server would."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = 0
        self.attempts = 0
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self._arrived:
            self.attempts += 1
            if self.refuse > 0:
                self.refuse -= 1
                return "451 4.3.0 Try again later"
            message = email.message_from_bytes(
                envelope.original_content, policy=email.policy.default
            )
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK"

    def clear(self) -> None:
        with self._arrived:
            self.messages.clear()
            self.refuse = 0
            self.attempts = 0

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """The messages once at least ``count`` have arrived (fails after ``timeout``)."""
        with self._arrived:
            arrived = self._arrived.wait_for(lambda: len(self.messages) >= count, timeout)
            assert arrived, f"expected {count} message(s), got {len(self.messages)}"
            return list(self.messages)

    def to(self, address: str) -> list[EmailMessage]:
        """Messages received so far for ``address``."""
        return [m for m in self.messages if address in str(m["To"])]


def text(message: EmailMessage) -> str:
    """The plain-text body of a message."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content: str = part.get_content()  # type: ignore[attr-defined]
    return content


def html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    content: str = part.get_content()  # type: ignore[attr-defined]
    return content


def links(message: EmailMessage) -> list[str]:
    """Every URL in the plain-text body, in order."""
    return _LINK.findall(text(message))


def link_path(message: EmailMessage, fragment: str) -> str:
    """The path of the (only) link containing ``fragment``, to request with the test client."""
    found = [url for url in links(message) if fragment in url]
    assert len(found) == 1, f"expected one link with {fragment!r}, got {found}"
    return "/" + found[0].split("/", 3)[3]


class SMTPServer:
    """aiosmtpd on a free local port, running in its own thread."""

    def __init__(self, port: int | None = None) -> None:
        self.mailbox = Mailbox()
        self.port = port or free_port()
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
