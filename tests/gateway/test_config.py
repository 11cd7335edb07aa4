"""Configuration parsing: every mistake stops start-up naming source and key."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from hookgate.config import ConfigError, Source, parse_config, split_signed_content

ENV = {"SECRET_A": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "STATE": "client-state"}


def source(**overrides: str) -> str:
    fields = {
        "id": '"acme-mail"',
        "tenant": '"acme"',
        "provider": '"standard-webhooks"',
        "secret_env": '["SECRET_A"]',
        **overrides,
    }
    lines = [f"{key} = {value}" for key, value in fields.items()]
    return "[[sources]]\n" + "\n".join(lines) + "\n"


def test_valid_config_parsed() -> None:
    config = parse_config(
        source() + source(id='"b"', provider='"graph"', secret_env='"STATE"'), ENV
    )

    assert [s.id for s in config.sources] == ["acme-mail", "b"]
    assert config.sources[0].secrets[0] != ENV["SECRET_A"].encode()
    assert config.sources[1].secrets == (b"client-state",)
    assert config.tenants == ["acme"]
    assert config.gateway.max_body_bytes == 1024 * 1024


def test_unset_variable_named() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(source(secret_env='["SECRET_A", "SECRET_PREVIOUS"]'), ENV)

    assert "'acme-mail'" in str(caught.value)
    assert "$SECRET_PREVIOUS" in str(caught.value)
    assert "secret_env" in str(caught.value)


def test_unknown_provider_named() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(source(provider='"carrier-pigeon"'), ENV)

    assert "'acme-mail'" in str(caught.value)
    assert "'provider'" in str(caught.value)
    assert "carrier-pigeon" in str(caught.value)


def test_duplicate_id_named() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(source() + source(), ENV)

    assert "'acme-mail'" in str(caught.value)
    assert "duplicate" in str(caught.value)
    assert "'id'" in str(caught.value)


def test_missing_key_named() -> None:
    text = '[[sources]]\nid = "x"\ntenant = "acme"\nsecret_env = ["SECRET_A"]\n'

    with pytest.raises(ConfigError) as caught:
        parse_config(text, ENV)

    assert "'x'" in str(caught.value)
    assert "provider" in str(caught.value)


def test_unknown_key_named() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(source(colour='"blue"'), ENV)

    assert "colour" in str(caught.value)


def test_tenant_with_brace_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(source(tenant='"ac}me"'), ENV)

    assert "'tenant'" in str(caught.value)


def test_secret_not_base64_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(source(), {"SECRET_A": "whsec_not*base64"})

    assert "$SECRET_A" in str(caught.value)


def test_no_sources_rejected() -> None:
    with pytest.raises(ConfigError):
        parse_config("[gateway]\nmax_body_bytes = 10\n", ENV)


def test_invalid_toml_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("[[sources]\n", ENV)

    assert "TOML" in str(caught.value)


def test_serve_stops_on_bad_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from hookgate.tests.conftest import HOOKGATE

    path = tmp_path / "bad.toml"
    path.write_text(source(secret_env='["HOOKGATE_TEST_UNSET_VARIABLE"]'))

    result = subprocess.run(
        [HOOKGATE, "serve", "--config", str(path), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode != 0
    assert "'acme-mail'" in result.stderr
    assert "$HOOKGATE_TEST_UNSET_VARIABLE" in result.stderr


SIGNED_ENV = {
    **ENV,
    "GITHUB": "It's a Secret to Everybody",
    "STRIPE": "whsec_abc123",
    "OLD": "old-secret",
    "NEW": "new-secret",
}


def parse_one(text: str, environ: dict[str, str] | None = None) -> Source:
    (parsed,) = parse_config(text, SIGNED_ENV if environ is None else environ).sources
    return parsed


def config_error(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, SIGNED_ENV if environ is None else environ)
    return str(caught.value)


class TestSignedProviders:
    def test_github_secret_kept_raw(self) -> None:
        """A GitHub secret is the variable's UTF-8 bytes."""
        parsed = parse_one(source(provider='"github"', secret_env='["GITHUB"]'))

        assert parsed.provider == "github"
        assert parsed.secrets == (b"It's a Secret to Everybody",)

    def test_stripe_secret_kept_whole(self) -> None:
        """A Stripe secret keeps its whsec_ prefix and is not base64 decoded."""
        parsed = parse_one(source(provider='"stripe"', secret_env='["STRIPE"]'))

        assert parsed.secrets == (b"whsec_abc123",)

    def test_stripe_api_key_rejected(self) -> None:
        """A Stripe secret without whsec_ is named with its variable and key."""
        message = config_error(
            source(provider='"stripe"', secret_env='["KEY"]'),
            {"KEY": "sk_live_123"},
        )

        assert "'acme-mail'" in message
        assert "$KEY" in message
        assert "'whsec_'" in message
        assert "'secret_env'" in message

    def test_hmac_provider_needs_table(self) -> None:
        """Provider hmac without [sources.hmac] stops start-up."""
        message = config_error(source(provider='"hmac"', secret_env='["OLD"]'))

        assert "'acme-mail'" in message
        assert "[sources.hmac]" in message
        assert "'header'" in message

    def test_hmac_table_on_other_provider(self) -> None:
        """[sources.hmac] on a GitHub source is a mistake, not ignored."""
        text = source(provider='"github"', secret_env='["GITHUB"]')
        text += '[sources.hmac]\nheader = "X-Signature"\n'

        message = config_error(text)

        assert "[sources.hmac] applies to hmac only" in message


