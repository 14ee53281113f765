"""The public names are a contract: `__all__` is pinned, and every name in it exists."""

from __future__ import annotations

import ast
from pathlib import Path

import portchops_models

PACKAGE = Path(portchops_models.__file__).resolve().parent

PUBLIC = {
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
}


def test_all_is_pinned() -> None:
    assert set(portchops_models.__all__) == PUBLIC
    assert len(portchops_models.__all__) == len(PUBLIC)  # no name listed twice


def test_every_public_name_exists_and_is_documented() -> None:
    for name in portchops_models.__all__:
        value = getattr(portchops_models, name)
        if name != "__version__":
            assert (getattr(value, "__doc__", None) or "").strip(), f"{name} has no docstring"


def _imports(path: Path) -> set[str]:
    """The package modules `path` imports (relative imports resolved), at any depth."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        module = module.rsplit(".", 1)[0] + ".__init__"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("portchops_models")}


def test_runtime_modules_never_import_the_test_kit() -> None:
    """testing/ (engines, fault proxy) is for tests; only the CLI's demo and engine use it."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).parts
        if relative[0] in ("testing", "cli", "migrations"):
            continue
        if any(name.startswith("portchops_models.testing") for name in _imports(path)):
            offenders.append(str(path.relative_to(PACKAGE)))
    assert not offenders


def test_the_generic_core_names_no_built_in_model() -> None:
    """The generic base knows models only through their shape."""
    generic = ("repository.py", "models/shape.py", "ops/requests.py", "aio/repository.py")
    for name in (*generic, *(f"ops/{p.name}" for p in (PACKAGE / "ops").glob("*.py"))):
        source = (PACKAGE / name).read_text()
        tree = ast.parse(source)
        imported = _imports(PACKAGE / name)
        assert not any(n.endswith(("UserProgress", "User", "user_progress")) for n in imported)
        names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        assert not names & {"ttl", "updated_at"}, name


def test_layers_import_one_way() -> None:
    """Policies are leaves; models never import repositories; nothing imports the CLI."""
    leaves = (
        "cache/items.py",
        "cache/store.py",
        "cache/loads.py",
        "cache/policy.py",
        "transport/retry.py",
        "observe/metrics.py",
        "errors.py",
        "transport/deadline.py",
        "dynamo/idempotency.py",
        "transport/drive.py",
    )
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        imported = _imports(path)
        if rel.parts[0] != "cli":
            assert not any(n.startswith("portchops_models.cli") for n in imported), rel
        if rel.parts[0] == "models":
            assert not any(
                n.startswith(("portchops_models.repositor", "portchops_models.ops"))
                for n in imported
            ), rel
        if str(rel) in leaves:
            policies = (
                "portchops_models.errors",
                "portchops_models.transport.deadline",
                "portchops_models.transport.drive",
                # the cache's own parts (storage, load claims, policy)
                "portchops_models.cache.store",
                "portchops_models.cache.loads",
                "portchops_models.cache.policy",
            )
            ours = {
                n
                for n in imported
                if n not in ("portchops_models", "portchops_models.transport")
                and not n.startswith(policies)
            }
            assert not ours, rel
