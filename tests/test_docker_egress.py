"""A Docker clone cannot mail, charge or call out, on a real engine: its app mails through its
usual settings and the message lands in the clone's sink; its network is internal, so it
cannot open a connection outside (another network's server, prod's database), but reaches
what clone.egress.allow lists through the egress proxy; its web port still answers on
127.0.0.1 through the host's forwarder."""

from __future__ import annotations

import json
import textwrap
import time
import urllib.request

import pytest

from tests.conftest import git, run_cli
from tests.conftest_docker import BUSYBOX_IMAGE
from tests.test_docker_init import compose_labels

pytestmark = pytest.mark.docker

SEND = r"""#!/bin/sh
# the app's mailer: one message to a customer through $SMTP_HOST:$SMTP_PORT
{ printf 'EHLO app\r\n'; sleep 0.3
  printf 'MAIL FROM:<shop@northwind.example>\r\n'; sleep 0.1
  printf 'RCPT TO:<ann.customer@realmail.test>\r\n'; sleep 0.1
  printf 'DATA\r\n'; sleep 0.1
  printf 'From: shop@northwind.example\r\nTo: ann.customer@realmail.test\r\nSubject: Your order shipped\r\n\r\n'
  printf 'Hello Ann, key %s\r\n.\r\n' "$STRIPE_SECRET_KEY"; sleep 0.2
  printf 'QUIT\r\n'; } | nc -w 5 "$SMTP_HOST" "$SMTP_PORT"
"""


def send_and_read(container, root) -> list[dict]:
    """The app's mailer run in a clone's container; the mail its sink then lists."""
    code, out = container.exec_run(["sh", "/www/send.sh"])
    assert code == 0, out
    for _ in range(50):
        mails = json.loads(run_cli("mail", "b1", "--json", cwd=root).stdout)
        if mails:
            return mails
        time.sleep(0.1)
    return []


def _reach(container, host: str, port: int) -> bool:
    code, _ = container.exec_run(["sh", "-c", f"echo x | nc -w 2 {host} {port} >/dev/null 2>&1"])
    return code == 0


def _ip(container, network: str | None = None) -> str:
    container.reload()
    nets = container.attrs["NetworkSettings"]["Networks"]
    return (nets[network] if network else next(iter(nets.values())))["IPAddress"]


@pytest.fixture
def stack(tmp_path, docker_client, docker_tag, docker_cleanup):
    """prod: a web app that can mail (never made to in prod), and an unrelated server on a
    network of its own: the outside world."""
    root = tmp_path / "shop"
    (root / "www").mkdir(parents=True)
    (root / "www" / "index.html").write_text("the shop\n")
    (root / "www" / "send.sh").write_text(SEND)
    (root / "www" / "send.sh").chmod(0o755)
    outside_net = docker_client.networks.create(f"{docker_tag}_outside")
    docker_cleanup.append(outside_net)
    outside = docker_client.containers.run(BUSYBOX_IMAGE, ["httpd", "-f", "-p", "8080", "-h", "/"], detach=True,
                                           name=f"{docker_tag}_outside", network=outside_net.name, init=True)
    docker_cleanup.append(outside)
    other = docker_client.containers.run(BUSYBOX_IMAGE, ["httpd", "-f", "-p", "8081", "-h", "/"], detach=True,
                                         name=f"{docker_tag}_other", network=outside_net.name, init=True)
    docker_cleanup.append(other)
    out_ip, other_ip = _ip(outside), _ip(other)
    web = docker_client.containers.run(
        BUSYBOX_IMAGE, ["httpd", "-f", "-p", "8080", "-h", "/www"], name=f"{docker_tag}_web_1", detach=True,
        init=True, ports={"8080/tcp": ("127.0.0.1", None)},
        volumes={str(root / "www"): {"bind": "/www", "mode": "ro"}},
        environment={"SMTP_HOST": "smtp.realmail.example", "SMTP_PORT": "25", "STRIPE_SECRET_KEY": "sk_live_51Qz",
                     "PARTNER_URL": f"http://{out_ip}:8080/", "REPORTS_URL": f"http://{other_ip}:8081/"},
        labels=compose_labels(docker_tag, "web", root))
    docker_cleanup.append(web)
    (root / "repro.yaml").write_text(textwrap.dedent(f"""\
        name: shop
        backend: docker
        prod: {{branch: main, compose_project: {docker_tag}}}
        clone:
          egress:
            allow: ["{out_ip}:8080"]
        """))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shop")
    yield {"root": root, "outside": outside, "out_ip": out_ip, "other_ip": other_ip, "outside_net": outside_net}
    run_cli("destroy", "b1", "--yes", cwd=root)


