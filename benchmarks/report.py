"""Output: rich tables on the terminal, ``results.json``, the SVG chart and the docs page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results.json"
CHART = ROOT / "docs" / "benchmarks.svg"
PAGE = ROOT / "docs" / "benchmarks.md"


def _cell(fmt: str, value: Any) -> str:
    if value is None:
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _verdict(target: dict[str, Any]) -> str:
    return "PASS" if target["passed"] else "MISS"


def _target_value(target: dict[str, Any]) -> tuple[str, str]:
    """(measured, limit) of a target, as text: ``1.03x``, ``<= 1.1x``, ``10,000 items``."""
    unit = target["unit"]

    def text(value: float, *, limit: bool) -> str:
        if unit == "x":
            if limit:
                return f"{value:g}x"
            return f"{value:,.0f}x" if value >= 100 else f"{value:.2f}x"
        number = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
        return f"{number}{unit}"

    return text(target["value"], limit=False), f"{target['op']} {text(target['limit'], limit=True)}"


# ---------------------------------------------------------------------------- terminal


def print_scenario(console: Console, result: dict[str, Any]) -> None:
    table = Table(title=result["title"], title_justify="left", show_lines=False)
    columns = result["columns"]
    for i, column in enumerate(columns):
        table.add_column(column["header"], justify="left" if i == 0 else "right")
    for row in result["rows"]:
        table.add_row(*(_cell(c["fmt"], row.get(c["key"])) for c in columns))
    console.print(table)
    for target in result["targets"]:
        value, limit = _target_value(target)
        style = "bold green" if target["passed"] else "bold red"
        console.print(
            f"  [{style}]{_verdict(target)}[/] {target['name']}: {value} (target {limit})"
        )
    for note in result["notes"]:
        console.print(f"  [dim]{note}[/]")
    console.print(f"  [dim]{result['seconds']:.1f} s[/]\n")


def print_summary(console: Console, results: dict[str, Any]) -> None:
    table = Table(title="Targets", title_justify="left")
    for header in ("scenario", "target", "measured", "limit", "verdict"):
        table.add_column(header, justify="left" if header in ("scenario", "target") else "right")
    for scenario in results["scenarios"]:
        for target in scenario["targets"]:
            value, limit = _target_value(target)
            verdict = "[green]PASS[/]" if target["passed"] else "[bold red]MISS[/]"
            table.add_row(scenario["title"].split(" ", 1)[0], target["name"], value, limit, verdict)
    console.print(table)
    missed = [t["name"] for s in results["scenarios"] for t in s["targets"] if not t["passed"]]
    if missed:
        console.print(f"[bold red]MISSED {len(missed)} target(s):[/] " + "; ".join(missed))
    else:
        console.print("[bold green]Every target met.[/]")
    console.print(f"[dim]total {results['total_seconds']:.0f} s[/]")


# ---------------------------------------------------------------------------- json


def write_json(results: dict[str, Any], path: Path = RESULTS) -> None:
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------- chart


def _scenario(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((s for s in results["scenarios"] if s["key"] == key), None)


def _status(scenario: dict[str, Any]) -> str:
    return "PASS" if all(t["passed"] for t in scenario["targets"]) else "MISS"


def _number(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if v >= 1 else f"{v:.3g}"


def _target(scenario: dict[str, Any], word: str) -> float:
    value: float = next(t for t in scenario["targets"] if word in t["name"])["value"]
    return value


class _Panel:
    """One scenario's horizontal bar chart: ours in blue, the others in grey."""

    OURS, OTHER, LIMIT = "#2b6cb0", "#a0aec0", "#c53030"

    def __init__(self, ax: Any, scenario: dict[str, Any]) -> None:
        self.ax = ax
        self.scenario = scenario

    def bars(self, rows: list[tuple[str, float, bool]], unit: str, *, log: bool = False) -> None:
        ax = self.ax
        y = list(range(len(rows)))[::-1]
        ax.barh(
            y, [v for _, v, _ in rows], color=[self.OURS if o else self.OTHER for *_, o in rows]
        )
        ax.set_yticks(y, [label for label, _, _ in rows])
        for yi, (_, v, _) in zip(y, rows, strict=True):
            ax.text(v, yi, f" {_number(v)}{unit}", va="center", fontsize=7)
        if log:
            ax.set_xscale("log")
        ax.margins(x=0.3 if log else 0.2)

    def limit(self, x: float, label: str) -> None:
        self.ax.set_xlim(right=max(self.ax.get_xlim()[1], x * 1.15))
        self.ax.axvline(x, color=self.LIMIT, linestyle="--", linewidth=1)
        self.ax.annotate(
            label,
            (x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            va="top",
            fontsize=7,
            color=self.LIMIT,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )

    def title(self, heading: str, detail: str, xlabel: str) -> None:
        status = _status(self.scenario)
        color = "#1a202c" if status == "PASS" else self.LIMIT
        self.ax.set_title(f"{heading}: {status}\n{detail}", fontsize=9, color=color)
        self.ax.set_xlabel(xlabel)


def _point_reads(panel: _Panel) -> None:
    s = panel.scenario
    rows = [
        (r["contender"], r["wall_ms_per_op"], "Repository" in r["contender"]) for r in s["rows"]
    ]
    panel.bars(rows, " ms", log=True)
    off, hit = _target(s, "wall vs"), _target(s, "speed-up")
    panel.title(
        "1. Point reads, 5 ms RTT",
        f"cache off {off:.2f}x PynamoDB; a cache hit {hit:,.0f}x faster than a read",
        "wall ms per get (log scale)",
    )


def _batch_read(panel: _Panel) -> None:
    s = panel.scenario
    rows = [(r["contender"], r["wall_ms"], "Repository" in r["contender"]) for r in s["rows"]]
    panel.bars(rows, " ms")
    ideal = next(r["wall_ms"] for r in s["rows"] if "ideal" in r["contender"])
    panel.limit(ideal * 1.15, "1.15x ideal")
    speedup, vs_ideal = _target(s, "PynamoDB"), _target(s, "ideal")
    panel.title(
        "2. Batch read of 1,000 keys, 5 ms RTT",
        f"{speedup:.2f}x faster than PynamoDB; {vs_ideal:.2f}x the ideal fan-out",
        "wall ms per batch",
    )


def _query_cpu(panel: _Panel) -> None:
    s = panel.scenario
    rows = [(r["contender"], r["cpu_ms"], "Repository" in r["contender"]) for r in s["rows"]]
    panel.bars(rows, " ms")
    panel.limit(s["rows"][0]["cpu_ms"] * 1.3, "1.3x paginator")
    panel.title(
        "3. Typed query of 1,000 items, client CPU",
        f"{_target(s, 'paginator'):.2f}x the CPU of the botocore paginator",
        "client CPU ms per query",
    )


def _projection(panel: _Panel) -> None:
    s = panel.scenario
    rows = [
        (r["contender"], r["bytes_per_item"], r["contender"].startswith(("get", "batch_get")))
        for r in s["rows"]
    ]
    panel.bars(rows, " B", log=True)
    panel.title(
        "4. Projection, bytes on the wire",
        f"UserSummary: {s['extra']['reduction_batch']:.0f}x fewer bytes than full items",
        "response bytes per item (log scale)",
    )


def _throttling(panel: _Panel) -> None:
    s = panel.scenario
    row, minimum = s["rows"][0], s["setup"]["minimum"]
    rows = [
        ("minimum (25 items a request)", minimum, False),
        ("sent by batch_save", row["requests"], True),
        ("of which throttled", row["throttled"], False),
    ]
    panel.bars(rows, "")
    panel.limit(minimum * 1.5, "1.5x minimum")
    panel.title(
        "5. Throttling storm, 20% of batch writes throttled",
        f"{row['stored']:,} of {row['items']:,} items stored in {row['seconds']:.1f} s",
        "BatchWriteItem requests, counted at the proxy",
    )


def _streaming(panel: _Panel) -> None:
    s = panel.scenario
    rows = [(r["contender"], r["peak_mib"], "streamed" in r["contender"]) for r in s["rows"]]
    panel.bars(rows, " MiB")
    panel.limit(s["rows"][0]["peak_mib"] * 3, "3 pages")
    panel.title(
        f"6. Streaming {s['setup']['items']:,} items, peak memory",
        f"iter_query peaks at {s['rows'][1]['vs_one_page']:.1f} pages",
        "peak growth of traced memory, MiB",
    )


_PANELS = {
    "point_reads": _point_reads,
    "batch_read": _batch_read,
    "query_cpu": _query_cpu,
    "projection": _projection,
    "throttling": _throttling,
    "streaming": _streaming,
}


def write_chart(results: dict[str, Any], path: Path = CHART) -> None:
    """Six small panels, one per scenario, each with its target drawn in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "portchops-bench", "svg.fonttype": "none", "font.size": 8})
    fig, axes = plt.subplots(3, 2, figsize=(13, 11))
    for ax, (key, draw) in zip(axes.flat, _PANELS.items(), strict=True):
        scenario = _scenario(results, key)
        if scenario is None:
            ax.set_axis_off()
        else:
            draw(_Panel(ax, scenario))
    run = results["run"]
    fig.suptitle(
        f"portchops_models benchmarks, {run['date'][:10]}: dynalite behind a loopback proxy, "
        f"{run['cpus']} CPUs, Python {run['python']} (blue: portchops_models)",
        fontsize=10,
    )
    fig.tight_layout()
    if path.suffix == ".svg":
        fig.savefig(path, format="svg", metadata={"Date": None})
    else:
        fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------- docs page

_INTRO = """\
# Benchmarks

What the layer costs where it should cost nothing (point reads, queries), and what it
wins where batching, parallelism and caching matter (batch reads, cache hits,
projections, throttling storms, streaming). Every scenario runs its contenders side by
side in one run, on the same engine, over the same data, and reports medians and
ratios: these machines are noisy, so read the ratios rather than the absolute times.

## How it is measured

- **Engine**: dynalite (npm) in its own process. moto is not used here: it spends
  about 18 ms of server time on one 100-key BatchGetItem, and in-process it shares the
  GIL and the CPU clock with the client, which would hide the client's costs.
- **Network**: a `FaultProxy` on loopback, in a process of its own, adds 5 ms to every
  request (one round trip) for the scenarios that model a network. The same proxy
  counts bytes and requests, and injects throttling for scenario 5.
- **Contenders**: raw botocore (a default client), plain PynamoDB (its own `Model`
  classes over the same tables, building their client from `Meta` as an app would),
  and `portchops_models` (`configure(endpoint_url=...)`, `UserRepository`,
  `UserProgressRepository`). All use the same endpoint within a scenario.
- **Client CPU**: `time.thread_time()` around the calling thread's loop (sequential
  work), or `time.process_time()` of the client process when threads fan out; the
  engine and the proxy run in other processes, so neither is counted.
