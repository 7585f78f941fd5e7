"""The rules that keep a clone from mailing, charging or calling out (workbench.egress), on
plain data: which settings are mail, payment and webhook settings, what a clone gets
instead, and which settings still point outside."""

from __future__ import annotations

import pytest

from workbench.egress import (
    CLOSED_URL,
    DISABLED,
    Endpoint,
    clone_defaults,
    endpoints,
    fork_lines,
    kind_of,
    outside,
    parse_allow,
    proxy_defaults,
)


def as_map(env: dict[str, str], explicit: set[str] | None = None) -> dict[str, str]:
    return {d.key: d.value for d in clone_defaults(env, explicit or set())}


@pytest.mark.parametrize("name,kind", [
    ("SMTP_HOST", "mail-host"), ("EMAIL_HOST", "mail-host"), ("MAIL_SERVER", "mail-host"),
    ("SMTP_ADDRESS", "mail-host"), ("mailHost", "mail-host"), ("SMTP_PORT", "mail-port"),
    ("EMAIL_PORT", "mail-port"), ("MAILER_DSN", "mail-url"), ("SMTP_URL", "mail-url"),
    ("EMAIL_USE_TLS", "mail-tls"), ("SENDGRID_API_KEY", "mail-api"), ("MAILGUN_API_KEY", "mail-api"),
    ("POSTMARK_SERVER_TOKEN", "mail-api"), ("AWS_SES_ACCESS_KEY_ID", "mail-api"), ("MAIL_API_KEY", "mail-api"),
    ("STRIPE_SECRET_KEY", "payment"), ("STRIPE_API_KEY", "payment"), ("BRAINTREE_PRIVATE_KEY", "payment"),
    ("PAYMENT_API_TOKEN", "payment"), ("SLACK_WEBHOOK_URL", "webhook"), ("ORDER_WEBHOOK", "webhook"),
    # not mail, payment or webhook settings: left alone
    ("SUPPORT_EMAIL", None), ("MAIL_FROM_ADDRESS", None), ("EMAIL_FROM", None), ("SMTP_USER", None),
    ("SMTP_PASSWORD", None), ("STRIPE_WEBHOOK_SECRET", None), ("MAILGUN_DOMAIN", None), ("DATABASE_URL", None),
    ("KEYBOARD_LAYOUT", None), ("HOSTNAME", None),
    # the mail server's login (Django's names): the sink takes any, so left alone (they were
    # taken for hosts: EMAIL_HOST_USER became the sink's address, and EMAIL_PORT_PASSWORD appeared)
    ("EMAIL_HOST_USER", None), ("EMAIL_HOST_PASSWORD", None), ("MAIL_SERVER_LOGIN", None),
    # text messages and pushes reach real phones
    ("TWILIO_AUTH_TOKEN", "sms"), ("VONAGE_API_SECRET", "sms"), ("SMS_API_KEY", "sms"),
    ("ONESIGNAL_REST_API_KEY", "sms"), ("TWILIO_ACCOUNT_SID", None), ("SMS_SENDER_NAME", None),
])
def test_which_settings_are_mail_payment_or_webhooks(name, kind):
    assert kind_of(name) == kind


def test_mail_settings_point_at_the_sink_in_the_form_prod_uses():
    # a host with its port keeps that form; a host alone gets the port beside it
    assert as_map({"SMTP_HOST": "smtp.example.com:587"}) == {"SMTP_HOST": "{mail.host}:{mail.port}"}
    assert as_map({"EMAIL_HOST": "smtp.example.com"}) == {"EMAIL_HOST": "{mail.host}", "EMAIL_PORT": "{mail.port}"}
    assert as_map({"SMTP_HOST": "mx", "SMTP_PORT": "25", "SMTP_TLS": "true"}) == {
        "SMTP_HOST": "{mail.host}", "SMTP_PORT": "{mail.port}", "SMTP_TLS": "false"}
    assert as_map({"MAILER_DSN": "smtp://u:p@smtp.example.com:465"}) == {
        "MAILER_DSN": "smtp://{mail.host}:{mail.port}"}
    assert as_map({"mailHost": "smtp.example.com"}) == {"mailHost": "{mail.host}", "mailPort": "{mail.port}"}
    # a TLS setting that is not a yes/no is left to the user
    assert as_map({"MAIL_ENCRYPTION": "tls"}) == {}


