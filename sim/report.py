"""Plain-text tables of run summaries for the terminal."""

from __future__ import annotations

from typing import Any, Callable

_Row = tuple[str, Callable[[dict[str, Any]], Any], str]


def _lateness(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda design: design["lateness_s"][key]


ROWS: list[_Row] = [
    ("messages", lambda d: d["messages"], "{:,}"),
    ("delivered", lambda d: d["delivered"], "{:,}"),
    ("undelivered", lambda d: d["undelivered"]["total"], "{:,}"),
    ("duplicates", lambda d: d["duplicates"], "{:,}"),
    ("lateness p50 (s)", _lateness("p50"), "{:.3f}"),
    ("lateness p90 (s)", _lateness("p90"), "{:.3f}"),
    ("lateness p99 (s)", _lateness("p99"), "{:.3f}"),
    ("lateness p99.9 (s)", _lateness("p999"), "{:.3f}"),
    ("lateness max (s)", _lateness("max"), "{:.3f}"),
    ("invocations", lambda d: d["invocations"]["total"], "{:,}"),
    ("cold starts", lambda d: d["cold_starts"], "{:,}"),
    ("timeouts", lambda d: d["timeouts"], "{:,}"),
    ("concurrency peak", lambda d: d["concurrency"]["peak"], "{:,}"),
    ("concurrency mean", lambda d: d["concurrency"]["mean"], "{:.2f}"),
    ("SQS requests (drain)", lambda d: d["sqs_requests"]["drain_total"], "{:,}"),
    ("empty receives", lambda d: d["sqs_requests"]["ReceiveMessage_empty"], "{:,}"),
    ("SNS requests", lambda d: d["sns_requests"]["total"], "{:,}"),
    ("billed GB-s", lambda d: d["billed_gb_s"], "{:,.1f}"),
    ("cost (USD)", lambda d: d["cost_usd"]["total"], "{:.4f}"),
    ("cost per 1M messages (USD)", lambda d: d["cost_usd"]["per_million_messages"], "{:.2f}"),
]


def format_comparison(summary: dict[str, Any]) -> str:
    """Return a table with one column per design and one row per key metric."""
    designs = summary["designs"]
    header = ["", *designs]
    lines = [header]
    for label, extract, pattern in ROWS:
        cells = [label]
        for design in designs.values():
            value = extract(design)
            cells.append("-" if value is None else pattern.format(value))
        lines.append(cells)

    widths = [max(len(row[column]) for row in lines) for column in range(len(header))]
    title = f"scenario {summary['scenario']} (seed {summary['seed']}, {summary['messages']:,} messages)"
    rendered = [title]
    for row in lines:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        rendered.append("  ".join([first, *rest]).rstrip())
    if any(design["undelivered"]["total"] for design in designs.values()):
        # A design that delivers less can show lower percentiles, so the table states what they cover.
        rendered.append("lateness percentiles cover delivered messages only")
    return "\n".join(rendered)


def side_by_side(summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Merge the summaries of one scenario run on several engines into one, design by design.

    The merged designs are named "<design> (<engine>)", so each design's engines sit next to each
    other in ``format_comparison``.
    """
    first = next(iter(summaries.values()))
    designs: dict[str, Any] = {}
    for design in first["designs"]:
        for engine, summary in summaries.items():
            if design in summary["designs"]:
                designs[f"{design} ({engine})"] = summary["designs"][design]
    return {**first, "scenario": f"{first['scenario']}, {' and '.join(summaries)} side by side", "designs": designs}