- **Rounds**: each contender is warmed up, then the contenders run in interleaved
  rounds (the order rotates each round) and the median is reported.

## Why the layer can beat raw botocore

- **Batch reads fan out**: 100 keys a request, the chunks in parallel on the shared
  connection pool (one thread per chunk), each chunk turned into objects in its own
  thread as soon as it arrives, while the others are still on the wire.
- **Reads skip botocore's response parser**: botocore walks the output shape for every
  attribute value of every item, which here costs more than the whole HTTP exchange of
  a 100-item answer. The repositories parse a successful GetItem, BatchGetItem, Query
  or Scan answer with one `json.loads` instead: DynamoDB's JSON already has the shape
  botocore returns, and binary values are base64-decoded as botocore does.
- **Objects are built directly**: PynamoDB's `from_raw_data` runs every attribute
  default twice per item and sets each value through its descriptor; the repositories
  deserialize each stored attribute once, with the same result.

So the "ideal" raw-botocore fan-out and the botocore paginator are floors for code that
uses botocore's parser, not for the layer. Check 0 runs first on every run and compares
both paths, answer by answer and object by object, with what botocore and PynamoDB
return; any difference is reported as a MISS.

## Reproduce

```sh
make bench                              # installs everything, then: .venv/bin/python -m benchmarks
.venv/bin/python -m benchmarks --quick  # a smaller smoke run; writes nothing
```

