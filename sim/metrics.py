"""Statistics and tables of a finished design run: the contents of summary.json and the Parquet files."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.lambda_service import INVOCATION_COLUMNS, EndReason, Trigger
from sim.pricing import UsageCounts, cost_usd
from sim.outcome import DesignOutcome
from sim.sns import SnsApi
from sim.sqs import MessageState, SqsApi
from sim.workload import Arrivals

LATENESS_QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}

# Summary floats are rounded to a microsecond (or a millionth): far below any modelled effect,
# and it keeps summary.json readable.
_DIGITS = 6

FINAL_STATE_NAMES = {
    MessageState.QUEUED: "queued",
    MessageState.IN_FLIGHT: "in_flight",
    MessageState.DELETED: "deleted",
    MessageState.DLQ: "dlq",
    MessageState.EXPIRED: "expired",
}
DELIVERED = "delivered"

# Requests the drain itself makes; the scheduler's sends are the same for every design.
DRAIN_SQS_APIS = (SqsApi.RECEIVE_MESSAGE, SqsApi.DELETE_MESSAGE, SqsApi.DELETE_MESSAGE_BATCH)


def final_state_labels(run: DesignOutcome) -> np.ndarray:
    """Return each message's final state name; a message published at least once is delivered."""
    labels = np.empty(len(run.final_states), dtype=object)
    for state, name in FINAL_STATE_NAMES.items():
        labels[run.final_states == state] = name
    labels[run.publish_count > 0] = DELIVERED
    return labels


def lateness_s(run: DesignOutcome, arrivals: Arrivals) -> np.ndarray:
    """Return first publish time minus due time per message, NaN when never published."""
    return run.first_publish_at_s - arrivals.due_at_s


def summarize_design(run: DesignOutcome, arrivals: Arrivals, architecture: Any) -> dict[str, Any]:
    """Return the summary.json entry of one design."""
    labels = final_state_labels(run)
    lateness = lateness_s(run, arrivals)
    delivered = ~np.isnan(lateness)
    invocations = invocation_frame(run)
    publish_count = run.publish_count

    undelivered = {name: int(np.count_nonzero(labels == name)) for name in ("queued", "in_flight", "dlq", "expired")}
    undelivered = {"total": int(np.count_nonzero(~delivered)), **undelivered}

    billed_gb_s = float(invocations["billed_ms"].sum()) / 1000.0 * run.design.memory_mb / 1024.0
    sqs_requests = _sqs_requests(run)
    sns_requests = {api.value: int(run.sns_requests[api]) for api in SnsApi}
    sns_requests["total"] = sum(sns_requests.values())
    usage = UsageCounts(
        billed_gb_s=billed_gb_s,
        lambda_requests=len(invocations),
        drain_sqs_requests=sqs_requests["drain_total"],
        sns_requests=sns_requests["total"],
        scheduled_events=run.timer_fires + run.duplicate_fires,
        messages=len(arrivals),
    )
    triggers = invocations["trigger"].value_counts()
    reasons = invocations["end_reason"].value_counts()

    return {
        "kind": run.design.kind,
        "settings": run.design.model_dump(mode="json"),
        "messages": len(arrivals),
        "delivered": int(np.count_nonzero(delivered)),
        "duplicates": int(np.maximum(publish_count - 1, 0).sum()),
        "undelivered": undelivered,
        "lateness_s": _lateness_stats(lateness[delivered]),
        "invocations": {
            "total": len(invocations),
            **{trigger.value: int(triggers.get(trigger.value, 0)) for trigger in Trigger},
        },
        "end_reasons": {reason.value: int(reasons.get(reason.value, 0)) for reason in EndReason},
        "cold_starts": int(invocations["cold"].sum()),
        "timeouts": int(reasons.get(EndReason.TIMEOUT.value, 0)),
        "errors": int(reasons.get(EndReason.ERROR.value, 0)),
        "throttles": run.throttles,
        "dropped_events": dict(sorted(run.dropped_events.items())),
        "async_duplicates": run.async_duplicates,
        "pending_events": run.pending_events,
        "timer_fires": run.timer_fires,
        "duplicate_fires": run.duplicate_fires,
        "watchdog_restarts": run.watchdog_restarts,
        "concurrency": _concurrency_stats(run),
        "sqs_requests": sqs_requests,
        "sns_requests": sns_requests,
        "dlq_moves": run.dlq_moves,
        "billed_gb_s": round(billed_gb_s, _DIGITS),
        "cost_usd": {key: round(value, 9) for key, value in cost_usd(usage, architecture).items()},
    }