def hmac_source(table: str, *, header: str = 'header = "X-Signature"') -> str:
    """Return a generic HMAC source whose [sources.hmac] has ``table`` lines."""
    return (
        source(provider='"hmac"', secret_env='["OLD"]')
        + f"[sources.hmac]\n{header}\n{table}\n"
    )


class TestHmacTable:
    def test_defaults(self) -> None:
        """An HMAC table with a header alone takes every default."""
        settings = parse_one(hmac_source("")).hmac

        assert settings is not None
        assert settings.algorithm == "sha256"
        assert settings.encoding == "hex"
        assert settings.prefix == ""
        assert settings.separator is None
        assert settings.timestamp_header is None
        assert settings.signed_content == "{body}"
        assert settings.id_header is None

    def test_every_key_read(self) -> None:
        """Each key is kept as written, header names in lower case."""
        settings = parse_one(
            hmac_source(
                'algorithm = "sha512"\nencoding = "base64"\nprefix = "v1="\n'
                'separator = ","\ntimestamp_header = "X-Timestamp"\n'
                'id_header = "X-Event-Id"\n'
                'signed_content = "{id}:{timestamp}:{body}"'
            )
        ).hmac

        assert settings is not None
        assert settings.header == "x-signature"
        assert settings.algorithm == "sha512"
        assert settings.encoding == "base64"
        assert settings.prefix == "v1="
        assert settings.separator == ","
        assert settings.timestamp_header == "x-timestamp"
        assert settings.id_header == "x-event-id"
        assert settings.signed_content == "{id}:{timestamp}:{body}"

    def test_sha1_allowed(self) -> None:
        settings = parse_one(hmac_source('algorithm = "sha1"')).hmac

        assert settings is not None
        assert settings.algorithm == "sha1"

    def test_literal_braces_allowed(self) -> None:
        """Doubled braces are literal text, not placeholders."""
        settings = parse_one(hmac_source('signed_content = "{{v1}}{body}"')).hmac

        assert settings is not None
        assert split_signed_content(settings.signed_content) == [
            ("{v1}", "body"),
        ]

    def test_unknown_algorithm_named(self) -> None:
        message = config_error(hmac_source('algorithm = "md5"'))

        assert "'acme-mail'" in message
        assert "'md5'" in message
        assert "'hmac.algorithm'" in message
        assert "sha256, sha512, sha1" in message

    def test_unknown_encoding_named(self) -> None:
        message = config_error(hmac_source('encoding = "base32"'))

        assert "'base32'" in message
        assert "'hmac.encoding'" in message

    def test_missing_header_named(self) -> None:
        message = config_error(hmac_source('algorithm = "sha256"', header=""))

        assert "'acme-mail'" in message
        assert "header" in message

    def test_invalid_header_name_named(self) -> None:
        message = config_error(hmac_source("", header='header = "X Signature"'))

        assert "'X Signature'" in message
        assert "'hmac.header'" in message

    def test_invalid_timestamp_header_named(self) -> None:
        message = config_error(
            hmac_source(
                'timestamp_header = "X-Time:"\nsigned_content = "{timestamp}.{body}"'
            )
        )

        assert "'hmac.timestamp_header'" in message

    def test_unknown_placeholder_named(self) -> None:
        message = config_error(hmac_source('signed_content = "{nonce}.{body}"'))

        assert "{nonce}" in message
        assert "'hmac.signed_content'" in message

    def test_format_spec_rejected(self) -> None:
        message = config_error(hmac_source('signed_content = "{body!r}"'))

        assert "{body!r}" in message

    def test_unbalanced_brace_rejected(self) -> None:
        message = config_error(hmac_source('signed_content = "{body"'))

        assert "'hmac.signed_content'" in message
        assert "{{" in message

    def test_body_required(self) -> None:
        message = config_error(
            hmac_source('id_header = "X-Id"\nsigned_content = "{id}"')
        )

        assert "{body} exactly once" in message

    def test_body_twice_rejected(self) -> None:
        message = config_error(hmac_source('signed_content = "{body}{body}"'))

        assert "{body} exactly once" in message

    def test_timestamp_placeholder_needs_header(self) -> None:
        message = config_error(hmac_source('signed_content = "{timestamp}.{body}"'))

        assert "{timestamp}" in message
        assert "'hmac.timestamp_header'" in message

    def test_unsigned_timestamp_rejected(self) -> None:
        """A timestamp header that the template does not sign protects nothing."""
        message = config_error(hmac_source('timestamp_header = "X-Timestamp"'))

        assert "not be signed" in message
        assert "'hmac.timestamp_header'" in message

    def test_id_placeholder_needs_header(self) -> None:
        message = config_error(hmac_source('signed_content = "{id}.{body}"'))

        assert "{id}" in message
        assert "'hmac.id_header'" in message

    def test_empty_separator_rejected(self) -> None:
        message = config_error(hmac_source('separator = ""'))

        assert "'hmac.separator'" in message

    def test_prefix_containing_separator_rejected(self) -> None:
        message = config_error(hmac_source('prefix = "v1,"\nseparator = ","'))

        assert "'hmac.prefix'" in message
        assert "separator" in message

    def test_unknown_table_key_named(self) -> None:
        message = config_error(hmac_source('digest = "sha256"'))

        assert "digest" in message


