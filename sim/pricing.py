"""A dated AWS price table and the cost of a run.

Prices are us-east-1 list prices in USD, first pricing tier, without free tiers, as published on
the AWS pricing pages for Lambda, SQS and SNS. Check https://aws.amazon.com/pricing/ before relying
on them: prices change.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.scenario import Architecture

PRICES_AS_OF = "2025-08-01"
PRICE_REGION = "us-east-1"

# Lambda pricing page: per GB-second of billed duration, first tier (6 billion GB-s per month
# for x86_64, 7.5 billion for arm64).
LAMBDA_USD_PER_GB_S = {
    Architecture.X86_64: 0.0000166667,
    Architecture.ARM64: 0.0000133334,
}
# Lambda pricing page: $0.20 per million requests; every invocation start counts, retries too.
LAMBDA_USD_PER_REQUEST = 0.20 / 1e6
# SQS pricing page: standard queue, $0.40 per million requests (first 100 billion per month).
# Each request of up to 64 KB counts once; drainsim's messages are assumed to be smaller.
SQS_USD_PER_REQUEST = 0.40 / 1e6
# SNS pricing page: $0.50 per million publish requests. A PublishBatch of small messages counts
# as one request, so batching cuts the cost up to ten times.
SNS_USD_PER_REQUEST = 0.50 / 1e6
# EventBridge pricing charges for custom, partner and cross-account events. Scheduled-rule
# invocations are not listed there and are treated as free.
# NOTE: unconfirmed against an AWS page; set this if your bill shows otherwise.
EVENTBRIDGE_USD_PER_SCHEDULED_EVENT = 0.0


@dataclass(frozen=True)
class UsageCounts:
    """Usage of one design during a run."""

    billed_gb_s: float
    lambda_requests: int
    drain_sqs_requests: int
    sns_requests: int
    scheduled_events: int
    messages: int


def cost_usd(usage: UsageCounts, architecture: Architecture) -> dict[str, float]:
    """Return the cost of ``usage`` by component, in total and per million messages."""
    parts = {
        "lambda_compute": usage.billed_gb_s * LAMBDA_USD_PER_GB_S[architecture],
        "lambda_requests": usage.lambda_requests * LAMBDA_USD_PER_REQUEST,
        "sqs": usage.drain_sqs_requests * SQS_USD_PER_REQUEST,
        "sns": usage.sns_requests * SNS_USD_PER_REQUEST,
        "eventbridge": usage.scheduled_events * EVENTBRIDGE_USD_PER_SCHEDULED_EVENT,
    }
    total = sum(parts.values())
    parts["total"] = total
    parts["per_million_messages"] = total / usage.messages * 1e6 if usage.messages else 0.0
    return parts
