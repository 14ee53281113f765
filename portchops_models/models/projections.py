"""`Projection[ModelT]`: typed partial reads.

A projection is a pydantic model whose field names are python attribute names
of a model. Reading through it sends a ProjectionExpression that names only
those attributes (always through ExpressionAttributeNames, so reserved words such
as ``name``, ``status`` or ``ttl`` work) and returns validated, frozen
projection objects instead of full models.

Examples:
    >>> from portchops_models import Projection, User
    >>> class UserSummary(Projection[User]):
    ...     user_id: str
    ...     email: str
    ...     name: str
    >>> UserSummary.attribute_names()
    ('userId', 'email', 'name')

A field the model lacks fails when the class is defined, with `InvalidRequest`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar, cast

from pydantic import BaseModel as PydanticModel
from pydantic import ConfigDict, ValidationError
from pynamodb.attributes import Attribute
from pynamodb.models import Model

from ..errors import InvalidRequest
from .versions import upcast_raw

__all__ = ["Projection", "ProjectionType"]

ModelT = TypeVar("ModelT", bound=Model)
M_co = TypeVar("M_co", covariant=True)
P_co = TypeVar("P_co", covariant=True)


class Projection(PydanticModel, Generic[ModelT]):
    """Base class of typed partial reads of ``ModelT``; see the module docstring."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    #: the model class this projection reads (set when the subclass is defined).
    __model__: ClassVar[type[Model] | None] = None
    #: python attribute name -> pynamodb attribute, for the projected fields.
    __attributes__: ClassVar[dict[str, Attribute[Any]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__pydantic_generic_metadata__.get("origin") is not None:
            return  # the parametrised alias itself, e.g. Projection[User]
        model = _model_of(cls)
        if model is None:
            return
        known = model.get_attributes()
        unknown = [name for name in cls.model_fields if name not in known]
        if unknown:
            raise InvalidRequest(
                f"{cls.__name__}: {model.__name__} has no attribute(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        if not cls.model_fields:
            raise InvalidRequest(f"{cls.__name__}: a projection needs at least one field")
        cls.__model__ = model
        cls.__attributes__ = {name: known[name] for name in cls.model_fields}

    @classmethod
    def projected_model(cls) -> type[ModelT]:
        """The model this projection reads, typed (what `ProjectionType` matches on)."""
        return cast(type[ModelT], cls.model_class())

    @classmethod
    def model_class(cls) -> type[Model]:
        """The model this projection reads."""
        if cls.__model__ is None:
            raise InvalidRequest(f"{cls.__name__} is not bound to a model; subclass Projection[M]")
        return cls.__model__

    @classmethod
    def attribute_names(cls) -> tuple[str, ...]:
        """The DynamoDB attribute names of the projected fields, in field order."""
        return tuple(attr.attr_name for attr in cls.__attributes__.values())

    @classmethod
    def from_raw(cls, item: Mapping[str, Mapping[str, object]]) -> Self:
        """Build a validated projection from a raw DynamoDB item (missing attributes -> absent)."""
        values: dict[str, Any] = {}
        if cls.__model__ is not None:  # an older item, read whole (`requests.projection_params`)
            item = upcast_raw(cls.__model__, cast(dict[str, dict[str, Any]], item))
        for name, attr in cls.__attributes__.items():
            raw = item.get(attr.attr_name)
            if raw is None or "NULL" in raw:
                continue
            values[name] = attr.deserialize(attr.get_value(cast(dict[str, Any], raw)))
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise InvalidRequest(
                f"{cls.__name__}: stored item does not fit the projection: {field}: {first['msg']}"
            ) from err


def _model_of(cls: type[Projection[Any]]) -> type[Model] | None:
    for klass in cls.__mro__:
        meta = getattr(klass, "__pydantic_generic_metadata__", None)
        if meta and meta.get("origin") is Projection and meta.get("args"):
            arg = meta["args"][0]
            if isinstance(arg, type) and issubclass(arg, Model):
                return arg
    return None


class ProjectionType(Protocol[M_co, P_co]):
    """A projection class of model ``M`` whose instances are ``P`` (for type checkers).

    ``type[UserSummary]`` is a ``ProjectionType[User, UserSummary]``: repositories take
    ``projection: ProjectionType[ModelT, P]`` and return ``P``, so a projection of
    another model does not type-check.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> P_co: ...  # pragma: no cover

    def projected_model(self) -> type[M_co]: ...  # pragma: no cover
