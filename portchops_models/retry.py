"""`RetryPolicy` and `retrying`: the retry policy (`portchops_models.transport.retry`).

This documented import path re-exports `portchops_models.transport.retry`.
"""

from .transport.retry import (
    RetryBudget,
    RetryPolicy,
    retrying,
)

__all__ = [
    "RetryBudget",
    "RetryPolicy",
    "retrying",
]