def rotated_source(secrets: str, secret_env: str | None = None) -> str:
    """Return a Graph source (raw secrets) whose ``secrets`` list is ``secrets``."""
    lines = ["[[sources]]", 'id = "acme-mail"', 'tenant = "acme"', 'provider = "graph"']
    if secret_env is not None:
        lines.append(f"secret_env = {secret_env}")
    lines.append(f"secrets = {secrets}")
    return "\n".join(lines) + "\n"


class TestSecretList:
    def test_secrets_read_in_order(self) -> None:
        """secret_env comes first, then the secrets list, in the order written."""
        parsed = parse_one(rotated_source('[{ env = "NEW" }]', secret_env='["OLD"]'))

        assert parsed.secrets == (b"old-secret", b"new-secret")

    def test_not_after_string_parsed(self) -> None:
        parsed = parse_one(
            rotated_source(
                '[{ env = "OLD", not_after = "2026-12-31T00:00:00Z" }, { env = "NEW" }]'
            )
        )

        expiry = datetime(2026, 12, 31, tzinfo=UTC).timestamp()
        assert parsed.active_secrets(expiry) == (b"old-secret", b"new-secret")
        assert parsed.active_secrets(expiry + 1) == (b"new-secret",)

    def test_not_after_offset_honoured(self) -> None:
        parsed = parse_one(
            rotated_source('[{ env = "OLD", not_after = "2026-12-31T02:00:00+02:00" }]')
        )

        expiry = datetime(2026, 12, 31, tzinfo=UTC).timestamp()
        assert parsed.active_secrets(expiry) == (b"old-secret",)
        assert parsed.active_secrets(expiry + 1) == ()

    def test_toml_datetime_accepted(self) -> None:
        """An unquoted TOML offset date-time works like the string form."""
        parsed = parse_one(
            rotated_source('[{ env = "OLD", not_after = 2026-12-31T00:00:00Z }]')
        )

        expiry = datetime(2026, 12, 31, tzinfo=UTC).timestamp()
        assert parsed.active_secrets(expiry) == (b"old-secret",)
        assert parsed.active_secrets(expiry + 1) == ()

    def test_not_after_without_offset_rejected(self) -> None:
        message = config_error(
            rotated_source('[{ env = "OLD", not_after = "2026-12-31T00:00:00" }]')
        )

        assert "'acme-mail'" in message
        assert "secrets[0].not_after" in message
        assert "timezone" in message
        assert "RFC 3339" in message

    def test_invalid_not_after_rejected(self) -> None:
        message = config_error(
            rotated_source('[{ env = "OLD", not_after = "next tuesday" }]')
        )

        assert "secrets[0].not_after" in message
        assert "RFC 3339" in message

    def test_date_only_rejected(self) -> None:
        message = config_error(
            rotated_source('[{ env = "OLD" }, { env = "NEW", not_after = 2026-12-31 }]')
        )

        assert "secrets[1].not_after" in message

    def test_unknown_item_key_named(self) -> None:
        message = config_error(rotated_source('[{ env = "OLD", expires = "x" }]'))

        assert "expires" in message
        assert "secrets[0]" in message

    def test_unset_variable_named(self) -> None:
        message = config_error(rotated_source('[{ env = "OLD" }, { env = "GONE" }]'))

        assert "'acme-mail'" in message
        assert "$GONE" in message
        assert "'secrets'" in message

    def test_variable_named_twice_rejected(self) -> None:
        """A second listing without expiry would keep the secret valid forever."""
        message = config_error(
            rotated_source(
                '[{ env = "OLD", not_after = "2026-12-31T00:00:00Z" }]',
                secret_env='["OLD"]',
            )
        )

        assert "$OLD" in message
        assert "more than once" in message

    def test_no_secret_at_all_rejected(self) -> None:
        message = config_error(rotated_source("[]"))

        assert "'secret_env'" in message
        assert "'secrets'" in message

    def test_standard_secret_decoded_from_list(self) -> None:
        parsed = parse_one(
            source(secret_env="[]") + 'secrets = [{ env = "SECRET_A" }]\n'
        )

        assert parsed.secrets == parse_one(source()).secrets

    def test_bad_standard_secret_names_list_key(self) -> None:
        message = config_error(
            source(secret_env="[]") + 'secrets = [{ env = "OLD" }]\n',
            {"OLD": "whsec_not*base64"},
        )

        assert "$OLD" in message
        assert "'secrets'" in message


