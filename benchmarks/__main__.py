"""``python -m benchmarks``: run every scenario, print the tables, write the results.

Options: ``--quick`` (smaller sizes, fewer rounds: a smoke run), ``--only KEY[,KEY]``
(some scenarios), and ``--strict`` (exit 1 when a target fails). Only a full run of every scenario
writes ``benchmarks/results.json``, one figure per scenario in ``docs/benchmarks/`` and
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from types import ModuleType

from rich.console import Console

from . import (
    backfill,
    batch_read,
    cache_hit,
    cache_skew,
    changes,
    concurrent_gets,
    encryption,
    invalidation,
    load,
    parity,
    point_reads,
    profile,
    projection,
    query_cpu,
    report,
    streaming,
    throttling,
)
from .common import RTT, dynalite, machine_info
from .context import Bench, Scale

SCENARIOS: dict[str, ModuleType] = {
    "parity": parity,
    "point_reads": point_reads,
    "batch_read": batch_read,
    "query_cpu": query_cpu,
    "projection": projection,
    "throttling": throttling,
    "streaming": streaming,
    "concurrent_gets": concurrent_gets,
    "cache_skew": cache_skew,
    "invalidation": invalidation,
    "backfill": backfill,
    "changes": changes,
    "profile": profile,
    "encryption": encryption,
    "load": load,
    "cache_hit": cache_hit,
}


def _description(module: ModuleType) -> str:
    """A scenario module's docstring without its first line (the title)."""
    doc = (module.__doc__ or "").strip()
    return doc.split("\n", 1)[1].strip() if "\n" in doc else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small smoke run; writes nothing")
    parser.add_argument("--only", default="", help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    args = parser.parse_args(argv)
    only = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in only if k not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    selected = only or list(SCENARIOS)
    write = not args.quick and not only

    console = Console()
    if not console.is_terminal:  # piped or captured: wide enough for the tables
        console = Console(width=132)
    scale = Scale.quick() if args.quick else Scale()
    started = time.perf_counter()
    date = datetime.now(UTC).isoformat(timespec="seconds")
    scenarios = []
    with dynalite() as engine:
        bench = Bench(engine_url=engine.endpoint_url, scale=scale)
        console.print(f"[bold]portchops_models benchmarks[/] — dynalite at {engine.endpoint_url}")
        bench.prepare()
        for key in selected:
            console.print(f"[dim]running {key}...[/]")
            result = SCENARIOS[key].run(bench).as_dict()
            scenarios.append(result)
            report.print_scenario(console, result)

    results = {
        "run": {
            "date": date,
            "engine": "dynalite (own process) behind a FaultProxy (own process) on loopback",
            "rtt_ms": RTT * 1e3,
            "quick": args.quick,
            "scale": vars(scale),
            **machine_info(),
        },
        "total_seconds": round(time.perf_counter() - started, 1),
        "scenarios": scenarios,
    }
    report.print_summary(console, results)
    if write:
        report.write_json(results)
        figures = report.write_charts(results)
        report.write_page(results, {k: _description(m) for k, m in SCENARIOS.items()})
        console.print(
            f"[dim]wrote {report.RESULTS.relative_to(report.ROOT)}, {len(figures)} figures in "
            f"{report.FIGURES.relative_to(report.ROOT)}/, {report.PAGE.relative_to(report.ROOT)}[/]"
        )
    failed = any(not passed for *_, passed in report.summary_rows(results))
    return 1 if (failed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
