"""What a clone may reach: the rules that keep it from mailing, charging or calling out.

Pure functions, no I/O. Three things live here:

* **which settings are mail, payment or webhook settings**, by name (``SMTP_HOST``,
  ``EMAIL_PORT``, ``MAILER_DSN``, ``SENDGRID_API_KEY``, ``STRIPE_SECRET_KEY``,
  ``SLACK_WEBHOOK_URL``, ...);
* **what they become in a clone** unless ``repro.yaml`` says otherwise (an explicit
  override always wins): mail settings point at the clone's own mail sink (the templates
  ``{mail.host}`` and ``{mail.port}``, which the backends expand), mail API keys and live
  payment keys become a placeholder the provider refuses, webhook URLs a closed local port;
* **which settings still point at a host outside the clone** (URLs, ``host:port`` values,
  ``*_HOST`` names), for the line a fork prints.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

MAIL_HOST = "{mail.host}"
MAIL_PORT = "{mail.port}"
DISABLED = "disabled-by-repro-tui"           # a key no provider accepts
CLOSED_URL = "http://127.0.0.1:9/"           # the discard port: nothing listens, the call fails at once

_MAIL = {"SMTP", "MAIL", "EMAIL", "MAILER"}
_HOST_WORDS = {"HOST", "HOSTNAME", "SERVER", "RELAY", "SMARTHOST"}
_URL_WORDS = {"URL", "URI", "DSN"}
_TLS_WORDS = {"TLS", "SSL", "STARTTLS", "SECURE"}
_SECRET_WORDS = {"KEY", "APIKEY", "TOKEN", "SECRET", "PASSWORD", "PASS", "CREDENTIALS"}
MAIL_APIS = {"SENDGRID", "MAILGUN", "POSTMARK", "SES", "MANDRILL", "SPARKPOST", "MAILJET", "RESEND", "BREVO",
             "SENDINBLUE", "MAILERSEND", "SMTP2GO", "ELASTICEMAIL", "MAILCHIMP"}
PAYMENTS = {"STRIPE", "BRAINTREE", "PAYPAL", "ADYEN", "SQUARE", "MOLLIE", "KLARNA", "RAZORPAY", "PADDLE",
            "RECURLY", "CHARGEBEE", "AUTHNET", "AUTHORIZENET", "WORLDPAY", "GOCARDLESS", "PAYMENT", "PAYMENTS",
            "CHECKOUTCOM", "BILLING"}
# text messages and pushes reach real phones as mail reaches real inboxes
MESSAGING = {"TWILIO", "VONAGE", "NEXMO", "MESSAGEBIRD", "PLIVO", "SINCH", "TELNYX", "CLICKSEND", "ONESIGNAL",
             "SMS", "BULKSMS", "TEXTMAGIC"}
_LOGIN_WORDS = {"USER", "USERNAME", "LOGIN"}
_BOOL = {"true", "false", "1", "0", "yes", "no", "on", "off"}
_TEST_KEY = re.compile(r"(^|_)(test|sandbox)(_|$)|^(sk|pk|rk)_test_", re.IGNORECASE)


def words(name: str) -> list[str]:
    """``SMTP_HOST`` -> [SMTP, HOST]; ``mailHost`` -> [MAIL, HOST]; ``EMAIL__PORT`` -> [EMAIL, PORT]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.upper()) if w]


@dataclass(frozen=True)
class Default:
    """One setting a clone gets instead of prod's, and why."""

    key: str
    value: str
    kind: str        # mail | mail-api | sms | payment | webhook
    reason: str


def kind_of(name: str) -> str | None:
    """mail-host | mail-port | mail-url | mail-tls | mail-api | sms | payment | webhook, or None."""
    w = words(name)
    ws = set(w)
    if not w:
        return None
    if "WEBHOOK" in ws or ("HOOK" in ws and ws & {"URL", "URI"}):
        return None if ws & _SECRET_WORDS else "webhook"   # a signing secret of incoming hooks charges nobody
    if (ws & MAIL_APIS and ws & (_SECRET_WORDS | {"API"})) or (ws & _MAIL and "API" in ws and ws & _SECRET_WORDS):
        return "mail-api"
    if ws & MESSAGING and ws & (_SECRET_WORDS | {"API"}):
        return "sms"
    if ws & PAYMENTS and ws & _SECRET_WORDS:
        return "payment"
    if ws & _MAIL and ws & (_SECRET_WORDS | _LOGIN_WORDS):
        return None   # the login of the mail server (EMAIL_HOST_USER): the sink takes any
    if ws & _MAIL:
        if ws & _HOST_WORDS or ("SMTP" in ws and ws & {"ADDRESS", "ADDR"}):
            return "mail-host"
        if "PORT" in ws:
            return "mail-port"
        if ws & _URL_WORDS:
            return "mail-url"
        if ws & _TLS_WORDS:
            return "mail-tls"
    return None


