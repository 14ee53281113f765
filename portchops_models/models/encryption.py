"""Client-side field encryption: what a model declares, and sealing and opening its items.

A model names the attributes to encrypt in ``encrypted`` and may declare a `BlindIndex`
of one, to look it up by equality through an index::

    class Member(BaseModel):
        base_table_name = "members"
        encrypted = ("email", "name")            # python names

        member_id = UnicodeAttribute(hash_key=True, attr_name="memberId")
        email = UnicodeAttribute()
        name = UnicodeAttribute()
        email_lookup = BlindIndex("email", attr_name="emailLookup")
        by_email = MemberByEmail()               # a GSI whose hash key is email_lookup

    members.query("Ada@Example.com", index=Member.by_email)   # the HMAC is computed here

Every write path seals the item after its checks (`FieldEncryption.seal`: each
encrypted attribute becomes binary ciphertext under a fresh content key, the keys,
the encrypted attributes and the blind indexes are signed, through
`dynamodb-encryption-sdk`); every read path opens it in the decoder
(`FieldEncryption.open`), so a model never holds ciphertext and the wire, the table,
its backups and its stream records never hold plaintext. Attributes that are not
signed (counters, timestamps, the version) stay updatable in place: an UpdateItem
cannot re-sign, so an update, a condition, a filter or a projection that names an
encrypted or signed attribute is refused with `InvalidRequest` before the wire, and a
whole-item `save` is the way to change one. An item whose ciphertext or signature was
altered, or sealed with a key the settings lack, raises `DecryptionFailed`.

The blind index is an HMAC-SHA256 of the normalised value (by default
``str.casefold`` after trimming) under the lookup key, one per table and attribute: it
reveals which items share a value, nothing more; range conditions on it mean nothing
and are refused (it may only be an index's hash key).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pynamodb.attributes import Attribute, UnicodeAttribute

from ..errors import ConfigurationError, InvalidRequest, PortChopsError
from ..settings import current_settings
from .keyring import keyring_of, sdk

__all__ = [
    "DESCRIPTION_ATTRIBUTE",
    "SIGNATURE_ATTRIBUTE",
    "BlindIndex",
    "DecryptionFailed",
    "FieldEncryption",
    "encryption_of",
    "normalise",
]

#: Where the SDK keeps an item's signature and its material description.
SIGNATURE_ATTRIBUTE = "*amzn-ddb-map-sig*"
DESCRIPTION_ATTRIBUTE = "*amzn-ddb-map-desc*"
RawItem = dict[str, dict[str, Any]]


class DecryptionFailed(PortChopsError):
    """A stored item of an encrypted model does not open: its ciphertext or signature
    was altered, it was sealed for another table or key, or its key is not configured."""


def normalise(value: str) -> str:
    """The default blind-index normalisation: trimmed and case-folded."""
    return value.strip().casefold()


class BlindIndex(UnicodeAttribute):
    """An HMAC of another (encrypted) attribute's normalised value, set on every write.

    Never set it yourself; index it (as the hash key of a global index) to find items by
    the value: a query of that index hashes the value it is given the same way.

    Args:
        source: the python name of the attribute it indexes (one of ``encrypted``).
        normalize: how values are made comparable first (default `normalise`).
    """

    def __init__(
        self,
        source: str,
        *,
        normalize: Callable[[str], str] = normalise,
        attr_name: str | None = None,
    ) -> None:
        super().__init__(null=True, attr_name=attr_name)
        self.source = source
        self.normalize = normalize


class FieldEncryption:
    """One model's encrypted attributes and blind indexes; seals and opens its items.

    Built once per model by `portchops_models.models.shape.shape_of` (``shape.encryption``);
    None for a model without ``encrypted``.
    """

    def __init__(self, model: type[Any]) -> None:
        declared: tuple[str, ...] = tuple(getattr(model, "encrypted", ()))
        attributes: Mapping[str, Attribute[Any]] = model.get_attributes()
        name = model.__name__
        for python in declared:
            if python not in attributes:
                raise ConfigurationError(f"{name}.encrypted names {python!r}, not an attribute")
            if isinstance(attributes[python], BlindIndex):
                raise ConfigurationError(f"{name}.{python} is a blind index: it is signed already")
        self.model_name = name
        self.domain = str(model.base_table_name)
        #: DynamoDB names of the encrypted attributes.
        self.encrypted = frozenset(attributes[p].attr_name for p in declared)
        self.python = {attributes[p].attr_name: p for p in declared}
        #: DynamoDB name of each blind index -> (DynamoDB name of its source, normaliser).
        self.blind: dict[str, tuple[str, Callable[[str], str]]] = {}
        for python, attr in attributes.items():
            if isinstance(attr, BlindIndex):
                if attr.source not in declared:
                    raise ConfigurationError(
                        f"{name}.{python}: a blind index of {attr.source!r}, which is not in "
                        f"{name}.encrypted"
                    )
                self.blind[attr.attr_name] = (attributes[attr.source].attr_name, attr.normalize)
                self.python[attr.attr_name] = python
        untyped: Any = model
        keys = [untyped._hash_key_attribute(), untyped._range_key_attribute()]
        self.key_names = tuple(a.attr_name for a in keys if a is not None)
        #: Everything the signature covers (an update may not touch any of it).
        self.signed = self.encrypted | set(self.blind) | set(self.key_names)
        self._check_indexes(untyped)
        self._actions: Any = None

    def _check_indexes(self, model: Any) -> None:
        for index_name, index in model._indexes.items():
            for attr in index.Meta.attributes.values():
                name = attr.attr_name
                if name in self.encrypted:
                    raise ConfigurationError(
                        f"{self.model_name} index {index_name}: {self.python[name]} is encrypted "
                        "and cannot be an index key; index a BlindIndex of it"
                    )
                if name in self.blind and attr.is_range_key:
                    raise ConfigurationError(
                        f"{self.model_name} index {index_name}: the blind index "
                        f"{self.python[name]} can only be a hash key (it has no order)"
                    )
        for name in self.key_names:
            if name in self.encrypted:
                raise ConfigurationError(
                    f"{self.model_name}: the key {self.python[name]} cannot be encrypted"
                )

    # ------------------------------------------------------------------ the SDK's config

    def _config(self) -> Any:
        sdk()
        from dynamodb_encryption_sdk.encrypted import CryptoConfig
        from dynamodb_encryption_sdk.identifiers import CryptoAction
        from dynamodb_encryption_sdk.structures import AttributeActions, EncryptionContext

        if self._actions is None:
            actions = {n: CryptoAction.ENCRYPT_AND_SIGN for n in self.encrypted}
            actions.update({n: CryptoAction.SIGN_ONLY for n in (*self.blind, *self.key_names)})
            self._actions = AttributeActions(
                default_action=CryptoAction.DO_NOTHING, attribute_actions=actions
            )
        context = EncryptionContext(
            table_name=self.domain,  # the base name: a restore under another prefix opens
            partition_key_name=self.key_names[0],
            sort_key_name=self.key_names[1] if len(self.key_names) > 1 else None,
        )
        ring = keyring_of(current_settings())
        return CryptoConfig(
            materials_provider=ring.provider,
            encryption_context=context,
            attribute_actions=self._actions,
        )

    # ------------------------------------------------------------------ items

    def lookup(self, name: str, value: object) -> str:
        """The stored value of blind index `name` (DynamoDB name) for a source value."""
        source, normalize = self.blind[name]
        if not isinstance(value, str):
            raise InvalidRequest(
                f"{self.model_name}.{self.python[name]} looks up a str, got {type(value).__name__}"
            )
        ring = keyring_of(current_settings())
        return ring.lookup(f"{self.domain}/{source}", normalize(value))

    def seal(self, raw: RawItem) -> RawItem:
        """`raw` (checked plaintext) with its blind indexes set, encrypted and signed."""
        from dynamodb_encryption_sdk.encrypted.item import encrypt_dynamodb_item

        for name, (source, _) in self.blind.items():
            value = raw.get(source)
            if value is not None and "S" in value:
                raw[name] = {"S": self.lookup(name, value["S"])}
            else:
                raw.pop(name, None)  # sparse: no value, not in the index
        try:
            sealed: RawItem = encrypt_dynamodb_item(raw, self._config())
        except PortChopsError:
            raise
        except Exception as err:
            raise InvalidRequest(f"{self.model_name}: cannot encrypt: {err}") from err
        return sealed

    def open(self, raw: Mapping[str, Mapping[str, Any]]) -> RawItem:
        """The plaintext of a stored item (a copy; `raw` is left as it was)."""
        from dynamodb_encryption_sdk.encrypted.item import decrypt_dynamodb_item

        item = {name: _binary(value) for name, value in raw.items()}
        if SIGNATURE_ATTRIBUTE not in item or DESCRIPTION_ATTRIBUTE not in item:
            raise DecryptionFailed(
                f"{self.model_name} item {self._key(raw)} has no signature: it was not "
                "written through an encrypted model, or it was altered"
            )
        try:
            opened: RawItem = decrypt_dynamodb_item(item, self._config())
        except PortChopsError:
            raise
        except Exception as err:
            raise DecryptionFailed(
                f"{self.model_name} item {self._key(raw)} does not open: "
                f"{type(err).__name__}: {err}"
            ) from err
        return opened

    def key_id(self, raw: Mapping[str, Mapping[str, Any]]) -> str | None:
        """The id of the key a stored item was sealed with (``"kms"`` under KMS), or None
        when it holds no readable material description."""
        from dynamodb_encryption_sdk.internal.formatting.material_description import (
            deserialize,
        )

        from .keyring import KEY_ID

        value = raw.get(DESCRIPTION_ATTRIBUTE)
        if value is None:
            return None
        try:
            description = deserialize(_binary(value))
        except Exception:
            return None
        found = description.get(KEY_ID)
        return str(found) if found is not None else "kms"

    def holds_encrypted(self, raw: Mapping[str, object]) -> bool:
        """Whether a (partial) item holds any encrypted attribute or the signature."""
        return SIGNATURE_ATTRIBUTE in raw or not self.encrypted.isdisjoint(raw)

    def _key(self, raw: Mapping[str, Mapping[str, Any]]) -> str:
        return ", ".join(f"{n}={next(iter(raw[n].values()))!r}" for n in self.key_names if n in raw)

    # ------------------------------------------------------------------ refusals

    def refuse_names(self, names: Iterable[str], what: str) -> None:
        """`InvalidRequest` if an expression (`what`) names an encrypted attribute."""
        for name in names:
            if name in self.encrypted:
                raise InvalidRequest(
                    f"{self.model_name}.{self.python[name]} is encrypted: {what} cannot name it "
                    "(DynamoDB holds only its ciphertext); look it up through its blind index, "
                    "or read the whole item"
                )

    def refuse_update(self, names: Iterable[str]) -> None:
        """`InvalidRequest` if an update touches a signed attribute (it cannot re-sign)."""
        for name in names:
            if name in self.signed and name not in self.key_names:
                raise InvalidRequest(
                    f"{self.model_name}.{self.python[name]} is encrypted or signed: an update "
                    "cannot re-sign the item; save() the whole item instead"
                )


_BY_MODEL: dict[type[Any], FieldEncryption | None] = {}


def encryption_of(model: type[Any]) -> FieldEncryption | None:
    """The `FieldEncryption` of a model (made once), None when it encrypts nothing.

    Raises:
        ConfigurationError: its declaration is wrong (an unknown attribute, an encrypted
            key or index key, a blind index of an attribute that is not encrypted).
    """
    if model not in _BY_MODEL:
        _BY_MODEL[model] = FieldEncryption(model) if getattr(model, "encrypted", ()) else None
    return _BY_MODEL[model]


def _binary(value: Mapping[str, Any]) -> dict[str, Any]:
    """A value with its binaries as bytes (Lambda events carry them as base64 text)."""
    if "B" in value and isinstance(value["B"], str):
        return {"B": base64.b64decode(value["B"])}
    return dict(value)
