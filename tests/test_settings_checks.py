"""Settings mistakes fail loudly: unknown PORTCHOPS_* variables, regions that do not exist."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portchops_models.errors import ConfigurationError
from portchops_models.settings import (
    ENV_PREFIX,
    OTHER_VARIABLES,
    Settings,
    check_environment,
    configure,
    dynamodb_regions,
)

FIELDS = sorted(Settings.model_fields)


def test_the_suites_own_environment_has_no_stray_variable() -> None:
    check_environment()  # raises naming the variable if the shell or CI left one
    stray = [
        name
        for name in os.environ
        if name.upper().startswith(ENV_PREFIX)
        and name.upper().removeprefix(ENV_PREFIX).lower() not in Settings.model_fields
        and name.upper() not in OTHER_VARIABLES
    ]
    assert stray == []


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("PORTCHOPS_ENDPOINTURL", "PORTCHOPS_ENDPOINT_URL"),
        ("PORTCHOPS_TABLEPREFIX", "PORTCHOPS_TABLE_PREFIX"),
        ("PORTCHOPS_REGOIN", "PORTCHOPS_REGION"),
        ("PORTCHOPS_RETRY_MAX_ATEMPTS", "PORTCHOPS_RETRY_MAX_ATTEMPTS"),
        ("portchops_cache_ttl", "PORTCHOPS_CACHE_TTL_SECONDS"),
    ],
)
def test_a_mistyped_variable_names_the_setting_meant(
    monkeypatch: pytest.MonkeyPatch, typo: str, meant: str
) -> None:
    monkeypatch.setenv(typo, "http://127.0.0.1:8000")
    expected = f"{typo} is not a setting; did you mean {meant}?"

    with pytest.raises(ConfigurationError) as at_configure:
        configure()
    with pytest.raises(ConfigurationError) as at_settings:
        Settings()

    assert str(at_configure.value) == str(at_settings.value) == expected


def test_a_variable_like_no_setting_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTCHOPS_ZQXJ", "1")
    with pytest.raises(ConfigurationError, match=r"^PORTCHOPS_ZQXJ is not a setting; see the"):
        configure(endpoint_url="http://127.0.0.1:8000")


def test_variables_read_outside_settings_are_known(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTHER_VARIABLES:
        monkeypatch.setenv(name, "/usr/bin/true")
    assert configure().region == "us-east-1"


@given(field=st.sampled_from(FIELDS), flips=st.lists(st.booleans(), min_size=40, max_size=40))
def test_every_setting_passes_in_any_case(field: str, flips: list[bool]) -> None:
    name = f"{ENV_PREFIX}{field.upper()}"
    mixed = "".join(c.lower() if flip else c for c, flip in zip(name, flips, strict=False))
    check_environment({mixed: "x", "OTHER_TOOL_SETTING": "y"})


@given(suffix=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", max_size=30))
def test_any_other_suffix_is_refused_by_name(suffix: str) -> None:
    name = f"{ENV_PREFIX}{suffix}"
    if suffix.lower() in Settings.model_fields or name in OTHER_VARIABLES:
        return
    with pytest.raises(ConfigurationError) as info:
        check_environment({name: "1"})
    message = str(info.value)
    assert message.startswith(f"{name} is not a setting; ")
    assert "\n" not in message


# --------------------------------------------------------------------------- regions


def test_botocores_regions_cover_every_partition() -> None:
    regions = dynamodb_regions()
    assert {"us-east-1", "eu-west-1", "ap-southeast-2"} <= regions  # aws
    assert {"cn-north-1", "us-gov-west-1"} <= regions  # aws-cn, aws-us-gov


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1", "cn-northwest-1"])
def test_a_real_region_is_accepted_for_aws(region: str) -> None:
    assert configure(region=region).region == region


@pytest.mark.parametrize(
    ("region", "hint"),
    [("mars", ""), ("eu-wset-1", "did you mean eu-west-1? "), ("US-EAST-1", "did you mean ")],
)
def test_an_unknown_region_for_aws_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, region: str, hint: str
) -> None:
    monkeypatch.setenv("PORTCHOPS_REGION", region)

    with pytest.raises(ConfigurationError) as info:
        configure()

    message = str(info.value)
    assert message.startswith(f"PORTCHOPS_REGION={region}: not a DynamoDB region ({hint}")
    assert "PORTCHOPS_ENDPOINT_URL" in message
    assert "\n" not in message


def test_any_region_goes_with_a_custom_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTCHOPS_REGION", "mars")
    monkeypatch.setenv("PORTCHOPS_ENDPOINT_URL", "http://127.0.0.1:8000")
    assert configure().region == "mars"
    # ...and a settings object keeps being checked when the endpoint is taken away.
    with pytest.raises(ConfigurationError, match="PORTCHOPS_REGION=mars"):
        configure(configure(), endpoint_url=None)
