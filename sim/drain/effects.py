"""Effect requests that drain programs yield, and the results an engine sends back.

A drain program is a generator: it yields one request, the engine carries it out (in simulated
time, or for real with boto3) and sends the result back in. This module uses only the standard
library, because a deployed Lambda handler imports it. The request classes are not frozen
because a frozen dataclass is several times slower to create, and one is created per API call.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Generator, NamedTuple, Protocol, Sequence, Union


class Message(NamedTuple):
    """One received SQS message, as passed to the drain code."""

    message_id: Any
    receipt_handle: Any
    body: Any = None


@dataclass(slots=True)
class Receive:
    """ReceiveMessage: up to ``max_messages`` (1 to 10), waiting up to ``wait_s`` (0 to 20 s).

    ``visibility_timeout_s`` overrides the queue's visibility timeout for the returned messages;
    None keeps the queue's. The engine returns a list of Message, possibly empty.
    """

    max_messages: int
    wait_s: int
    visibility_timeout_s: int | None = None


@dataclass(slots=True)
class Publish:
    """Publish messages to the topic, with PublishBatch (``batch``) or one Publish per message.

    The engine returns a PublishOutcome. A batch larger than 10 is split into several requests.
    """

    messages: Sequence[Message]
    batch: bool = True


@dataclass(slots=True)
class Delete:
    """Delete messages from the queue, with DeleteMessageBatch (``batch``) or one call each.

    The engine returns the list of messages whose deletion failed.
    """

    messages: Sequence[Message]
    batch: bool = True


@dataclass(slots=True)
class InvokeSelf:
    """Invoke this function asynchronously (InvocationType=Event) with ``payload``.

    The engine returns True when Lambda accepted the request.
    """

    payload: dict[str, Any] = field(default_factory=dict)


Effect = Union[Receive, Publish, Delete, InvokeSelf]


class PublishOutcome(NamedTuple):
    """Result of a Publish request: the published and the failed messages."""

    published: list[Message]
    failed: list[Message]


class StopReason(str, enum.Enum):
    """Reason a drain program returned on its own."""

    # The timer design's baseline had passed and the last cycle published nothing.
    IDLE_AFTER_BASELINE = "idle_after_baseline"
    # Too little time remained for another poll before the timeout.
    NEAR_TIMEOUT = "near_timeout"
    # The recursive design handed over to its next invocation.
    SELF_INVOKED = "self_invoked"
    # The recursive design could not hand over: Lambda rejected the Invoke request.
    SELF_INVOKE_FAILED = "self_invoke_failed"


@dataclass(frozen=True, slots=True)
class DrainOutcome:
    """Result a drain program returns when it stops on its own."""

    reason: StopReason
    cycles: int
    received: int
    published: int


class InvocationContext(Protocol):
    """The part of the Lambda context object that drain programs use.

    ``clock_s`` returns a monotonic time in seconds; in the simulator it is simulated time.
    """

    def get_remaining_time_in_millis(self) -> int: ...

    def clock_s(self) -> float: ...


DrainProgram = Generator[Effect, Any, DrainOutcome]