class TestActiveSecrets:
    def test_without_expiry_same_tuple(self) -> None:
        """With no expiry the hot path gets the stored tuple, not a new one."""
        parsed = parse_one(rotated_source('[{ env = "OLD" }, { env = "NEW" }]'))

        assert parsed.secret_schedule == ()
        assert parsed.active_secrets(time.time()) is parsed.secrets

    def test_expired_secret_dropped(self) -> None:
        parsed = parse_one(
            rotated_source(
                '[{ env = "OLD", not_after = "2026-12-31T00:00:00Z" }, { env = "NEW" }]'
            )
        )
        expiry = datetime(2026, 12, 31, tzinfo=UTC).timestamp()

        assert parsed.active_secrets(expiry - 1) == (b"old-secret", b"new-secret")
        assert parsed.active_secrets(expiry + 0.001) == (b"new-secret",)

    def test_valid_at_not_after(self) -> None:
        """not_after is the last instant the secret verifies."""
        parsed = parse_one(
            rotated_source('[{ env = "OLD", not_after = "2026-12-31T00:00:00Z" }]')
        )
        expiry = datetime(2026, 12, 31, tzinfo=UTC).timestamp()

        assert parsed.active_secrets(expiry) == (b"old-secret",)

    def test_expiries_in_any_order(self) -> None:
        """Each secret stops at its own instant, whatever the listing order."""
        parsed = parse_one(
            rotated_source(
                '[{ env = "NEW", not_after = "2027-01-01T00:00:00Z" },'
                ' { env = "OLD", not_after = "2026-12-31T00:00:00Z" },'
                ' { env = "STATE" }]'
            )
        )
        first = datetime(2026, 12, 31, tzinfo=UTC).timestamp()
        second = datetime(2027, 1, 1, tzinfo=UTC).timestamp()

        assert parsed.active_secrets(first) == (
            b"new-secret",
            b"old-secret",
            b"client-state",
        )
        assert parsed.active_secrets(first + 1) == (b"new-secret", b"client-state")
        assert parsed.active_secrets(second) == (b"new-secret", b"client-state")
        assert parsed.active_secrets(second + 1) == (b"client-state",)

    def test_active_tuples_built_once(self) -> None:
        """Between two expiries every call returns the same stored tuple."""
        parsed = parse_one(
            rotated_source(
                '[{ env = "OLD", not_after = "2026-12-31T00:00:00Z" }, { env = "NEW" }]'
            )
        )
        expiry = datetime(2026, 12, 31, tzinfo=UTC).timestamp()

        assert parsed.active_secrets(expiry - 5) is parsed.active_secrets(expiry - 1)
        assert parsed.active_secrets(expiry + 1) is parsed.active_secrets(expiry + 5)

    def test_all_expired_leaves_none(self) -> None:
        parsed = parse_one(
            rotated_source('[{ env = "OLD", not_after = "2001-01-01T00:00:00Z" }]')
        )

        assert parsed.active_secrets(time.time()) == ()


