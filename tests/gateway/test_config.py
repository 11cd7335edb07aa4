"""Configuration parsing: every mistake stops start-up naming source and key."""

from __future__ import annotations

import pytest

from hookgate.config import ConfigError, parse_config

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
