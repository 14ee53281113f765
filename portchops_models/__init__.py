"""portchops_models: typed DynamoDB models and repositories for the port-chops app.

The public surface, re-exported here::

    from portchops_models import (
        Settings, configure,                          # one configuration for everything
        BaseModel, ExpiryAttribute, UpdatedAtAttribute,  # declare your own models
        User, UserProgress,                           # the built-in models
        Repository,                                   # the typed API for any model
        UserRepository, UserProgressRepository,       # typed repositories
        Page, Projection,                             # pages with cursors, typed partial reads
        CachePolicy, RetryPolicy, Metrics,            # policies at the repository boundary
        Transaction, read_transaction,                # writes and reads across tables, atomically
        PortChopsError, ItemNotFound, ...             # the exception tree
    )
"""

from . import _moved
from . import model_writes as _model_writes  # noqa: F401  (the models' own writes)
from .cache import CachePolicy, cached
from .errors import (
    CallTimeout,
    ConditionFailed,
    ConfigurationError,
    EndpointUnreachable,
    IdempotentParameterMismatch,
    InvalidRequest,
    ItemNotFound,
    NoCredentials,
    PortChopsError,
    ServiceError,
    TableNotFound,
    ThrottledError,
    TransactionCanceled,
    TransactionInProgress,
)
from .models import BaseModel, ExpiryAttribute, UpdatedAtAttribute, User, UserProgress
from .models.projections import Projection, ProjectionType
from .observe.metrics import Metrics
from .repositories import ProgressKey, UserProgressRepository, UserRepository
from .repository import Page, Repository
from .settings import Settings, configure
from .transactions import Transaction, read_transaction
from .transport.retry import RetryPolicy, retrying

__version__ = "0.1.0"

_moved.install()  # the paths of modules that moved into the layer folders keep working

__all__ = [
    "BaseModel",
    "CachePolicy",
    "CallTimeout",
    "ConditionFailed",
    "ConfigurationError",
    "EndpointUnreachable",
    "ExpiryAttribute",
    "IdempotentParameterMismatch",
    "InvalidRequest",
    "ItemNotFound",
    "Metrics",
    "NoCredentials",
    "Page",
    "PortChopsError",
    "ProgressKey",
    "Projection",
    "ProjectionType",
    "Repository",
    "RetryPolicy",
    "ServiceError",
    "Settings",
    "TableNotFound",
    "ThrottledError",
    "Transaction",
    "TransactionCanceled",
    "TransactionInProgress",
    "UpdatedAtAttribute",
    "User",
    "UserProgress",
    "UserProgressRepository",
    "UserRepository",
    "__version__",
    "cached",
    "configure",
    "read_transaction",
    "retrying",
]
