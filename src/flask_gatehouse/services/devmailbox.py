"""Read the dev mailbox: the messages Flask-Mailman's file backend kept instead of sending.

The file backend writes what one connection sends to a file named
``<YYYYmmdd-HHMMSS>-<random>.log`` (local time): each message's bytes, then a line of 79
dashes. Gatehouse's outbox opens a connection per message, so a file is one message and its
name is that message's id in URLs. A name from a URL must match that pattern (digits, dashes,
".log") before it is looked up, so it cannot climb out of the folder.
"""

import os
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

_NAME = re.compile(r"\d{8}-\d{6}-\d{1,16}\.log")
_SEPARATOR = b"\n" + b"-" * 79 + b"\n"
#: http(s) URLs, without the punctuation that ends a sentence around them.
_URL = re.compile(r"""https?://[^\s<>"']*[^\s<>"'.,;:!?)\]]""")


@dataclass(frozen=True)
class Envelope:
    """What the mailbox list shows of a message."""

    name: str
    written_at: datetime
    sender: str
    to: str
    subject: str


@dataclass(frozen=True)
class Chunk:
    """A run of a plain-text body: a URL to show as a link, or text around one."""

    text: str
    is_link: bool


@dataclass(frozen=True)
class Message:
    """What a message page shows."""

    envelope: Envelope
    date: str
    #: The plain-text part cut into text and links (empty when the message has none).
    text: list[Chunk]
    #: The HTML part's source ("" when the message has none).
    html: str


def envelopes(folder: str) -> list[Envelope]:
    """Every message in ``folder``, newest first (none when nothing was sent yet)."""
    try:
        entries = [entry for entry in os.scandir(folder) if _is_message(entry)]
    except FileNotFoundError:
        return []
    # The name's timestamp (whole seconds, the sender's clock) orders the messages; the file's
    # mtime, only as fine as the file system's clock tick, orders those of one second.
    entries.sort(key=lambda entry: (entry.name[:15], entry.stat().st_mtime_ns), reverse=True)
    return [_envelope(Path(entry.path), _parse(entry.path)) for entry in entries]


def read(folder: str, name: str) -> Message | None:
    """The message stored as ``name`` in ``folder``, or None when there is no such message."""
    if _NAME.fullmatch(name) is None:
        return None
    path = Path(folder, name)  # safe: the pattern allows no separators and no dots but ".log"
    if path.is_symlink() or not path.is_file():
        return None
    parsed = _parse(path)
    return Message(
        envelope=_envelope(path, parsed),
        date=str(parsed["Date"] or ""),
        text=_chunks(_content(parsed, "plain")),
        html=_content(parsed, "html"),
    )


def _is_message(entry: os.DirEntry[str]) -> bool:
    return _NAME.fullmatch(entry.name) is not None and entry.is_file(follow_symlinks=False)


def _parse(path: str | Path) -> EmailMessage:
    raw = Path(path).read_bytes().removesuffix(_SEPARATOR)
    return BytesParser(policy=policy.default).parsebytes(raw)


def _envelope(path: Path, message: EmailMessage) -> Envelope:
    return Envelope(
        name=path.name,
        written_at=datetime.fromtimestamp(path.stat().st_mtime),
        sender=str(message["From"] or ""),
        to=str(message["To"] or ""),
        subject=str(message["Subject"] or ""),
    )


def _content(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return ""
    content: str = part.get_content()
    return content


def _chunks(text: str) -> list[Chunk]:
    """``text`` split around its URLs, so a template can link them and escape the rest."""
    chunks: list[Chunk] = []
    start = 0
    for url in _URL.finditer(text):
        chunks.append(Chunk(text[start : url.start()], is_link=False))
        chunks.append(Chunk(url.group(), is_link=True))
        start = url.end()
    chunks.append(Chunk(text[start:], is_link=False))
    return chunks
