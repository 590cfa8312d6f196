"""Carry out drain programs' effect requests for real, with boto3, against SQS, SNS and Lambda.

This module uses only the standard library and boto3, which the Lambda Python runtime provides,
so a deployed function can import it. Every API call can be reported to a ``CallRecorder``; the
local runtime of the live engine uses that to measure latencies and deliveries.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Protocol, Sequence

from botocore.exceptions import ClientError

from sim.drain.effects import (
    Delete,
    DrainOutcome,
    DrainProgram,
    Effect,
    InvokeSelf,
    Message,
    Publish,
    PublishOutcome,
    Receive,
)

logger = logging.getLogger(__name__)

# SQS DeleteMessageBatch and SNS PublishBatch take at most 10 entries per request.
MAX_BATCH_ENTRIES = 10


class CallRecorder(Protocol):
    """Receiver of measurements from a Boto3Effects runner. Times are time.time() seconds."""

    def record_call(self, api: str, started_at_s: float, duration_s: float, entries: int, failed: int) -> None: ...

    def record_received(self, messages: Sequence[Message], at_s: float) -> None: ...

    def record_published(self, messages: Sequence[Message], at_s: float) -> None: ...


def _chunks(messages: Sequence[Message], size: int) -> list[Sequence[Message]]:
    return [messages[start : start + size] for start in range(0, len(messages), size)]


class Boto3Effects:
    """Effect runner that calls AWS (or an SQS/SNS-compatible server) through boto3 clients."""

    def __init__(
        self,
        sqs: Any,
        sns: Any,
        lambda_client: Any,
        queue_url: str,
        topic_arn: str,
        function_name: str | None,
        recorder: CallRecorder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sqs = sqs
        self._sns = sns
        self._lambda = lambda_client
        self._queue_url = queue_url
        self._topic_arn = topic_arn
        self._function_name = function_name
        self._recorder = recorder
        self._clock = clock
        self._handlers: dict[type, Callable[[Any], Any]] = {
            Receive: self._receive,
            Publish: self._publish,
            Delete: self._delete,
            InvokeSelf: self._invoke_self,
        }

    def run(self, effect: Effect) -> Any:
        """Carry out one effect request and return its result."""
        return self._handlers[type(effect)](effect)

    def _timed(
        self, api: str, entries: int, call: Callable[[], Any], count_failed: Callable[[Any], int] | None = None
    ) -> Any:
        """Make one API call and report its duration.

        ``count_failed`` returns the number of failed entries of a response; a negative value
        reports the number of entries returned instead (used by ReceiveMessage).
        """
        started_at_s = self._clock()
        try:
            response = call()
        except Exception:
            if self._recorder is not None:
                self._recorder.record_call(api, started_at_s, self._clock() - started_at_s, entries, max(entries, 1))
            raise
        duration_s = self._clock() - started_at_s
        if self._recorder is not None:
            failed = count_failed(response) if count_failed else 0
            if failed < 0:
                entries, failed = -failed, 0
            self._recorder.record_call(api, started_at_s, duration_s, entries, failed)
        return response

    # -----------------------------------------------------------------------------------------

    def _receive(self, request: Receive) -> list[Message]:
        arguments: dict[str, Any] = {
            "QueueUrl": self._queue_url,
            "MaxNumberOfMessages": request.max_messages,
            "WaitTimeSeconds": request.wait_s,
        }
        if request.visibility_timeout_s is not None:
            arguments["VisibilityTimeout"] = request.visibility_timeout_s
        # The recorded entry count of a receive is the number of messages returned, so an empty
        # receive shows as 0.
        response = self._timed(
            "ReceiveMessage",
            0,
            lambda: self._sqs.receive_message(**arguments),
            lambda reply: -len(reply.get("Messages", [])),
        )
        messages = [
            Message(item["MessageId"], item["ReceiptHandle"], item.get("Body"))
            for item in response.get("Messages", [])
        ]
        if self._recorder is not None:
            self._recorder.record_received(messages, self._clock())
        return messages

    def _publish(self, request: Publish) -> PublishOutcome:
        messages = list(request.messages)
        if request.batch:
            published: list[Message] = []
            failed: list[Message] = []
            for chunk in _chunks(messages, MAX_BATCH_ENTRIES):
                chunk_published, chunk_failed = self._publish_batch(chunk)
                published += chunk_published
                failed += chunk_failed
            return PublishOutcome(published, failed)
        return self._publish_each(messages)

    def _publish_batch(self, chunk: Sequence[Message]) -> tuple[list[Message], list[Message]]:
        entries = [{"Id": str(position), "Message": message.body or ""} for position, message in enumerate(chunk)]
        response = self._timed(
            "PublishBatch",
            len(chunk),
            lambda: self._sns.publish_batch(TopicArn=self._topic_arn, PublishBatchRequestEntries=entries),
            lambda reply: len(reply.get("Failed", [])),
        )
        failed_ids = {entry["Id"] for entry in response.get("Failed", [])}
        published = [message for position, message in enumerate(chunk) if str(position) not in failed_ids]
        failed = [message for position, message in enumerate(chunk) if str(position) in failed_ids]
        for entry in response.get("Failed", []):
            logger.warning("PublishBatch entry %s failed: %s", entry.get("Id"), entry.get("Code"))
        if self._recorder is not None and published:
            self._recorder.record_published(published, self._clock())
        return published, failed

    def _publish_each(self, messages: list[Message]) -> PublishOutcome:
        """Publish every message with its own Publish request, all at once, as one Node.js loop would."""

        def publish(message: Message) -> bool:
            try:
                self._timed("Publish", 1, lambda: self._sns.publish(TopicArn=self._topic_arn, Message=message.body or ""))
            except ClientError as error:
                logger.warning("Publish of message %s failed: %s", message.message_id, error)
                return False
            if self._recorder is not None:
                self._recorder.record_published([message], self._clock())
            return True

        with ThreadPoolExecutor(max_workers=max(1, len(messages))) as pool:
            results = list(pool.map(publish, messages))
        published = [message for message, ok in zip(messages, results) if ok]
        failed = [message for message, ok in zip(messages, results) if not ok]
        return PublishOutcome(published, failed)

    def _delete(self, request: Delete) -> list[Message]:
        messages = list(request.messages)
        if not request.batch:
            with ThreadPoolExecutor(max_workers=max(1, len(messages))) as pool:
                return [message for message in pool.map(self._delete_one, messages) if message is not None]
        failed: list[Message] = []
        for chunk in _chunks(messages, MAX_BATCH_ENTRIES):
            entries = [{"Id": str(position), "ReceiptHandle": message.receipt_handle} for position, message in enumerate(chunk)]
            response = self._timed(
                "DeleteMessageBatch",
                len(chunk),
                lambda: self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries),
                lambda reply: len(reply.get("Failed", [])),
            )
            failed_ids = {entry["Id"] for entry in response.get("Failed", [])}
            failed += [message for position, message in enumerate(chunk) if str(position) in failed_ids]
        return failed

    def _delete_one(self, message: Message) -> Message | None:
        try:
            self._timed(
                "DeleteMessage",
                1,
                lambda: self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message.receipt_handle),
            )
        except ClientError as error:
            logger.warning("DeleteMessage of message %s failed: %s", message.message_id, error)
            return message
        return None

    def _invoke_self(self, request: InvokeSelf) -> bool:
        if not self._function_name:
            logger.error("cannot invoke itself: AWS_LAMBDA_FUNCTION_NAME is not set")
            return False
        payload = json.dumps(request.payload).encode()
        try:
            response = self._timed(
                "Invoke",
                1,
                lambda: self._lambda.invoke(FunctionName=self._function_name, InvocationType="Event", Payload=payload),
            )
        except ClientError as error:
            logger.error("asynchronous Invoke of %s failed: %s", self._function_name, error)
            return False
        return response.get("StatusCode") == 202


def run_program(program: DrainProgram, effects: Boto3Effects) -> DrainOutcome:
    """Drive a drain program to its end, carrying out each request with ``effects``."""
    request = next(program)
    while True:
        result = effects.run(request)
        try:
            request = program.send(result)
        except StopIteration as stop:
            return stop.value
