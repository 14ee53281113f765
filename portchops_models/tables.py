"""Tables from models: create, TTL, PITR, wait until active (`portchops_models.admin.tables`).

This documented import path re-exports `portchops_models.admin.tables`.
"""

from .admin.tables import (
    create_table,
    delete_table,
    describe_table,
    enable_pitr,
    enable_ttl,
    index_spec,
    table_spec,
    ttl_attribute_name,
    wait_until_active,
)

__all__ = [
    "create_table",
    "delete_table",
    "describe_table",
    "enable_pitr",
    "enable_ttl",
    "index_spec",
    "table_spec",
    "ttl_attribute_name",
    "wait_until_active",
]