def test_keys_and_webhooks_are_disabled_and_test_keys_kept():
    env = {"STRIPE_SECRET_KEY": "sk_live_abc", "STRIPE_PUBLISHABLE_KEY": "pk_test_123",
           "SENDGRID_API_KEY": "SG.xyz", "SLACK_WEBHOOK_URL": "https://hooks.slack.test/T1", "MODE": "live"}
    got = as_map(env)
    assert got == {"STRIPE_SECRET_KEY": DISABLED, "SENDGRID_API_KEY": DISABLED, "SLACK_WEBHOOK_URL": CLOSED_URL}
    lines = fork_lines({"web": clone_defaults(env, set())}, {"web": ["STRIPE_PUBLISHABLE_KEY"]}, [], False, "x")
    assert any("live payment keys disabled: web.STRIPE_SECRET_KEY" in line for line in lines)
    assert any("web.STRIPE_PUBLISHABLE_KEY is kept" in line for line in lines)


def test_a_django_mail_setup_points_at_the_sink_and_keeps_its_login():
    env = {"EMAIL_HOST": "smtp.sendgrid.net", "EMAIL_PORT": "587", "EMAIL_HOST_USER": "apikey",
           "EMAIL_HOST_PASSWORD": "SG.live", "EMAIL_USE_TLS": "True"}
    assert as_map(env) == {"EMAIL_HOST": "{mail.host}", "EMAIL_PORT": "{mail.port}", "EMAIL_USE_TLS": "false"}


def test_sms_keys_are_disabled_and_said_at_fork():
    env = {"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "live-token"}
    assert as_map(env) == {"TWILIO_AUTH_TOKEN": DISABLED}
    lines = fork_lines({"web": clone_defaults(env, set())}, {}, [], False, "x")
    assert any("SMS and push keys disabled: web.TWILIO_AUTH_TOKEN" in line for line in lines), lines


def test_what_repro_yaml_overrides_itself_is_left_to_it():
    env = {"SMTP_HOST": "smtp.example.com", "STRIPE_SECRET_KEY": "sk_live_abc"}
    assert as_map(env, {"SMTP_HOST", "STRIPE_SECRET_KEY"}) == {}
    # an explicit host is not given a port it did not ask for
    assert "SMTP_PORT" not in as_map(env, {"SMTP_HOST"})
    assert {d.key for d in proxy_defaults({"HTTP_PROXY"}, {"db"})} == {
        "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"}


@pytest.mark.parametrize("key,value,found", [
    ("DATABASE_URL", "postgres://shop:pw@db.internal.example/shop", [Endpoint("db.internal.example", 5432)]),
    ("API_URL", "https://api.partner.example/v1", [Endpoint("api.partner.example", 443)]),
    ("CACHE", "redis://cache:6379/0", [Endpoint("cache", 6379)]),
    ("UPSTREAM", "10.1.2.3:8080", [Endpoint("10.1.2.3", 8080)]),
    ("PARTNER_HOST", "sftp.partner.example", [Endpoint("sftp.partner.example", None)]),
    ("URLS", "https://a.example, https://b.example:8443", [Endpoint("a.example", 443), Endpoint("b.example", 8443)]),
    ("SMTP_HOST", "{mail.host}:{mail.port}", []),
    ("VERSION", "1.2.3", []), ("TIMEOUT", "10:30", []), ("GREETING", "hello world", []),
])
def test_endpoints_a_setting_points_at(key, value, found):
    assert endpoints(key, value) == found


def test_outside_leaves_out_local_hosts_and_the_clones_own_services():
    envs = {"web": {"DATABASE_URL": "postgres://u:secretpw@db:5432/app", "API": "https://api.partner.example",
                    "SELF": "http://127.0.0.1:8000", "PAY": "https://pay.example:443"}}
    reach = outside(envs, {"db"}, [Endpoint("api.partner.example", 443)])
    assert [(o.key, str(o.endpoint), o.allowed) for o in reach] == [
        ("API", "api.partner.example:443", True), ("PAY", "pay.example:443", False)]
    lines = fork_lines({}, {}, reach, True, "fenced")
    assert any("blocked" in line and "web.PAY -> pay.example:443" in line for line in lines)
    assert all("secretpw" not in line for line in lines)   # hosts only, never the value


@pytest.mark.parametrize("entry,ok", [("api.example:443", True), ("10.0.0.5:5432", True), ("[::1]:25", True),
                                      ("partner.example", True), ("db", True), ("http://x:1", False),
                                      ("host:99999", False), ("a b:1", False), ("", False)])
def test_allow_entries(entry, ok):
    assert (parse_allow(entry) is not None) is ok
