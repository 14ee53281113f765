"""portchops_models: typed DynamoDB models and repositories for the port-chops app.

The public surface, re-exported here::

    from portchops_models import (
        Settings, configure,                          # one configuration for everything
        User, UserProgress,                           # PynamoDB models
        UserRepository, UserProgressRepository,       # typed repositories
        Page, Projection,                             # pages with cursors, typed partial reads
        CachePolicy, RetryPolicy, Metrics,            # policies at the repository boundary
        PortChopsError, ItemNotFound, ...             # the exception tree
    )
"""

from .cache import CachePolicy, cached
from .errors import (
    ConditionFailed,
    ConfigurationError,
    EndpointUnreachable,
    InvalidRequest,
    ItemNotFound,
    NoCredentials,
    PortChopsError,
    ServiceError,
    TableNotFound,
    ThrottledError,
)
from .metrics import Metrics
from .models import BaseModel, User, UserProgress
from .projections import Projection
from .repositories import ProgressKey, UserProgressRepository, UserRepository
from .repository import Page, Repository
from .retry import RetryPolicy, retrying
from .settings import Settings, configure

__version__ = "0.1.0"

__all__ = [
    "BaseModel",
    "CachePolicy",
    "ConditionFailed",
    "ConfigurationError",
    "EndpointUnreachable",
    "InvalidRequest",
    "ItemNotFound",
    "Metrics",
    "NoCredentials",
    "Page",
    "PortChopsError",
    "ProgressKey",
    "Projection",
    "Repository",
    "RetryPolicy",
    "ServiceError",
    "Settings",
    "TableNotFound",
    "ThrottledError",
    "User",
    "UserProgress",
    "UserProgressRepository",
    "UserRepository",
    "__version__",
    "cached",
    "configure",
    "retrying",
]