def _lateness_stats(values: np.ndarray) -> dict[str, float | None]:
    if len(values) == 0:
        return {key: None for key in (*LATENESS_QUANTILES, "max", "mean")}
    quantiles = np.quantile(values, list(LATENESS_QUANTILES.values()))
    stats = {key: round(float(q), _DIGITS) for key, q in zip(LATENESS_QUANTILES, quantiles)}
    stats["max"] = round(float(values.max()), _DIGITS)
    stats["mean"] = round(float(values.mean()), _DIGITS)
    return stats


def _sqs_requests(run: DesignOutcome) -> dict[str, int]:
    counts = {api.value: int(run.sqs_requests[api]) for api in SqsApi}
    counts["drain_total"] = sum(counts[api.value] for api in DRAIN_SQS_APIS)
    # Empty receives are a subset of ReceiveMessage, so they are not added again.
    counts["total"] = sum(value for key, value in counts.items() if key not in ("drain_total", SqsApi.RECEIVE_MESSAGE_EMPTY.value))
    return counts


def _concurrency_stats(run: DesignOutcome) -> dict[str, float]:
    changes = run.concurrency
    if not changes:
        return {"peak": 0, "mean": 0.0}
    times = np.array([at_s for at_s, _ in changes] + [run.end_at_s])
    values = np.array([value for _, value in changes])
    durations = np.diff(np.minimum(times, run.end_at_s))
    mean = float((values * durations).sum() / run.end_at_s) if run.end_at_s > 0 else 0.0
    return {"peak": int(values.max()), "mean": round(mean, _DIGITS)}


# ---------------------------------------------------------------------------------------------
# Tables


def message_frame(run: DesignOutcome, arrivals: Arrivals) -> pd.DataFrame:
    """Return one row per message: its times, counts and final state."""
    return pd.DataFrame(
        {
            "design": run.name,
            "message_id": np.arange(len(arrivals), dtype=np.int64),
            "send_at_s": arrivals.send_at_s,
            "delay_s": arrivals.delay_s.astype(np.int32),
            "due_at_s": arrivals.due_at_s,
            "first_receive_at_s": run.first_receive_at_s,
            "first_publish_at_s": run.first_publish_at_s,
            "lateness_s": lateness_s(run, arrivals),
            "publish_count": run.publish_count,
            "receive_count": run.receive_count,
            "final_state": final_state_labels(run),
        }
    )


def invocation_frame(run: DesignOutcome) -> pd.DataFrame:
    """Return one row per invocation, in order of their end."""
    frame = pd.DataFrame.from_records(run.invocations, columns=list(INVOCATION_COLUMNS))
    frame = frame.astype(
        {
            "invocation_id": np.int64,
            "chain_id": np.int64,
            "chain_depth": np.int32,
            "attempt": np.int32,
            "start_at_s": np.float64,
            "end_at_s": np.float64,
            "cold": bool,
            "init_ms": np.float64,
            "billed_ms": np.int64,
            "messages_received": np.int64,
            "messages_published": np.int64,
        }
    )
    frame.insert(0, "design", run.name)
    return frame


def concurrency_frame(run: DesignOutcome) -> pd.DataFrame:
    """Return concurrency as a step series: each row's value lasts until the next row."""
    changes = run.concurrency
    return pd.DataFrame(
        {
            "design": run.name,
            "at_s": np.array([at_s for at_s, _ in changes], dtype=np.float64),
            "concurrency": np.array([value for _, value in changes], dtype=np.int32),
        }
    )
