"""Which keys are secret, and masking that still lets equal values be recognised."""

from __future__ import annotations

import pytest

from workbench.secrets import SecretPolicy


@pytest.mark.parametrize("key", ["DB_PASSWORD", "passwd", "DB_PWD", "client_secret", "GITHUB_TOKEN", "api_key",
                                 "apiKey", "ApiKey", "api_keys", "DB_PASS", "PRIVATE_KEY",
                                 "AWS_SECRET_ACCESS_KEY", "aws_access_key_id",
                                 "credentials", "AUTH", "basic_auth", "DB_KEY", "key", "payment.api_key"])
def test_secret_keys(key):
    assert SecretPolicy().is_secret_key(key)


@pytest.mark.parametrize("key", ["KEYBOARD", "primary_key", "monkey", "SMTP_HOST", "author", "keyboard_layout",
                                 "DISCOUNT_MODE", "tokenizer_name", "bypass_cache", "passenger"])
def test_not_secret_keys(key):
    assert not SecretPolicy().is_secret_key(key)


def test_extra_and_allowed_names():
    p = SecretPolicy(extra=["SESSION_ID"], allowed=["AUTH"])
    assert p.is_secret_key("SESSION_ID") and not p.is_secret_key("AUTH")


def test_masking_is_keyed_and_stable():
    p = SecretPolicy(key=b"k1")
    shown, masked = p.mask_value("DB_PASSWORD", "hunter2")
    assert masked and shown.startswith("<secret:") and "hunter2" not in shown
    assert p.mask_value("OTHER_PASSWORD", "hunter2")[0] == shown  # equal values are recognisable
    assert p.mask_value("DB_PASSWORD", "hunter3")[0] != shown
    assert SecretPolicy(key=b"k2").mask_value("DB_PASSWORD", "hunter2")[0] != shown


def test_url_passwords_are_masked_everywhere():
    p = SecretPolicy()
    shown, masked = p.mask_value("DATABASE_URL", "postgres://shop:s3cr3t@db:5432/shop")
    assert masked and "s3cr3t" not in shown and shown.startswith("postgres://shop:<secret:")
    assert shown.endswith("@db:5432/shop")
    text = p.redact_text("connecting to postgres://u:pa55word@h/db failed; token hunter2", ["hunter2"])
    assert "pa55word" not in text and "hunter2" not in text
    assert p.mask_tree({"a": {"password": "x1", "url": "redis://:topsecret@r/0"}}) == {
        "a": {"password": p.tag("x1"), "url": f"redis://:{p.tag('topsecret')}@r/0"}}
