"""The Mail view: what a clone's services sent, as its sink caught it, on the screen at 80x24."""

from __future__ import annotations

import json
import smtplib
from email.message import EmailMessage

from tests.test_tui_app import app_for, forked, main_of, ready_diff, root  # noqa: F401 - fixtures
from tests.tui_support import notified, screen_text, wait_for
from workbench.tui.dialogs.mail import MailDialog, MessageDialog
from workbench.tui.main_screen import MainScreen

SIZE = (80, 24)


def send(run_dir, subject: str, body: str) -> None:
    host, port = json.loads((run_dir / "_edge.json").read_text())["mail"]["listen"]
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "shop@northwind.example", "ann@realmail.test", subject
    msg.set_content(body)
    with smtplib.SMTP(host, port, timeout=5) as smtp:
        smtp.send_message(msg)


async def test_mail_view_lists_what_the_clone_sent_and_opens_one_masked(root, tmp_path, forked):  # noqa: F811
    run_dir = forked.run_dir("b1")
    send(run_dir, "Your refund for order #2001", "Dear Ann,\nAPI_TOKEN=tok-live-9f8e7d\nyour credit note.\n")
    app = app_for(root, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ready_diff(pilot)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MailDialog), what="the mail view")
        await wait_for(pilot, lambda: "Your refund" in screen_text(app), what="the message listed")
        assert "ann@realmail.test" in screen_text(app) and "none delivered" in screen_text(app)
        send(run_dir, "Again", "hello again\n")
        await wait_for(pilot, lambda: "Again" in screen_text(app), what="a new message, by itself")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), what="the message")
        await wait_for(pilot, lambda: "your credit note" in screen_text(app), what="its text")
        assert "tok-live-9f8e7d" not in screen_text(app) and "<secret:" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, MailDialog)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        # prod has no sink: the key says why instead of opening an empty view
        screen.query_one("#envs").select_name("prod")
        await wait_for(pilot, lambda: main_of(pilot).selected == "prod", what="prod selected")
        await pilot.press("m")
        await notified(pilot, "prod has no mail sink")
        assert isinstance(app.screen, MainScreen)
