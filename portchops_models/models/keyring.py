"""The keys of client-side field encryption, from the settings.

Two sources, both through `dynamodb-encryption-sdk` (the ``[encryption]`` extra):

- **local keys** (``PORTCHOPS_ENCRYPTION_KEYS=k2=BASE64,k1=BASE64``): for development,
  tests and deployments that keep their own keys. Each entry is an id and 32 random
  bytes in base64; the first encrypts, every one decrypts, so rotating is putting a new
  key first (then `portchops_models.admin.encryption.reencrypt` rewrites old items).
  From each key a wrapping key (AES-256 key wrap of each item's own content key) and a
  signing key (HMAC-SHA256) are derived; each item records the id it was sealed with.
- **AWS KMS** (``PORTCHOPS_ENCRYPTION_KMS_KEY_ID=arn:aws:kms:...``): each item's content
  key is a KMS data key (``kms:GenerateDataKey`` to write, ``kms:Decrypt`` to read),
  through botocore's credential chain (against a local engine, at its endpoint);
  KMS rotates the key material, and a new key id decrypts old items as long as the
  role may still use the old key.

Equality lookups on an encrypted attribute go through a blind index, an HMAC of the
normalised value under ``PORTCHOPS_ENCRYPTION_LOOKUP_KEY``: it does not rotate with the
encryption keys (changing it means rewriting every blind index).

Example:
    >>> import base64, os
    >>> key = base64.b64encode(os.urandom(32)).decode()
    >>> ring = keyring_of(Settings(encryption_keys=f"k1={key}"))
    >>> ring.current
    'k1'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..settings import Settings, parse_encryption_keys

__all__ = ["KEY_ID", "Keyring", "keyring_of", "sdk"]

#: The material-description entry that names the local key an item was sealed with.
KEY_ID = "portchops-key"


def sdk() -> Any:
    """The `dynamodb_encryption_sdk` package, or a `ConfigurationError` naming the extra."""
    try:
        import dynamodb_encryption_sdk
    except ImportError:
        raise ConfigurationError(
            "encrypted attributes need dynamodb-encryption-sdk: "
            "pip install 'portchops-models[encryption]'"
        ) from None
    return dynamodb_encryption_sdk


@dataclass(frozen=True)
class Keyring:
    """The keys in force: the SDK's materials provider, the current key id (``"kms"``
    under KMS) and the blind-index key (None when no lookup key is set)."""

    provider: Any
    current: str
    lookup_key: bytes | None

    def lookup(self, domain: str, normalised: str) -> str:
        """The blind-index value of `normalised` in `domain` (``table/attribute``)."""
        if self.lookup_key is None:
            raise ConfigurationError(
                "a blind index needs PORTCHOPS_ENCRYPTION_LOOKUP_KEY (at least 16 characters, "
                "the same in every process)"
            )
        mac = hmac.new(self.lookup_key, domain.encode() + b"\0" + normalised.encode(), "sha256")
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


_LOCK = threading.Lock()
_RINGS: dict[int, tuple[Settings, Keyring]] = {}


def keyring_of(settings: Settings) -> Keyring:
    """The `Keyring` of `settings` (built once per settings object).

    Raises:
        ConfigurationError: neither local keys nor a KMS key is set, or the extra is missing.
    """
    found = _RINGS.get(id(settings))
    if found is not None and found[0] is settings:
        return found[1]
    with _LOCK:
        ring = _build(settings)
        _RINGS[id(settings)] = (settings, ring)  # the settings object is kept alive with it
        return ring


def _build(settings: Settings) -> Keyring:
    lookup = settings.encryption_lookup_key
    lookup_key = None if lookup is None else _derive(lookup.get_secret_value().encode(), b"lookup")
    if settings.encryption_kms_key_id:
        sdk()
        from dynamodb_encryption_sdk.material_providers.aws_kms import (
            AwsKmsCryptographicMaterialsProvider,
        )

        provider = AwsKmsCryptographicMaterialsProvider(
            key_id=settings.encryption_kms_key_id,
            regional_clients={settings.region: _kms_client(settings)},
        )
        return Keyring(provider, "kms", lookup_key)
    if settings.encryption_keys is None:
        raise ConfigurationError(
            "a model has encrypted attributes: set PORTCHOPS_ENCRYPTION_KEYS (local keys, "
            "id=BASE64 of 32 bytes) or PORTCHOPS_ENCRYPTION_KMS_KEY_ID"
        )
    keys = parse_encryption_keys(settings.encryption_keys.get_secret_value())
    return Keyring(_LocalProvider.of(keys), next(iter(keys)), lookup_key)


def _kms_client(settings: Settings) -> Any:
    """A botocore KMS client: the credential chain and region of the settings; against a
    local engine (``endpoint_url`` set) its endpoint too, as moto's server serves KMS."""
    import botocore.session

    session = botocore.session.get_session()
    if settings.endpoint_url is not None and session.get_credentials() is None:
        session.set_credentials("local", "local")
    return session.create_client(
        "kms", region_name=settings.region, endpoint_url=settings.endpoint_url
    )


def _derive(key: bytes, purpose: bytes) -> bytes:
    """A 32-byte key for one purpose (HKDF-SHA256, RFC 5869, one block)."""
    prk = hmac.new(b"portchops-models", key, hashlib.sha256).digest()
    return hmac.new(prk, purpose + b"\x01", hashlib.sha256).digest()


class _LocalProvider:
    """The SDK's materials provider over local keys: seals with the first, opens with the
    one an item names (`KEY_ID` in its material description)."""

    @staticmethod
    def of(keys: Mapping[str, bytes]) -> Any:
        sdk()
        from dynamodb_encryption_sdk.delegated_keys.jce import JceNameLocalDelegatedKey
        from dynamodb_encryption_sdk.exceptions import UnwrappingError
        from dynamodb_encryption_sdk.identifiers import EncryptionKeyType, KeyEncodingType
        from dynamodb_encryption_sdk.material_providers import CryptographicMaterialsProvider
        from dynamodb_encryption_sdk.materials.wrapped import WrappedCryptographicMaterials

        def delegated(key: bytes, algorithm: str) -> Any:
            return JceNameLocalDelegatedKey(
                key=key,
                algorithm=algorithm,
                key_type=EncryptionKeyType.SYMMETRIC,
                key_encoding=KeyEncodingType.RAW,
            )

        pairs = {
            key_id: (
                delegated(_derive(k, b"wrap"), "AES"),
                delegated(_derive(k, b"sign"), "HmacSHA256"),
            )
            for key_id, k in keys.items()
        }
        current = next(iter(keys))

        class Provider(CryptographicMaterialsProvider):  # type: ignore[misc]
            def _materials(self, key_id: str, description: Mapping[str, str]) -> Any:
                if key_id not in pairs:
                    raise UnwrappingError(
                        f"sealed with key {key_id!r}, which PORTCHOPS_ENCRYPTION_KEYS lacks"
                    )
                wrap, sign = pairs[key_id]
                return WrappedCryptographicMaterials(
                    signing_key=sign,
                    wrapping_key=wrap,
                    unwrapping_key=wrap,
                    material_description={**description, KEY_ID: key_id},
                )

            def encryption_materials(self, encryption_context: Any) -> Any:
                return self._materials(current, encryption_context.material_description)

            def decryption_materials(self, encryption_context: Any) -> Any:
                description = encryption_context.material_description
                return self._materials(str(description.get(KEY_ID, "")), description)

        return Provider()
