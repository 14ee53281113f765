"""Schema versions: what shape a model's items have, and how older items are read.

A model declares the version of its items' shape, and registers one upcaster per
older version (``n -> n + 1``), each a plain function from the raw DynamoDB item of
version ``n`` to the raw item of version ``n + 1``::

    class Person(BaseModel):
        base_table_name = "people"
        schema_version = 2
        ...

    @upcaster(Person, 1)
    def split_name(item: RawItem) -> RawItem:
        ...

Every write stamps the model's version in the reserved attribute ``_pcv`` (`STAMP`),
which never reaches a model; an item without it is version 1. The decoders
(`portchops_models.models.decoding`) run the chain from the item's version to the
current one before decoding, so readers only ever see the current shape.

An upcaster gets a copy of the item it may change freely. It must leave alone what is
not there: it also runs on partial items (read through an index that projects only
some attributes). Declarations are checked early: an upcaster for a model without
``schema_version``, for a version at or above the current one, or registered twice is
`ConfigurationError` at the decorator; a gap in the chain is `ConfigurationError` the
first time the model is used (`versions_of`, called by `shape_of` and the decoders),
after which no upcaster may be registered for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pynamodb.models import Model

from ..errors import ConfigurationError, InvalidRequest

__all__ = ["STAMP", "SchemaVersions", "Upcaster", "upcaster", "versions_of"]

#: The reserved attribute every write of a versioned model stamps with its version.
STAMP = "_pcv"

RawItem = dict[str, dict[str, Any]]
#: An upcaster: the raw item of version ``n`` in, the raw item of version ``n + 1`` out.
Upcaster = Callable[[RawItem], RawItem]

_lock = threading.Lock()
_registered: dict[type[Model], dict[int, Upcaster]] = {}
_resolved: dict[type[Model], SchemaVersions | None] = {}


def declared_version(model: type[Model]) -> int | None:
    """The model's ``schema_version``, checked; ``None`` when it declares none."""
    version = getattr(model, "schema_version", None)
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigurationError(
            f"{model.__name__}.schema_version must be an int >= 1, got {version!r}"
        )
    return version


def upcaster(model: type[Model], version: int) -> Callable[[Upcaster], Upcaster]:
    """Register the decorated function as `model`'s upcaster from `version` to ``version + 1``.

    Raises:
        ConfigurationError: the model declares no ``schema_version``; `version` is not
            an int from 1 to ``schema_version - 1``; `version` already has an upcaster;
            or the model is in use already (its chain was checked and fixed).
    """
    current = declared_version(model)
    name = getattr(model, "__name__", repr(model))
    if current is None:
        raise ConfigurationError(f"{name} declares no schema_version: it has no upcasters")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < current:
        raise ConfigurationError(
            f"upcaster {version!r} of {name}: an upcaster goes from a version 1 to "
            f"{current - 1} to the next (schema_version is {current})"
        )

    def register(function: Upcaster) -> Upcaster:
        with _lock:
            if model in _resolved:
                raise ConfigurationError(
                    f"upcaster {version} of {name} registered after the model was first used: "
                    "register upcasters next to the model, at import"
                )
            steps = _registered.setdefault(model, {})
            if version in steps:
                raise ConfigurationError(f"{name} has an upcaster from version {version} already")
            steps[version] = function
        return function

    return register


@dataclass(frozen=True, slots=True)
class SchemaVersions:
    """A model's schema version and its upcasters (`versions_of`).

    Attributes:
        model_name: the model's class name (for messages).
        current: the version every write stamps.
        steps: ``steps[n - 1]`` upcasts version ``n`` to ``n + 1``.
    """

    model_name: str
    current: int
    steps: tuple[Upcaster, ...]

    @property
    def upcasts(self) -> bool:
        """Whether older items are upcast on reads (the model is past version 1)."""
        return self.current > 1

    def version_of(self, item: Mapping[str, Mapping[str, Any]]) -> int:
        """The version an item was written at: its stamp, 1 when it has none.

        Raises:
            InvalidRequest: the stamp is not a positive integer number.
        """
        stamp = item.get(STAMP)
        if stamp is None:
            return 1
        text = stamp.get("N") if isinstance(stamp, Mapping) else None
        if not (isinstance(text, str) and text.isascii() and text.isdigit() and int(text) >= 1):
            raise InvalidRequest(
                f"{self.model_name}: {STAMP} must be a positive int, got {stamp!r}"
            )
        return int(text)

    def older(self, item: Mapping[str, Mapping[str, Any]]) -> bool:
        """Whether the item is in an older shape than the current one."""
        return self.version_of(item) < self.current

    def upcast(self, item: RawItem) -> RawItem:
        """The item in the current shape (the item itself when it is current or newer).

        An item newer than the model (written by newer code during a deploy) is decoded
        as it is; writes never overwrite it (`portchops_models.ops.requests`).

        Raises:
            InvalidRequest: an upcaster raised or did not return a dict (naming it).
        """
        version = self.version_of(item)
        if version >= self.current:
            return item
        upcast = dict(item)
        for n in range(version, self.current):
            step = self.steps[n - 1]
            try:
                upcast = step(upcast)
            except Exception as err:
                raise InvalidRequest(
                    f"{self.model_name}: upcaster {n} -> {n + 1} ({_name(step)}) failed: "
                    f"{type(err).__name__}: {err}"
                ) from err
            if not isinstance(upcast, dict):
                raise InvalidRequest(
                    f"{self.model_name}: upcaster {n} -> {n + 1} ({_name(step)}) returned "
                    f"{type(upcast).__name__}, not the raw item"
                )
        upcast[STAMP] = self.stamp_value()
        return upcast

    def stamp_value(self) -> dict[str, str]:
        """The stamp's raw value: ``{"N": "<current>"}``."""
        return {"N": str(self.current)}


def versions_of(model: type[Model]) -> SchemaVersions | None:
    """The model's `SchemaVersions` (``None`` when it declares no ``schema_version``),
    checked and fixed the first time it is asked for.

    Raises:
        ConfigurationError: a version between 1 and the current one has no upcaster, or
            the model stores an attribute named ``_pcv`` itself.
    """
    if model in _resolved:  # the hot path (PynamoDB's own reads): no lock, never removed
        return _resolved[model]
    current = declared_version(model)
    found: SchemaVersions | None = None
    if current is not None:
        names = {attr.attr_name for attr in model.get_attributes().values()}
        if STAMP in names:
            raise ConfigurationError(f"{model.__name__}: {STAMP} is reserved for the schema stamp")
        with _lock:
            steps = dict(_registered.get(model, {}))
        missing = [n for n in range(1, current) if n not in steps]
        if missing:
            raise ConfigurationError(
                f"{model.__name__} is at schema_version {current} but has no upcaster from "
                f"version {', '.join(map(str, missing))} (register @upcaster({model.__name__}, n))"
            )
        found = SchemaVersions(model.__name__, current, tuple(steps[n] for n in range(1, current)))
    with _lock:
        return _resolved.setdefault(model, found)


def upcast_raw(model: type[Model], item: RawItem) -> RawItem:
    """`item` in `model`'s current shape (unchanged for a model without upcasters)."""
    versions = versions_of(model)
    if versions is None or not versions.upcasts:
        return item
    return versions.upcast(item)


def _name(function: object) -> str:
    return str(getattr(function, "__qualname__", function))
