"""The mail sink on the local backend: a real process that sends mail through its usual
settings (SMTP_HOST, SMTP_PORT, a login) reaches the clone's sink, never the real server;
what it sent is listed and read with `repro-tui mail`, secrets masked."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
import textwrap
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import free_port, git, run_cli
from workbench.backends.local import kill_services, port_open, running_pid

APP = '''\
import os, smtplib, sys
from email.message import EmailMessage
from http.server import HTTPServer, SimpleHTTPRequestHandler

msg = EmailMessage()
msg["From"] = "shop@northwind.example"
msg["To"] = "ann.customer@realmail.test"
msg["Subject"] = "Your order shipped"
msg.set_content("Hello Ann, track it with token " + os.environ["API_TOKEN"] + "\\n"
                "payments: " + os.environ["STRIPE_SECRET_KEY"] + "\\n")
with smtplib.SMTP(os.environ["SMTP_HOST"], int(os.environ["SMTP_PORT"]), timeout=5) as smtp:
    smtp.login(os.environ["SMTP_USER"], os.environ["SMTP_PASSWORD"])
    smtp.send_message(msg)
print("mail sent", flush=True)
HTTPServer(("127.0.0.1", int(sys.argv[1])), SimpleHTTPRequestHandler).serve_forever()
'''


@pytest.fixture
def mailer(tmp_path: Path):
    """A workspace whose one service mails a customer as it starts, through the settings prod
    gives it (a real SMTP server's name, a login) and no override in repro.yaml."""
    root = tmp_path / "mailer"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "app.py").write_text(APP)
    (root / "repro.yaml").write_text(textwrap.dedent(f"""\
        name: mailer
        services:
          web:
            command: python app.py {{port}}
            port: {free_port()}
            env: {{SMTP_HOST: smtp.realmail.example, SMTP_PORT: "587", SMTP_USER: shop,
                  SMTP_PASSWORD: smtp-pw-4411, API_TOKEN: tok-live-8c7b6a, STRIPE_SECRET_KEY: sk_live_51Hxyz,
                  PARTNER_URL: "https://api.partner.example/v2"}}
        """))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "mailer")
    yield root
    kill_services(root)


def test_a_local_process_mails_through_its_usual_settings_and_the_sink_keeps_it(mailer: Path):
    r = run_cli("fork", "prod", "b1", cwd=mailer)
    assert r.returncode == 0, r.stderr
    assert "safe default: mail to the clone's sink (repro-tui mail): web.SMTP_HOST, web.SMTP_PORT" in r.stdout
    assert "live payment keys disabled: web.STRIPE_SECRET_KEY" in r.stdout
    assert "egress NOT fenced" in r.stdout and "web.PARTNER_URL -> api.partner.example:443" in r.stdout

    r = run_cli("mail", "b1", "--json", cwd=mailer)
    assert r.returncode == 0, r.stderr
    mails = json.loads(r.stdout)
    assert [(m["id"], m["to"], m["subject"]) for m in mails] == [
        (1, ["ann.customer@realmail.test"], "Your order shipped")]
    shown = run_cli("mail", "b1", "1", cwd=mailer)
    assert shown.returncode == 0 and "Hello Ann" in shown.stdout and "To: ann.customer@realmail.test" in shown.stdout
    assert "tok-live-8c7b6a" not in shown.stdout and "<secret:" in shown.stdout   # a secret in a mail is masked
    listing = run_cli("mail", "b1", cwd=mailer).stdout
    assert "Your order shipped" in listing and "none delivered" in listing

    folder = mailer / ".repro" / "run" / "b1" / "mail"
    kept = (folder / "000001.eml").read_bytes()
    assert b"disabled-by-repro-tui" in kept and b"sk_live_51Hxyz" not in kept   # the live key never reached it
    assert not any(b"smtp-pw-4411" in p.read_bytes() for p in folder.iterdir())   # the login is not kept
    assert (folder.stat().st_mode & 0o077) == 0

    # stopped with the services, started with them on the same port; what it kept stays
    run_dir = mailer / ".repro" / "run" / "b1"
    port = json.loads((run_dir / "_edge.json").read_text())["mail"]["listen"][1]
    assert run_cli("stop", "b1", cwd=mailer).returncode == 0
    assert running_pid(run_dir, "_edge") is None
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", port, timeout=2)
    assert run_cli("start", "b1", cwd=mailer).returncode == 0
    assert json.loads((run_dir / "_edge.json").read_text())["mail"]["listen"][1] == port
    assert [m["id"] for m in json.loads(run_cli("mail", "b1", "--json", cwd=mailer).stdout)] == [1, 2]

    # a message bigger than the sink takes is refused whole, and nothing of it is kept
    big = EmailMessage()
    big["From"], big["To"], big["Subject"] = "a@b.test", "c@d.test", "too big"
    big.set_content("x" * (11 * 1024 * 1024))
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp, pytest.raises(smtplib.SMTPException):
        smtp.send_message(big)
    assert len(json.loads(run_cli("mail", "b1", "--json", cwd=mailer).stdout)) == 2

    # prod has no sink; an unknown message is a clear error
    r = run_cli("mail", "prod", cwd=mailer)
    assert r.returncode == 1 and "prod has no mail sink" in r.stderr
    r = run_cli("mail", "b1", "9", cwd=mailer)
    assert r.returncode == 1 and "no captured message 9" in r.stderr and "Traceback" not in r.stderr

    assert run_cli("destroy", "b1", "--yes", cwd=mailer).returncode == 0
    assert not run_dir.exists()


def test_an_edge_whose_clone_folder_is_gone_stops_by_itself(tmp_path: Path):
    """A workspace deleted with its clones running (or a clone's folder removed by hand)
    left its edge process serving forever, with no pid file left to stop it: it now sees
    its configuration gone and exits, freeing its ports."""
    run = tmp_path / "run"
    run.mkdir()
    port = free_port()
    config = run / "_edge.json"
    config.write_text(json.dumps({"mail": {"listen": ["127.0.0.1", port], "folder": str(run / "mail")}}))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    edge = subprocess.Popen([sys.executable, "-m", "workbench.edge", str(config)], stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 10
        while not port_open(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert port_open(port)
        time.sleep(2.5)                   # serving, untouched, it keeps running
        assert edge.poll() is None
        config.unlink()
        assert edge.wait(timeout=10) == 0
        assert b"is gone; stopping" in edge.stderr.read()
        assert not port_open(port)
    finally:
        if edge.poll() is None:
            edge.kill()
