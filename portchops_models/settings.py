"""Settings (`PORTCHOPS_*` environment variables) and `configure()`.

Settings are built when first needed or when `configure()` is called, never at
import time. Source order, highest first: keyword overrides given to
`configure()`, then `PORTCHOPS_<FIELD>` environment variables, then the defaults
below.

Mistakes fail loudly instead of falling back to a default (and so, perhaps, to
real AWS): a ``PORTCHOPS_*`` variable that names no setting is a
`ConfigurationError` naming the closest setting (``PORTCHOPS_ENDPOINTURL is not a
setting; did you mean PORTCHOPS_ENDPOINT_URL?``), and ``region`` must be one of
botocore's DynamoDB regions (every partition) unless ``endpoint_url`` is set: a
custom endpoint (a local engine, a VPC endpoint) takes any region name.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import functools
import importlib.util
import os
import threading
from collections.abc import Mapping
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigurationError

__all__ = [
    "ENCRYPTION_KEY_BYTES",
    "ENV_PREFIX",
    "OTHER_VARIABLES",
    "Settings",
    "check_environment",
    "configure",
    "current_settings",
    "dynamodb_regions",
    "parse_encryption_keys",
    "settings_generation",
]

ENV_PREFIX = "PORTCHOPS_"
#: ``PORTCHOPS_*`` variables that are not settings but are read directly elsewhere.
OTHER_VARIABLES = frozenset({"PORTCHOPS_DYNALITE"})
#: The size of a local encryption key (`parse_encryption_keys`).
ENCRYPTION_KEY_BYTES = 32
#: Fields whose value is never printed (a secret, or a URL that may hold one).
_SECRET_FIELDS = frozenset(
    {
        "cursor_secret",
        "cache_bus_url",
        "cache_bus_secret",
        "encryption_keys",
        "encryption_lookup_key",
    }
)
#: The shortest accepted ``cursor_secret``.
MIN_SECRET_LENGTH = 16


class Settings(BaseSettings):
    """One connection and policy configuration shared by every model and repository.

    Examples:
        >>> from portchops_models import Settings
        >>> Settings(endpoint_url="http://127.0.0.1:8000").table_prefix
        'port-chops-'
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    region: str = Field(default="us-east-1", min_length=1, description="AWS region.")
    endpoint_url: str | None = Field(
        default=None, description="DynamoDB endpoint; None means real AWS."
    )
    table_prefix: str = Field(default="port-chops-", description="Prefix of every table name.")
    max_pool_connections: int = Field(default=50, gt=0, le=1000, description="HTTP pool size.")
    connect_timeout: float = Field(default=2.0, gt=0, le=60, description="Seconds to connect.")
    read_timeout: float = Field(default=5.0, gt=0, le=300, description="Seconds to read.")
    cache_maxsize: int = Field(default=500, ge=0, description="Entries per repository cache.")
    cache_ttl_seconds: float = Field(default=300.0, gt=0, description="Cache entry lifetime.")
    retry_max_attempts: int = Field(default=8, ge=1, le=100, description="Attempts per call.")
    retry_base_delay: float = Field(default=0.025, gt=0, description="First backoff, seconds.")
    retry_max_delay: float = Field(default=1.0, gt=0, description="Backoff cap, seconds.")
    call_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds one public call may take in all: attempts, backoff, pool waits.",
    )
    slow_call_seconds: float = Field(
        default=1.0,
        ge=0,
        description="A public call taking longer is logged as a WARNING (0 = never).",
    )
    progress_ttl_hours: float = Field(default=24.0, gt=0, description="UserProgress lifetime.")
    cursor_secret: SecretStr | None = Field(
        default=None,
        description="Signs pagination cursors (at least 16 characters); unset = a random key "
        "per process.",
    )
    cache_bus_url: str | None = Field(
        default=None,
        repr=False,  # may hold a password
        description="redis://host:port/db of the cache invalidation bus (needs the [redis] "
        "extra); unset = caches are coherent within one process only.",
    )

    cache_bus_secret: SecretStr | None = Field(
        default=None,
        description="Signs the cache bus's messages (HMAC-SHA256, at least 16 characters; the "
        "same on every process); unset = unsigned messages, acted on from anyone who can "
        "publish on the Redis.",
    )

    encryption_keys: SecretStr | None = Field(
        default=None,
        description="Local keys of encrypted attributes, id=BASE64 (32 random bytes) separated "
        "by commas: the first encrypts, every one decrypts (needs the [encryption] extra).",
    )
    encryption_kms_key_id: str | None = Field(
        default=None,
        description="AWS KMS key (id, ARN or alias) of encrypted attributes, instead of local "
        "keys: each item's content key is a KMS data key.",
    )
    encryption_lookup_key: SecretStr | None = Field(
        default=None,
        description="Keys the blind indexes of encrypted attributes (HMAC-SHA256, at least 16 "
        "characters, the same in every process; changing it means rewriting them).",
    )

    @field_validator("encryption_keys")
    @classmethod
    def _check_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_encryption_keys(value.get_secret_value())
        return value

    @field_validator("cursor_secret", "cache_bus_secret", "encryption_lookup_key")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty or short secret is a mistake (an unset variable expanded to ""), not a
        # request for the per-process key: say so instead of falling back silently.
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_LENGTH} characters (leave it unset for a "
                "random per-process key)"
            )
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL like http://127.0.0.1:8000")
        try:
            _ = parts.port
        except ValueError as err:
            raise ValueError(f"{value!r} has a bad port") from err
        return value.rstrip("/")

    @field_validator("cache_bus_url")
    @classmethod
    def _check_bus_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
            raise ValueError("is not a Redis URL like redis://127.0.0.1:6379/0")
        try:
            _ = parts.port
        except ValueError as err:
            raise ValueError("has a bad port") from err
        if not _installed("redis"):
            raise ValueError("needs the Redis client: pip install 'portchops-models[redis]'")
        return value

    @field_validator("table_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
        if not set(value) <= allowed or len(value) > 200:
            raise ValueError("may hold only letters, digits, '_', '.', '-' (at most 200)")
        return value

    @model_validator(mode="after")
    def _check_region(self) -> Self:
        # A custom endpoint (moto, dynalite, a VPC endpoint) takes any region name.
        if self.endpoint_url is None and self.region not in dynamodb_regions():
            close = difflib.get_close_matches(self.region.lower(), sorted(dynamodb_regions()), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ValueError(
                f"{ENV_PREFIX}REGION={self.region}: not a DynamoDB region ({hint}botocore's list "
                f"holds {len(dynamodb_regions())}; with PORTCHOPS_ENDPOINT_URL set any name goes)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The default sources, after `check_environment` (so ``Settings()`` checks it too)."""
        check_environment()
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    def table_name(self, base: str) -> str:
        """The full table name for a base name, e.g. ``users`` -> ``port-chops-users``."""
        return f"{self.table_prefix}{base}"


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Refuse a ``PORTCHOPS_*`` variable that is no setting (a typo would be ignored).

    Names are compared case-insensitively, as the settings read them. Variables in
    `OTHER_VARIABLES` are known too.

    Raises:
        ConfigurationError: naming the variable and, when one is close, the setting meant.

    Examples:
        >>> try:
        ...     check_environment({"PORTCHOPS_ENDPOINTURL": "http://127.0.0.1:8000"})
        ... except ConfigurationError as err:
        ...     print(err)
        PORTCHOPS_ENDPOINTURL is not a setting; did you mean PORTCHOPS_ENDPOINT_URL?
    """
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields} | OTHER_VARIABLES
    # Compared without the prefix, which would make every name look alike.
    suffixes = sorted(name.removeprefix(ENV_PREFIX) for name in known)
    for name in sorted(os.environ if environ is None else environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known:
            continue
        close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX), suffixes, n=1)
        hint = f"did you mean {ENV_PREFIX}{close[0]}?" if close else "see the settings reference"
        raise ConfigurationError(f"{name} is not a setting; {hint}")


@functools.cache
def dynamodb_regions() -> frozenset[str]:
    """Every region botocore knows DynamoDB in, over all partitions (aws, aws-cn, aws-us-gov...)."""
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("dynamodb", partition_name=partition)
    )


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # in sys.modules as None: blocked
        return False


_lock = threading.Lock()
_current: Settings | None = None
_generation = 0


def _build(settings: Settings | None, overrides: dict[str, object]) -> Settings:
    try:
        if settings is None:
            return Settings(**overrides)  # type: ignore[arg-type]
        if overrides:
            return Settings.model_validate({**settings.model_dump(), **overrides})
        return settings
    except ValidationError as err:
        first = err.errors()[0]
        if not first["loc"]:  # a check across fields: its message names the variable
            raise ConfigurationError(str(first.get("ctx", {}).get("error", first["msg"]))) from None
        field = str(first["loc"][0])
        value = first.get("input")
        if field in _SECRET_FIELDS:
            value = "**********"  # a secret (or a URL that may hold one) is never printed
        raise ConfigurationError(f"{ENV_PREFIX}{field.upper()}={value!s}: {first['msg']}") from None


def configure(settings: Settings | None = None, **overrides: object) -> Settings:
    """Apply one connection configuration to every model and repository.

    Calling it again reconfigures everything: the next request of any model or
    repository uses a new client built from the new settings, and the old
    client's connections are closed.

    Args:
        settings: a complete `Settings`; when omitted, built from the environment.
        **overrides: field values that take precedence, e.g. ``endpoint_url=...``.

    Returns:
        The settings now in force.

    Raises:
        ConfigurationError: a value is invalid; the message names the variable.

    Examples:
        >>> from portchops_models import configure
        >>> configure(endpoint_url="http://127.0.0.1:8000", table_prefix="test-").table_prefix
        'test-'
    """
    global _current, _generation
    built = _build(settings, dict(overrides))
    with _lock:
        _current = built
        _generation += 1
    return built


def current_settings() -> Settings:
    """The settings in force; built from the environment on first use."""
    global _current, _generation
    current = _current
    if current is None:
        with _lock:
            if _current is None:
                _current = _build(None, {})
                _generation += 1
            current = _current
    return current


def settings_generation() -> int:
    """A number that changes on every `configure()`; caches of clients compare it."""
    if _current is None:  # not built yet: building them is a generation
        current_settings()
    return _generation


def parse_encryption_keys(text: str) -> dict[str, bytes]:
    """``id=base64,id=base64`` as ``{id: key}``, in order (the first encrypts).

    Raises:
        ValueError: an entry without ``=``, an empty or repeated id, a key that is not
            base64 of exactly 32 bytes.
    """
    keys: dict[str, bytes] = {}
    for entry in text.split(","):
        key_id, sep, encoded = entry.strip().partition("=")
        key_id = key_id.strip()
        if not sep or not key_id or not key_id.replace("-", "").replace("_", "").isalnum():
            raise ValueError("entries are id=BASE64 (an id of letters, digits, - and _)")
        if key_id in keys:
            raise ValueError(f"key id {key_id!r} appears twice")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"key {key_id!r} is not base64") from None
        if len(key) != ENCRYPTION_KEY_BYTES:
            raise ValueError(
                f"key {key_id!r} is {len(key)} bytes; it must be {ENCRYPTION_KEY_BYTES}"
            )
        keys[key_id] = key
    return keys
