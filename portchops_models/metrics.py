"""`Metrics`: counters, capacity and EMF (`portchops_models.observe.metrics`).

This documented import path re-exports `portchops_models.observe.metrics`.
"""

from .observe.metrics import (
    LATENCY_SAMPLES,
    Metrics,
    MetricsSnapshot,
    OperationStats,
    TableStats,
)

__all__ = [
    "LATENCY_SAMPLES",
    "Metrics",
    "MetricsSnapshot",
    "OperationStats",
    "TableStats",
]