def _port_key(host_key: str) -> str:
    """``SMTP_HOST`` -> ``SMTP_PORT``; ``EMAIL_HOST`` -> ``EMAIL_PORT``; ``mailHost`` -> ``mailPort``."""
    for word in ("HOSTNAME", "HOST", "SERVER", "ADDRESS", "ADDR", "RELAY", "SMARTHOST"):
        for form in (word, word.lower(), word.capitalize()):
            i = host_key.rfind(form)
            if i >= 0:
                port = "PORT" if form.isupper() else "port" if form.islower() else "Port"
                return host_key[:i] + port + host_key[i + len(form):]
    return host_key + "_PORT"


def has_port(value: str) -> bool:
    return bool(re.fullmatch(r"\[?[^\s/]+\]?:\d{1,5}", value.strip()))


def clone_defaults(env: dict[str, str], explicit: set[str]) -> list[Default]:
    """The settings a clone's service gets instead of prod's ``env``, leaving alone the
    names ``repro.yaml`` overrides itself (``explicit``)."""
    out: dict[str, Default] = {}

    def put(key: str, value: str, kind: str, reason: str) -> None:
        if key not in explicit and key not in out:
            out[key] = Default(key, value, kind, reason)

    for key, value in env.items():
        kind = kind_of(key)
        if kind == "mail-host":
            if has_port(value):
                put(key, f"{MAIL_HOST}:{MAIL_PORT}", "mail", "outgoing mail to the clone's mail sink")
            else:
                put(key, MAIL_HOST, "mail", "outgoing mail to the clone's mail sink")
                if key not in explicit:
                    put(_port_key(key), MAIL_PORT, "mail", "the mail sink's port")
        elif kind == "mail-port":
            put(key, MAIL_PORT, "mail", "the mail sink's port")
        elif kind == "mail-url":
            if "://" in value or not value:
                put(key, f"smtp://{MAIL_HOST}:{MAIL_PORT}", "mail", "outgoing mail to the clone's mail sink")
        elif kind == "mail-tls":
            if value.strip().lower() in _BOOL:
                put(key, "false", "mail", "the mail sink speaks plain SMTP")
        elif kind == "mail-api":
            put(key, DISABLED, "mail-api", "mail through a provider's API is refused (use SMTP to see it in "
                                           "the sink)")
        elif kind == "sms":
            put(key, DISABLED, "sms", "text messages and pushes through a provider's API are refused: a clone "
                                      "reaches no real phone")
        elif kind == "payment":
            if not _TEST_KEY.search(value):
                put(key, DISABLED, "payment", "a live payment key: the provider refuses the placeholder")
        elif kind == "webhook" and (value.startswith(("http://", "https://")) or not value):
            put(key, CLOSED_URL, "webhook", "a webhook of the outside world: calls fail at once")
    return list(out.values())


PROXY = "http://{egress.proxy}"


def proxy_defaults(explicit: set[str], inside: set[str]) -> list[Default]:
    """On a fenced clone with an allow list: HTTP clients reach the allowed hosts through the
    clone's egress proxy (which answers 403 to anything else); the clone's own services and
    the local host are reached directly."""
    no_proxy = ",".join(sorted({"localhost", "127.0.0.1", *inside}))
    items = [(k, PROXY) for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")]
    items += [("NO_PROXY", no_proxy), ("no_proxy", no_proxy)]
    return [Default(k, v, "egress", "allowed hosts through the egress proxy") for k, v in items if k not in explicit]


def kept_test_keys(env: dict[str, str]) -> list[str]:
    """Payment keys left as they are because they are test-mode keys (they charge no one)."""
    return [k for k, v in env.items() if kind_of(k) == "payment" and _TEST_KEY.search(v)]


# --- hosts a clone's settings point at -------------------------------------------------------

DEFAULT_PORTS = {"http": 80, "https": 443, "smtp": 25, "smtps": 465, "submission": 587, "postgres": 5432,
                 "postgresql": 5432, "mysql": 3306, "redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671,
                 "mongodb": 27017, "ws": 80, "wss": 443, "ftp": 21, "sftp": 22, "ssh": 22, "ldap": 389,
                 "ldaps": 636, "nats": 4222, "kafka": 9092, "memcached": 11211}
_HOSTISH_KEY = {"HOST", "HOSTNAME", "SERVER", "ADDR", "ENDPOINT", "DOMAIN"}
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "host.docker.internal"}


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int | None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port else host


