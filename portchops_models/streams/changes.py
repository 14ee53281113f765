"""Stream records as typed changes: `Change[M]` and `changes_from_event`.

A DynamoDB stream record (from a Lambda event, or from the Streams API's
``GetRecords``) says what happened to one item: ``INSERT``, ``MODIFY`` or
``REMOVE``, its key, and, depending on the stream's view, the item's images
before and after. `ChangeDecoder` turns records into `Change` objects with the
model's own generated decoder (`portchops_models.models.decoding.model_decoder`),
the key in the repository's key shape and TTL deletions flagged. Attributes the
model does not declare, the layer's exactly-once markers (``_pcw_*``) among them,
never reach the models.

Pure: no I/O, no settings; a record that is not a DynamoDB stream record of the
model is an `InvalidRequest` naming its position and what is wrong.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from ..errors import InvalidRequest
from ..models.base import BaseModel
from ..models.decoding import model_decoder
from ..models.entity import TYPE_ATTRIBUTE
from ..models.shape import RawItem, shape_of

__all__ = ["Change", "ChangeDecoder", "ChangeKind", "changes_from_event", "decoder_for"]

ModelT = TypeVar("ModelT", bound=BaseModel)

#: What happened to the item.
ChangeKind = Literal["insert", "modify", "remove"]

_KINDS: dict[str, ChangeKind] = {"INSERT": "insert", "MODIFY": "modify", "REMOVE": "remove"}
#: Who deletes an item whose TTL has passed (the record's ``userIdentity``).
_TTL_PRINCIPAL = "dynamodb.amazonaws.com"


@dataclass(frozen=True, slots=True)
class Change(Generic[ModelT]):
    """One change to one item, as its stream record told it.

    Attributes:
        kind: ``"insert"``, ``"modify"`` or ``"remove"``.
        key: the item's key in the repository's shape: the hash key, or a
            ``(hash, range)`` tuple.
        old: the item before the change (``None`` on an insert, or when the
            stream's view does not carry old images).
        new: the item after it (``None`` on a remove, or when the view does not
            carry new images).
        expired: the item was deleted by DynamoDB because its TTL had passed.
        sequence_number: the record's position in its shard (a decimal string;
            ordered within a shard, so within a key).
        created_at: when DynamoDB wrote the record (epoch seconds), if it says.
    """

    kind: ChangeKind
    key: Hashable
    old: ModelT | None
    new: ModelT | None
    expired: bool
    sequence_number: str
    created_at: float | None = None


class ChangeDecoder(Generic[ModelT]):
    """Decodes the stream records of one model's table into `Change` objects.

    Made once per model (`decoder_for`); `decode` is the hot path of a stream
    worker and of a Lambda handler.
    """

    def __init__(self, model: type[ModelT]) -> None:
        self.model = model
        self._shape = shape_of(model)
        self._decode: Callable[[RawItem], ModelT] = model_decoder(model)

    def decode(self, record: Mapping[str, Any], position: int = 0) -> Change[ModelT]:
        """One stream record as a `Change` (`position` names it in errors)."""
        if not isinstance(record, Mapping):
            raise self._bad(position, f"not a stream record: {record!r:.80}")
        name = record.get("eventName")
        kind = _KINDS.get(name) if isinstance(name, str) else None
        body = record.get("dynamodb")
        if kind is None or not isinstance(body, Mapping):
            raise self._bad(position, "not a DynamoDB stream record (eventName, dynamodb)")
        try:
            key = self._shape.key_of(body["Keys"])
            old = self._image(body.get("OldImage"))
            new = self._image(body.get("NewImage"))
        except InvalidRequest:
            raise
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as err:
            raise self._bad(
                position, f"does not decode as a {self.model.__name__}: {err!r}"
            ) from err
        sequence = body.get("SequenceNumber")
        if not isinstance(sequence, str):
            raise self._bad(position, "has no SequenceNumber")
        identity = record.get("userIdentity")
        expired = (
            kind == "remove"
            and isinstance(identity, Mapping)
            and identity.get("type") == "Service"
            and identity.get("principalId") == _TTL_PRINCIPAL
        )
        return Change(
            kind, key, old, new, expired, sequence, _epoch(body.get("ApproximateCreationDateTime"))
        )

    def decode_all(self, records: Iterable[Mapping[str, Any]]) -> list[Change[ModelT]]:
        """Every record, in order; for an entity, every record of its own type (the
        others share its table and are left out, never decoded as it)."""
        decode = self.decode
        if self._shape.entity is None:
            return [decode(record, n) for n, record in enumerate(records)]
        mine = self._mine
        return [decode(record, n) for n, record in enumerate(records) if mine(record)]

    def _mine(self, record: Mapping[str, Any]) -> bool:
        """Whether a record of an entity table is of this entity: by the type its image
        holds, else (a KEYS_ONLY stream) by whether its keys parse as this entity's."""
        body = record.get("dynamodb") if isinstance(record, Mapping) else None
        if not isinstance(body, Mapping):
            return True  # decode names what is wrong with it
        keys = self._shape.entity
        assert keys is not None
        for image in (body.get("NewImage"), body.get("OldImage")):
            if isinstance(image, Mapping) and TYPE_ATTRIBUTE in image:
                return bool(image[TYPE_ATTRIBUTE] == {"S": keys.name})
        try:
            self._shape.key_of(body["Keys"])
        except (InvalidRequest, KeyError, TypeError):
            return False
        return True

    def _image(self, image: object) -> ModelT | None:
        if image is None:
            return None
        if not isinstance(image, Mapping):
            raise TypeError(f"an image must be a map of attributes, got {image!r:.80}")
        return self._decode(image)  # type: ignore[arg-type]

    def _bad(self, position: int, what: str) -> InvalidRequest:
        return InvalidRequest(f"{self.model.__name__} stream record {position} {what}")


_DECODERS: dict[type[BaseModel], ChangeDecoder[Any]] = {}


def decoder_for(model: type[ModelT]) -> ChangeDecoder[ModelT]:
    """The `ChangeDecoder` of `model` (made on first use, then shared)."""
    found = _DECODERS.get(model)
    if found is None:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise InvalidRequest(f"changes are decoded for a BaseModel subclass, got {model!r}")
        found = _DECODERS[model] = ChangeDecoder(model)
    return found


def changes_from_event(event: Mapping[str, Any], model: type[ModelT]) -> list[Change[ModelT]]:
    """The changes of an AWS Lambda DynamoDB event (``{"Records": [...]}``), typed.

    Example (a Lambda handler keeping a read model)::

        def handler(event, context):
            for change in changes_from_event(event, Note):
                if change.kind == "remove":
                    search.delete(change.key)
                else:
                    search.index(change.key, change.new)

    Raises:
        InvalidRequest: the event has no ``Records`` list, or a record is not a
            stream record of `model`'s table (the record's position is named).
    """
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise InvalidRequest(f"a DynamoDB stream event is {{'Records': [...]}}, got {event!r:.80}")
    return decoder_for(model).decode_all(records)


def _epoch(value: object) -> float | None:
    """``ApproximateCreationDateTime``: epoch seconds in the raw JSON, a datetime from botocore."""
    if isinstance(value, _dt.datetime):
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
