"""`BaseModel`: the PynamoDB model base bound to the shared connection.

Our configuration lives in `Settings`, not in hand-written ``Meta`` classes: a
concrete model names its table with ``base_table_name`` and the base fills in
the prefixed table name, region and endpoint from the settings in force each
time the settings change, and lends the model the one shared botocore client.
The models' own methods (``User.get``, ``user.save()``) go through the
connection's retry policy too: PynamoDB sees the shared client through
`_RetryingClient`, whose API calls are retried on throttling, 5xx and dropped
connections, and which raises `ThrottledError` when the policy gives up.
Writes through those methods (``save``, ``update``, ``delete``, ``batch_write``)
are the repository's writes (`ModelWrites`): the same checks before the wire,
exactly-once markers, ``call_timeout``, typed errors, and eviction from every
cache of the process (and beyond it with the invalidation bus).

Two of PynamoDB's methods would send DescribeTable, a control-plane call that the
runtime IAM policy (`portchops_models.admin.iam`, data plane only) does not grant:
``Model.exists()`` asks with a one-key GetItem instead, and ``Model.count()``
needs a hash key (a table-wide count would be DescribeTable's ``ItemCount``,
stale by hours, or a full scan).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, TypeVar

from pynamodb.connection import TableConnection
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import BatchWrite, Model

from ..errors import ConfigurationError, InvalidRequest, TableNotFound
from ..transport.connection import Connection, current_connection
from .values import guard
from .versions import upcast_raw

_M = TypeVar("_M", bound="BaseModel")
#: The key `BaseModel.exists` reads, by key type: any value does, no item needs to be there.
_PROBE: dict[str, object] = {"S": "portchops:exists-probe", "N": "0", "B": b"\x00"}

__all__ = ["BaseModel"]


class BaseModel(Model):
    """Base of every portchops model: one shared, configured connection.

    Subclasses set ``base_table_name`` (the table name without the prefix)::

        class User(BaseModel):
            base_table_name = "users"
            user_id = UnicodeAttribute(hash_key=True, attr_name="userId")
    """

    base_table_name: ClassVar[str] = ""
    #: Python names of the attributes encrypted client-side (`portchops_models.models.encryption`).
    encrypted: ClassVar[tuple[str, ...]] = ()
    #: The shape version of the model's items (`portchops_models.models.versions`):
    #: ``None`` stamps nothing; an int is stamped on every write and older items are
    #: read through the model's upcasters.
    schema_version: ClassVar[int | None] = None
    _bound_generation: ClassVar[int] = -1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Each concrete model gets a Meta of its own, so binding one model's
        # table name never leaks into another through an inherited Meta.
        if "Meta" not in cls.__dict__:
            cls.Meta = type("Meta", (), {})  # type: ignore[assignment]
        cls._bound_generation = -1
        guard(cls)  # every value its attributes serialise is checked (`values`)

    @classmethod
    def from_raw_data(cls: type[_M], data: dict[str, Any]) -> _M:
        """PynamoDB's decoding (the models' own ``get``, ``query``, ``scan``), after the
        model's upcasters (`portchops_models.models.versions`): older items read as the
        current shape."""
        return super().from_raw_data(upcast_raw(cls, data))

    @classmethod
    def table_name(cls) -> str:
        """The full DynamoDB table name under the settings in force."""
        return current_connection().settings.table_name(cls.base_table_name)

    @classmethod
    def exists(cls) -> bool:
        """True if the model's table exists.

        Asked with a GetItem of a probe key (at most half a read capacity unit),
        an action the runtime IAM policy grants, instead of PynamoDB's
        DescribeTable, which it does not. Under a ``--leading-keys`` policy the
        probe key is not the caller's, so the answer is an access error.

        Raises:
            PortChopsError: any other failure (no credentials, throttling...).
        """
        attributes = cls.get_attributes()
        keys = [attributes[n] for n in (cls._hash_keyname, cls._range_keyname) if n is not None]
        params = {
            "TableName": cls.table_name(),
            "Key": {a.attr_name: {a.attr_type: _PROBE[a.attr_type]} for a in keys},
            "ProjectionExpression": "#k",
            "ExpressionAttributeNames": {"#k": keys[0].attr_name},
        }
        try:
            current_connection().send("GetItem", params, table=cls.table_name())
        except TableNotFound:
            return False
        return True

    @classmethod
    def count(
        cls,
        hash_key: Any = None,
        range_key_condition: Condition | None = None,
        filter_condition: Condition | None = None,
        consistent_read: bool = False,
        index_name: str | None = None,
        limit: int | None = None,
        rate_limit: float | None = None,
    ) -> int:
        """How many items one partition holds (a Query with ``Select=COUNT``), as in PynamoDB.

        Raises:
            InvalidRequest: no `hash_key`. PynamoDB would answer with DescribeTable's
                ``ItemCount`` (refreshed about every six hours, and a control-plane
                call the runtime IAM policy does not grant); count a partition, or
                scan explicitly (``Repository.scan``) if a whole-table count is meant.
        """
        if hash_key is None:
            raise InvalidRequest(
                f"{cls.__name__}.count() needs a hash key: a table-wide count would be "
                "DescribeTable's ItemCount (hours stale, not in the runtime IAM policy); "
                "count one partition, or scan explicitly"
            )
        return super().count(
            hash_key,
            range_key_condition,
            filter_condition,
            consistent_read=consistent_read,
            index_name=index_name,
            limit=limit,
            rate_limit=rate_limit,
        )

    @classmethod
    def _get_connection(cls) -> TableConnection:
        conn = current_connection()
        if cls._bound_generation != conn.generation:
            settings = conn.settings
            meta = cls.Meta
            meta.table_name = settings.table_name(cls.base_table_name)
            meta.region = settings.region
            meta.host = settings.endpoint_url
            meta.connect_timeout_seconds = int(settings.connect_timeout)
            meta.read_timeout_seconds = int(settings.read_timeout)
            meta.max_retry_attempts = 0
            meta.max_pool_connections = settings.max_pool_connections
            meta.extra_headers = {}
            meta.aws_access_key_id = None
            meta.aws_secret_access_key = None
            meta.aws_session_token = None
            meta.billing_mode = "PAY_PER_REQUEST"
            cls._connection = None
            cls._bound_generation = conn.generation
        table = super()._get_connection()
        # Lend PynamoDB the shared client instead of letting it build a pool of its own.
        client = table.connection._client
        if not isinstance(client, _RetryingClient) or client.connection is not conn:
            table.connection._client = _RetryingClient(conn)  # type: ignore[assignment]
        return table

    # The model's own writes are the repository's: the same checks before the wire,
    # exactly-once markers, call_timeout, typed errors and cache eviction.

    def save(
        self, condition: Condition | None = None, *, add_version_condition: bool = True
    ) -> dict[str, Any]:
        """Save the whole item, as `Repository.save` does (PynamoDB's signature).

        Values are checked before the wire, the version is checked (unless
        ``add_version_condition=False``) and bumped, stamps and a sliding TTL are set,
        a retry after a lost answer does not report its own write as a conflict, and
        every cache of the process (and beyond, with the bus) drops the key.

        Raises:
            ConditionFailed: the condition or the version check failed.
            InvalidRequest: a bad value, naming the attribute; nothing is sent.
        """
        writes().save(self, condition, version_check=add_version_condition)
        return {}

    def update(
        self,
        actions: list[Action],
        condition: Condition | None = None,
        *,
        add_version_condition: bool = True,
    ) -> dict[str, Any]:
        """Apply update actions in one UpdateItem, as `Repository.update` does, and
        refresh this object from the item as stored afterwards.

        Counters count once under lost answers; each action is checked against the
        model before the wire. With a version attribute the update applies only to
        the version this object holds (unless ``add_version_condition=False``).

        Returns:
            ``{"Attributes": ...}``: the item as stored (PynamoDB's answer shape).
        """
        stored = writes().update(self, actions, condition, version_check=add_version_condition)
        self.deserialize(stored)
        return {"Attributes": stored}

    def delete(
        self, condition: Condition | None = None, *, add_version_condition: bool = True
    ) -> dict[str, Any]:
        """Delete the item, as `Repository.delete` does (version checked unless
        ``add_version_condition=False``)."""
        writes().delete(self, condition, version_check=add_version_condition)
        return {}

    @classmethod
    def batch_write(cls: type[_M], auto_commit: bool = True) -> BatchWrite[_M]:
        """A batch writer with PynamoDB's interface whose commit is `Repository.batch_save`
        and `batch_delete`: every item checked before the first request, 25 a request,
        unprocessed items resubmitted. Items queue until the block ends (or `commit()`),
        whatever their number."""
        return _RepositoryBatchWrite(cls, auto_commit=auto_commit)


class ModelWrites(Protocol):
    """What the models' own write methods call: the repository's writes (registered by
    `portchops_models.repository`, which sits above the models)."""

    def save(self, item: BaseModel, condition: Condition | None, *, version_check: bool) -> None:
        """`Repository.save` of `item`."""

    def update(
        self,
        item: BaseModel,
        actions: Sequence[Action],
        condition: Condition | None,
        *,
        version_check: bool,
    ) -> dict[str, Any]:
        """`Repository.update` of `item`'s key; the raw item as stored, without markers."""

    def delete(self, item: BaseModel, condition: Condition | None, *, version_check: bool) -> None:
        """`Repository.delete` of `item`."""

    def batch(
        self, model: type[BaseModel], puts: Sequence[BaseModel], deletes: Sequence[BaseModel]
    ) -> None:
        """`Repository.batch_save` of `puts`, then `batch_delete` of `deletes`' keys."""


_writes: ModelWrites | None = None


def use_writes(implementation: ModelWrites) -> None:
    """Install the implementation of the models' own writes (done once, at import)."""
    global _writes
    _writes = implementation


def writes() -> ModelWrites:
    """The models' own writes (`use_writes`)."""
    if _writes is None:  # pragma: no cover - portchops_models/__init__ installs it
        raise ConfigurationError("import portchops_models before writing through a model")
    return _writes


class _RepositoryBatchWrite(BatchWrite[_M]):
    """PynamoDB's `BatchWrite` interface over the repository's batch writes."""

    def save(self, put_item: _M) -> None:
        self.pending_operations.append({"action": "put", "item": put_item})

    def delete(self, del_item: _M) -> None:
        self.pending_operations.append({"action": "delete", "item": del_item})

    def commit(self) -> None:
        pending, self.pending_operations = self.pending_operations, []
        puts = [op["item"] for op in pending if op["action"] == "put"]
        deletes = [op["item"] for op in pending if op["action"] == "delete"]
        if puts or deletes:
            writes().batch(self.model, puts, deletes)


class _RetryingClient:
    """The shared botocore client as PynamoDB sees it: API calls go through the retry policy."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._client = connection.client

    def _make_api_call(self, operation: str, params: dict[str, Any]) -> Any:
        from ..transport import (
            deadline,  # here: this method is all the deadline work of this module
        )

        call = self.connection.call
        # Each API call of the models' own methods is bounded by call_timeout as a whole.
        with deadline.bounded(self.connection.settings.call_timeout):
            return self.connection.retry.call(lambda: call(operation, params))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
