"""The mail sink: a real SMTP server (aiosmtpd) that keeps every message it is handed.

Every clone gets one, started and stopped with its services (``workbench.edge`` runs it);
the clone's mail settings point at it (``workbench.egress``). It accepts any sender, any
recipient and any login (the password is never kept), delivers nothing, and writes each
message into the clone's folder: ``NNNNNN.eml`` as it arrived, and a line of
``index.jsonl`` (``workbench.mailbox`` reads them).
"""

from __future__ import annotations

import json
import os
import time
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult

from workbench.mailbox import INDEX

MAX_MESSAGE = 10 * 1024 * 1024     # bytes: a bigger message is refused with 552


class MailFolder:
    """Where captured messages go: numbered files, written whole before they are listed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.next_id = 1 + max((int(p.stem) for p in folder.glob("*.eml") if p.stem.isdigit()), default=0)

    def keep(self, sender: str, recipients: list[str], data: bytes) -> int:
        mail_id = self.next_id
        self.next_id += 1
        name = f"{mail_id:06d}.eml"
        tmp = self.folder / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, self.folder / name)
        headers = BytesHeaderParser(policy=policy.default).parsebytes(data)
        line = {"id": mail_id, "time": time.time(), "from": str(headers["From"] or sender),
                "to": recipients, "subject": str(headers["Subject"] or ""), "size": len(data), "file": name}
        fd = os.open(self.folder / INDEX, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        return mail_id


class SinkHandler:
    def __init__(self, folder: MailFolder) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        mail_id = self.folder.keep(str(envelope.mail_from or ""), [str(r) for r in envelope.rcpt_tos], data)
        return f"250 kept by the repro-tui mail sink as message {mail_id}; nothing was delivered"


def accept_any_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    """Apps that log in to their SMTP server still can; what they send is not kept."""
    return AuthResult(success=True)


def smtp_factory(folder: Path) -> Any:
    handler = SinkHandler(MailFolder(folder))

    def make() -> SMTP:
        return SMTP(handler, data_size_limit=MAX_MESSAGE, hostname="repro-tui-mail-sink",
                    authenticator=accept_any_login,
                    auth_require_tls=False, enable_SMTPUTF8=True)

    return make
