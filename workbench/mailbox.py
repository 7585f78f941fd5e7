"""A clone's captured mail: the folder the mail sink writes, read for the command line and
the screen.

The sink (``workbench.mailsink``) keeps each message as it arrived, ``NNNNNN.eml``, and
appends one line per message to ``index.jsonl`` (id, time, from, to, subject, size).
Nothing here writes; what is shown goes through the workspace's redactor.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import NotFound

INDEX = "index.jsonl"
MAX_BODY = 200_000      # characters of a body shown; the .eml keeps all of it


@dataclass
class Mail:
    id: int
    time: float
    sender: str
    to: list[str]
    subject: str
    size: int
    file: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MailMessage:
    mail: Mail
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    attachments: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**self.mail.as_dict(), "headers": [list(h) for h in self.headers], "body": self.body,
                "attachments": self.attachments}

    def text(self) -> str:
        """The message as a person reads it: its main headers, then its text."""
        lines = [f"{k}: {v}" for k, v in self.headers]
        lines.append("")
        lines.append(self.body.rstrip("\n"))
        if self.attachments:
            lines += ["", "attachments: " + ", ".join(self.attachments)]
        return "\n".join(lines) + "\n"


SHOWN_HEADERS = ("Date", "From", "To", "Cc", "Reply-To", "Subject")


class Mailbox:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def list(self) -> list[Mail]:
        """Every captured message, oldest first. A line cut off half way is skipped."""
        out = []
        try:
            raw = (self.folder / INDEX).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        for line in raw.splitlines():
            try:
                d = json.loads(line)
                out.append(Mail(int(d["id"]), float(d["time"]), str(d.get("from", "")),
                                [str(t) for t in d.get("to", [])], str(d.get("subject", "")),
                                int(d.get("size", 0)), str(d["file"])))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def get(self, mail_id: int) -> MailMessage:
        mail = next((m for m in self.list() if m.id == mail_id), None)
        path = self.folder / mail.file if mail else None
        if mail is None or path is None or path.name != mail.file or not path.is_file():
            raise NotFound(f"no captured message {mail_id}.", "See the captured mail: repro-tui mail ENV")
        from email import policy  # here: the email package costs 7 ms of every command's start
        from email.parser import BytesParser

        msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        headers = [(h, str(msg[h])) for h in SHOWN_HEADERS if msg[h] is not None]
        body_part = msg.get_body(preferencelist=("plain", "html"))
        body = ""
        if body_part is not None:
            try:
                body = body_part.get_content()
            except (LookupError, ValueError):
                raw = body_part.get_payload(decode=True)
                body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        attachments = []
        for part in msg.iter_attachments():
            name = part.get_filename() or part.get_content_type()
            attachments.append(name)
            if part.get_content_maintype() == "text":   # a text attachment is shown too (a credit note)
                try:
                    body += f"\n--- attached: {name} ---\n{part.get_content()}"
                except (LookupError, ValueError):
                    pass
        return MailMessage(mail, headers, body[:MAX_BODY], attachments)