def parse_allow(entry: str) -> Endpoint | None:
    """``host:port`` (or ``host`` for every port, or ``[v6]:port``); None when it is not one."""
    text = entry.strip()
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?|([^\s:/\[\]]+)(?::(\d{1,5}))?", text)
    if not m:
        return None
    host = (m.group(1) or m.group(3) or "").lower()
    port = m.group(2) or m.group(4)
    if port is not None and not 0 < int(port) < 65536:
        return None
    if not (_is_ip(host) or _HOSTNAME.match(host) or re.fullmatch(r"[a-z0-9][a-z0-9_-]*", host)):
        return None
    return Endpoint(host, int(port) if port else None)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def is_local(host: str) -> bool:
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def endpoints(key: str, value: str) -> list[Endpoint]:
    """The hosts a setting points at: every URL in it, a ``host:port`` value, or a host name
    under a name that says host (``*_HOST``, ``*_SERVER``, ``*_ENDPOINT``...). Templates
    (``{mail.host}``) point nowhere yet."""
    out: list[Endpoint] = []
    for url in re.findall(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s,;'\"]+", value):
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError:
            continue
        if host and "{" not in url.split("://", 1)[1].split("/", 1)[0]:
            scheme = parts.scheme.split("+")[0].lower()
            out.append(Endpoint(host.lower(), port or DEFAULT_PORTS.get(scheme)))
    if out or "{" in value:
        return out
    text = value.strip()
    if has_port(text):
        ep = parse_allow(text)
        if ep is not None and (_is_ip(ep.host) or "." in ep.host or set(words(key)) & _HOSTISH_KEY):
            return [ep]
    if set(words(key)) & _HOSTISH_KEY and (_HOSTNAME.match(text) or _is_ip(text)):
        return [Endpoint(text.lower(), None)]
    return out


def allowed(ep: Endpoint, allow: list[Endpoint]) -> bool:
    return any(a.host == ep.host and (a.port is None or a.port == ep.port) for a in allow)


@dataclass(frozen=True)
class Outside:
    """A setting of a clone's service that points at a host outside the clone."""

    service: str
    key: str
    endpoint: Endpoint
    allowed: bool

    def __str__(self) -> str:
        return f"{self.service}.{self.key} -> {self.endpoint}"


def outside(envs: dict[str, dict[str, str]], inside: set[str], allow: list[Endpoint]) -> list[Outside]:
    """Every setting of ``envs`` (service -> its environment, as the clone runs it) that points
    at a host that is neither local, nor one of ``inside`` (the clone's own service names)."""
    out = []
    inside_low = {h.lower() for h in inside}
    for service, env in envs.items():
        for key, value in sorted(env.items()):
            for ep in endpoints(key, value):
                if is_local(ep.host) or ep.host in inside_low:
                    continue
                out.append(Outside(service, key, ep, allowed(ep, allow)))
    return out


def fork_lines(defaults: dict[str, list[Default]], kept: dict[str, list[str]], reach: list[Outside],
               fenced: bool, what_is_fenced: str) -> list[str]:
    """What a fork says about the clone's reach: each one clear line."""
    lines = []
    by_kind: dict[str, list[str]] = {}
    for service, items in defaults.items():
        for d in items:
            by_kind.setdefault(d.kind, []).append(f"{service}.{d.key}")
    labels = {"mail": "mail to the clone's sink (repro-tui mail)", "mail-api": "mail API keys disabled",
              "sms": "SMS and push keys disabled", "payment": "live payment keys disabled",
              "webhook": "webhooks pointed at a closed port", "egress": "HTTP through the egress proxy"}
    for kind in ("mail", "mail-api", "sms", "payment", "webhook", "egress"):
        if by_kind.get(kind):
            lines.append(f"safe default: {labels[kind]}: {', '.join(by_kind[kind])}")
    for service, keys in kept.items():
        for key in keys:
            lines.append(f"note: {service}.{key} is kept: a test-mode payment key")
    blocked = [o for o in reach if not o.allowed]
    open_ = [o for o in reach if o.allowed]
    if fenced:
        lines.append(f"egress fenced: {what_is_fenced}")
        if blocked:
            lines.append("still pointing outside (blocked; allow one under clone.egress.allow): "
                         + ", ".join(map(str, blocked)))
        if open_:
            lines.append("allowed by clone.egress.allow: " + ", ".join(map(str, open_)))
    else:
        lines.append(f"egress NOT fenced: {what_is_fenced}"
                     + (": settings still pointing outside: " + ", ".join(map(str, reach)) if reach else ""))
    return lines