class TestRetentionTable:
    def test_defaults(self) -> None:
        retention = parse_config(source(), ENV).retention

        assert retention.ingest_processed_s == 600
        assert retention.events_s == 604800
        assert retention.dead_s == 1209600
        assert retention.interval_s == 60

    def test_every_key_read(self) -> None:
        table = (
            "[retention]\ningest_processed_s = 10\nevents_s = 20\ndead_s = 0\n"
            "interval_s = 0.5\n"
        )

        retention = parse_config(table + source(), ENV).retention

        assert retention.ingest_processed_s == 10
        assert retention.events_s == 20
        assert retention.dead_s == 0
        assert retention.interval_s == 0.5

    def test_negative_age_named(self) -> None:
        with pytest.raises(ConfigError, match=r"\[retention\].*events_s"):
            parse_config("[retention]\nevents_s = -1\n" + source(), ENV)

    def test_zero_interval_named(self) -> None:
        with pytest.raises(ConfigError, match=r"\[retention\].*interval_s"):
            parse_config("[retention]\ninterval_s = 0\n" + source(), ENV)

    def test_unknown_key_named(self) -> None:
        with pytest.raises(ConfigError, match="ingest_s"):
            parse_config("[retention]\ningest_s = 5\n" + source(), ENV)


class TestMaxStreamLength:
    def test_default(self) -> None:
        assert parse_config(source(), ENV).gateway.max_stream_length == 1_000_000

    def test_zero_allowed(self) -> None:
        config = parse_config("[gateway]\nmax_stream_length = 0\n" + source(), ENV)

        assert config.gateway.max_stream_length == 0

    def test_negative_named(self) -> None:
        with pytest.raises(ConfigError, match=r"\[gateway\].*max_stream_length"):
            parse_config("[gateway]\nmax_stream_length = -1\n" + source(), ENV)


@pytest.mark.parametrize(
    "setting",
    [
        "max_body_bytes = 0",
        "max_pending = 0",
        "max_batch = 0",
        "flush_timeout_ms = 0",
        "body_timeout_s = 0",
        "body_timeout_s = 0.01",
        "body_timeout_s = inf",
        "retry_after_s = -1",
        "timestamp_tolerance_s = 0",
        "dedup_window_s = 0",
        "dedup_window_s = 10000000000000000",
    ],
)
def test_gateway_setting_out_of_range(setting: str) -> None:
    key = setting.split(" = ")[0]

    with pytest.raises(ConfigError, match=rf"\[gateway\].*{key}"):
        parse_config(f"[gateway]\n{setting}\n" + source(), ENV)
