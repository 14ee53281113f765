"""Settings from the environment, validation, and configure()."""

from __future__ import annotations

import pytest

from portchops_models.errors import ConfigurationError
from portchops_models.settings import Settings, configure, current_settings


def test_defaults_match_the_design() -> None:
    s = Settings()
    assert s.region == "us-east-1"
    assert s.endpoint_url is None
    assert s.table_prefix == "port-chops-"
    assert s.max_pool_connections == 50
    assert s.cache_maxsize == 500
    assert s.cache_ttl_seconds == 300
    assert s.retry_max_attempts == 8
    assert s.retry_base_delay == 0.025
    assert s.retry_max_delay == 1.0
    assert s.progress_ttl_hours == 24
    assert 0 < s.connect_timeout <= 10
    assert 0 < s.read_timeout <= 30


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTCHOPS_REGION", "eu-west-1")
    monkeypatch.setenv("PORTCHOPS_ENDPOINT_URL", "http://127.0.0.1:9999/")
    monkeypatch.setenv("PORTCHOPS_MAX_POOL_CONNECTIONS", "7")
    monkeypatch.setenv("PORTCHOPS_TABLE_PREFIX", "staging-")
    s = configure()
    assert (s.region, s.endpoint_url, s.max_pool_connections) == (
        "eu-west-1",
        "http://127.0.0.1:9999",
        7,
    )
    assert s.table_name("users") == "staging-users"
    assert current_settings() is s


def test_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTCHOPS_REGION", "eu-west-1")
    assert configure(region="ap-south-1").region == "ap-south-1"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("MAX_POOL_CONNECTIONS", "0"),
        ("MAX_POOL_CONNECTIONS", "many"),
        ("ENDPOINT_URL", "localhost:8000"),
        ("ENDPOINT_URL", "ftp://127.0.0.1:21"),
        ("ENDPOINT_URL", "http://127.0.0.1:notaport"),
        ("READ_TIMEOUT", "-1"),
        ("RETRY_MAX_ATTEMPTS", "0"),
        ("TABLE_PREFIX", "bad prefix!"),
        ("PROGRESS_TTL_HOURS", "0"),
    ],
)
def test_bad_environment_value_fails_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(f"PORTCHOPS_{var}", value)
    with pytest.raises(ConfigurationError) as info:
        configure()
    message = str(info.value)
    assert f"PORTCHOPS_{var}" in message
    assert "\n" not in message


def test_bad_override_names_the_field() -> None:
    with pytest.raises(ConfigurationError, match="PORTCHOPS_MAX_POOL_CONNECTIONS"):
        configure(max_pool_connections=-3)


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="PORTCHOPS_NO_SUCH_FIELD"):
        configure(no_such_field=1)


def test_settings_object_plus_overrides() -> None:
    base = Settings(region="eu-central-1")
    s = configure(base, table_prefix="x-")
    assert (s.region, s.table_prefix) == ("eu-central-1", "x-")
    assert configure(base) is base


def test_settings_are_immutable() -> None:
    s = Settings()
    with pytest.raises(ValueError, match="frozen"):
        s.region = "eu-west-1"  # type: ignore[misc]


@pytest.mark.parametrize("secret", ["", "short"])
def test_an_empty_or_short_cursor_secret_is_a_configuration_error(secret: str) -> None:
    from portchops_models import ConfigurationError

    with pytest.raises(ConfigurationError, match="PORTCHOPS_CURSOR_SECRET") as info:
        configure(cursor_secret=secret)
    assert "at least 16 characters" in str(info.value)
    assert secret not in str(info.value).split("=", 1)[1] or not secret