A full run takes a few minutes on a 2-core machine. It prints one table per
scenario with PASS or MISS for each target, then writes
`benchmarks/results.json` (every figure, with the machine, date, engine and RTT),
`docs/benchmarks.svg` (the chart below) and this page.
"""


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(headers: list[str], rows: list[list[str]], *, text_columns: int = 1) -> str:
    """A markdown table: the first `text_columns` columns left-aligned, the rest right."""
    rule = ["---" if i < text_columns else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(_md_escape(h) for h in headers) + " |"]
    lines.append("| " + " | ".join(rule) + " |")
    lines.extend("| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def write_page(results: dict[str, Any], descriptions: dict[str, str], path: Path = PAGE) -> None:
    run = results["run"]
    parts = [_INTRO]
    parts.append("## Latest results\n")
    parts.append(
        f"Run of {run['date']} on {run['cpus']} CPUs ({_md_escape(run['cpu'])}), "
        f"Python {run['python']}, botocore {run['botocore']}, PynamoDB {run['pynamodb']}; "
        f"engine: {run['engine']}; RTT {run['rtt_ms']:g} ms; "
        f"the whole run took {results['total_seconds']:.0f} s.\n"
    )
    parts.append("![Benchmark results: one panel per scenario](benchmarks.svg)\n")
    summary_rows = []
    for scenario in results["scenarios"]:
        for target in scenario["targets"]:
            value, limit = _target_value(target)
            summary_rows.append(
                [scenario["title"], target["name"], value, limit, f"**{_verdict(target)}**"]
            )
    headers = ["scenario", "target", "measured", "limit", "verdict"]
    parts.append(_md_table(headers, summary_rows, text_columns=2))
    parts.append("")
    for scenario in results["scenarios"]:
        parts.append(f"## {scenario['title']}\n")
        description = descriptions.get(scenario["key"], "").strip()
        if description:
            parts.append(description + "\n")
        columns = scenario["columns"]
        rows = [[_cell(c["fmt"], row.get(c["key"])) for c in columns] for row in scenario["rows"]]
        parts.append(_md_table([c["header"] for c in columns], rows))
        parts.append("")
        for note in scenario["notes"]:
            parts.append(f"- {_md_escape(note)}")
        parts.append("")
    path.write_text("\n".join(parts).rstrip() + "\n", encoding="utf-8")