def test_a_clone_container_mails_into_its_sink_and_cannot_call_out(stack, docker_client):
    root = stack["root"]
    r = run_cli("fork", "prod", "b1", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "safe default: mail to the clone's sink (repro-tui mail): web.SMTP_HOST, web.SMTP_PORT" in r.stdout
    assert "live payment keys disabled: web.STRIPE_SECRET_KEY" in r.stdout
    assert "egress fenced: the containers of b1 reach each other, their mail sink, and 1 allowed host" in r.stdout
    assert f"blocked; allow one under clone.egress.allow): web.REPORTS_URL -> {stack['other_ip']}:8081" in r.stdout
    assert f"allowed by clone.egress.allow: web.PARTNER_URL -> {stack['out_ip']}:8080" in r.stdout

    status = json.loads(run_cli("status", "b1", "--json", cwd=root).stdout)
    app = docker_client.containers.get(status["services"]["web"]["container"])
    env = dict(e.split("=", 1) for e in app.attrs["Config"]["Env"])
    net = docker_client.networks.get(next(iter(app.attrs["NetworkSettings"]["Networks"])))
    assert net.attrs["Internal"] is True
    gateway = net.attrs["IPAM"]["Config"][0]["Gateway"]
    assert env["SMTP_HOST"] == gateway and env["STRIPE_SECRET_KEY"] == "disabled-by-repro-tui"

    # the app mails through its usual settings: the message is in the clone's sink
    mails = send_and_read(app, root)
    assert [(m["to"], m["subject"]) for m in mails] == [(["ann.customer@realmail.test"], "Your order shipped")]
    shown = run_cli("mail", "b1", "1", cwd=root).stdout
    assert "Hello Ann" in shown and "sk_live_51Qz" not in shown

    # nothing outside its network: another network's server, prod's own container
    control = docker_client.containers.run(BUSYBOX_IMAGE, ["sleep", "60"], detach=True, init=True,
                                           network=stack["outside_net"].name, labels={"repro.test": "1"})
    try:
        assert _reach(control, stack["other_ip"], 8081)          # the server is there ...
        assert not _reach(app, stack["other_ip"], 8081)          # ... and the clone cannot reach it
        assert not _reach(app, stack["out_ip"], 8080)            # allowed only through the proxy
    finally:
        control.remove(force=True)
    # allowed through the egress proxy; anything else is refused with a line that says why
    proxy = env["HTTP_PROXY"].removeprefix("http://").rstrip("/")
    host, port = proxy.rsplit(":", 1)
    ok = (f"printf 'CONNECT {stack['out_ip']}:8080 HTTP/1.1\\r\\n\\r\\nGET / HTTP/1.0\\r\\n\\r\\n' "
          f"| nc -w 3 {host} {port}")
    code, out = app.exec_run(["sh", "-c", ok])
    assert b"200 Connection established" in out and b"HTTP/1." in out.split(b"\r\n\r\n", 1)[1], out   # it answered
    no = f"printf 'CONNECT {stack['other_ip']}:8081 HTTP/1.1\\r\\n\\r\\n' | nc -w 3 {host} {port}"
    code, out = app.exec_run(["sh", "-c", no])
    assert b"403 Forbidden" in out and b"clone.egress.allow" in out

    # the screen and the user still reach its web port on 127.0.0.1
    with urllib.request.urlopen(f"http://127.0.0.1:{status['services']['web']['port']}/index.html", timeout=5) as r:
        assert r.read() == b"the shop\n"

    # stopped with its services; removed with the clone
    run_dir = root / ".repro" / "run" / "b1"
    assert run_cli("stop", "b1", cwd=root).returncode == 0
    assert not list(run_dir.glob("_*.pid"))
    assert run_cli("destroy", "b1", "--yes", cwd=root).returncode == 0
    assert not run_dir.exists()
