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


def test_the_shortcut_for_plain_text_masks_what_every_pass_masks():
    """``redact`` leaves a text alone without running its passes when it holds nothing a
    pass looks for; seeded random texts, built from every shape the passes know, come out
    exactly as every pass would have made them."""
    import random

    from workbench.secrets import _redact_all, _values_pattern, redact

    pieces = ["password=hunter22", "Authorization: Bearer abc.def", "postgres://u:pw1234@db/x", "token",
              "AKIAABCDEFGHIJKLMNOP", "eyJhbGciOiJI.eyJzdWIiOiIx.c2lnbmF0dXJl", "ghp_" + "a" * 36,
              "github_pat_" + "b" * 30, "glpat-" + "c" * 20, "xoxb-1234567890-abc", "sk_live_" + "d" * 24,
              "rk_test_" + "e" * 12, "whsec_" + "f" * 20, "SG." + "g" * 22 + "." + "h" * 22, "AIza" + "i" * 35,
              "npm_" + "j" * 36, "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----",
              "s3cr3t-value", "plain words", "order 1042", "a.b[3]", " ", "=", ":", "\n", "é", "<secret:1a2b3c>"]
    policy, values = SecretPolicy(), ["s3cr3t-value", "xy"]
    rng = random.Random(20261129)
    masked_some = plain = 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces) if rng.random() < 0.5 else rng.choice("abcXYZ _-.0123") * rng.randint(1, 4)
                       for _ in range(rng.randint(1, 6)))
        want = _redact_all(text, policy, _values_pattern(values))
        assert redact(text, policy, values) == want, text
        masked_some += want != text
        plain += want == text
    assert masked_some > 500 and plain > 500   # both ways were tried


def test_a_url_password_is_masked_percent_encoded_and_decoded():
    """``postgresql://shop:p%40ss%3Aw0rd-X@db/shop``: the app reads the password decoded
    (``p@ss:w0rd-X``) and may print it so; both forms are masked."""
    from workbench.secrets import redact, tree_values

    policy = SecretPolicy()
    env = {"DATABASE_URL": "postgresql://shop:p%40ss%3Aw0rd-X@db/shop"}
    values = [v for _where, v in tree_values(env, policy)]
    assert "p%40ss%3Aw0rd-X" in values and "p@ss:w0rd-X" in values
    out = redact("connecting as shop with p@ss:w0rd-X (from p%40ss%3Aw0rd-X)", policy, values)
    assert "w0rd-X" not in out and out.count("<secret:") == 2, out
