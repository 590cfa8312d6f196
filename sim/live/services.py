"""Queues, topic and subscription of one live design run, and the threads that feed and watch them.

Every resource is created with a name unique to the run and deleted afterwards, also when the run
fails. The subscription is removed before its queue: moto 5.2 fails every later Publish to a topic
whose subscriber queue is gone.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import boto3
import numpy as np
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sim.errors import UserInputError
from sim.live.endpoint import Endpoint
from sim.scenario import QueueSettings

logger = logging.getLogger(__name__)

_CONFIG = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})
# The observer's own long poll; short, so that stopping it is quick.
_OBSERVER_WAIT_S = 1
_DEPTH_INTERVAL_S = 1.0
_SEND_BATCH_WINDOW_S = 0.005


def make_clients(endpoint: Endpoint) -> dict[str, Any]:
    """Create SQS and SNS clients for ``endpoint``."""
    arguments: dict[str, Any] = {"region_name": endpoint.region, "config": _CONFIG}
    if endpoint.url:
        arguments["endpoint_url"] = endpoint.url
    if endpoint.credentials:
        arguments["aws_access_key_id"] = endpoint.credentials["AWS_ACCESS_KEY_ID"]
        arguments["aws_secret_access_key"] = endpoint.credentials["AWS_SECRET_ACCESS_KEY"]
    return {"sqs": boto3.client("sqs", **arguments), "sns": boto3.client("sns", **arguments)}


@dataclass
class Resources:
    """Names and addresses of one design's queues, topic and subscription."""

    prefix: str
    queue_url: str = ""
    queue_arn: str = ""
    dlq_url: str = ""
    topic_arn: str = ""
    observer_url: str = ""
    subscription_arn: str = ""


def create_resources(clients: dict[str, Any], run_tag: str, design_name: str, settings: QueueSettings) -> Resources:
    """Create the delay queue (with its dead-letter queue), the topic and the observer's queue."""
    sqs, sns = clients["sqs"], clients["sns"]
    resources = Resources(prefix=f"drainsim-{run_tag}-{design_name}")
    _reject_existing(sqs, sns, resources.prefix)
    try:
        attributes = {
            "VisibilityTimeout": str(settings.visibility_timeout_s),
            "MessageRetentionPeriod": str(settings.retention_s),
        }
        if settings.max_receive_count is not None:
            resources.dlq_url = sqs.create_queue(QueueName=f"{resources.prefix}-dlq")["QueueUrl"]
            dlq_arn = _queue_arn(sqs, resources.dlq_url)
            attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count})
        resources.queue_url = sqs.create_queue(QueueName=f"{resources.prefix}-queue", Attributes=attributes)["QueueUrl"]
        resources.queue_arn = _queue_arn(sqs, resources.queue_url)
        resources.topic_arn = sns.create_topic(Name=f"{resources.prefix}-topic")["TopicArn"]
        resources.observer_url = sqs.create_queue(QueueName=f"{resources.prefix}-observer")["QueueUrl"]
        observer_arn = _queue_arn(sqs, resources.observer_url)
        # SQS accepts an SNS delivery only when the queue's policy allows the topic to send.
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": observer_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": resources.topic_arn}},
                }
            ],
        }
        sqs.set_queue_attributes(QueueUrl=resources.observer_url, Attributes={"Policy": json.dumps(policy)})
        resources.subscription_arn = sns.subscribe(
            TopicArn=resources.topic_arn,
            Protocol="sqs",
            Endpoint=observer_arn,
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
    except BaseException:
        delete_resources(clients, resources)
        raise
    logger.info("created queue %s and topic %s", resources.queue_url, resources.topic_arn)
    return resources


def _reject_existing(sqs: Any, sns: Any, prefix: str) -> None:
    """Raise UserInputError when a queue or topic with this run's names exists already.

    CreateQueue and CreateTopic return an existing resource of the same name instead of failing,
    so without this check a run could drain, and later delete, a queue it did not create.
    """
    queues = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    topics = [topic["TopicArn"] for topic in sns.list_topics().get("Topics", []) if topic["TopicArn"].rsplit(":", 1)[-1].startswith(prefix)]
    found = queues + topics
    if found:
        raise UserInputError(
            f"the endpoint already has {', '.join(found)}; drainsim only uses queues and topics it "
            f"creates, and deletes them afterwards, so it will not touch these"
        )


def _queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def delete_resources(clients: dict[str, Any], resources: Resources) -> None:
    """Delete everything ``create_resources`` made, logging and skipping what fails."""
    sqs, sns = clients["sqs"], clients["sns"]
    steps: list[tuple[str, Callable[[], Any]]] = []
    if resources.subscription_arn:
        steps.append(("subscription", lambda: sns.unsubscribe(SubscriptionArn=resources.subscription_arn)))
    if resources.topic_arn:
        steps.append(("topic", lambda: sns.delete_topic(TopicArn=resources.topic_arn)))
    for url in (resources.observer_url, resources.queue_url, resources.dlq_url):
        if url:
            steps.append((url, lambda url=url: sqs.delete_queue(QueueUrl=url)))
    for name, step in steps:
        try:
            step()
        except (ClientError, BotoCoreError) as error:
            logger.error("could not delete %s of %s: %s", name, resources.prefix, error)


# SQS queue names have at most 80 characters; the longest name made is "<prefix>-observer".
MAX_QUEUE_NAME = 80
_NAME_OVERHEAD = len("drainsim-") + 10 + len("-") + len("-observer")


def check_queue_name_length(design_name: str) -> None:
    """Reject a design name that would make a queue name longer than SQS allows."""
    if len(design_name) + _NAME_OVERHEAD > MAX_QUEUE_NAME:
        raise UserInputError(
            f"design name {design_name!r} is too long for a live run: its queue names would exceed "
            f"SQS's {MAX_QUEUE_NAME} characters; use at most {MAX_QUEUE_NAME - _NAME_OVERHEAD} characters"
        )


def message_body(message_id: int, due_at_s: float) -> str:
    return json.dumps({"id": message_id, "due_at_s": due_at_s})


def message_id_of(body: str | None) -> int | None:
    try:
        return int(json.loads(body or "")["id"])
    except (ValueError, KeyError, TypeError):
        return None


# ---------------------------------------------------------------------------------------------
# Threads


@dataclass
class CallLog:
    """API calls measured outside the handlers (the producer's sends)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


class Producer(threading.Thread):
    """Sends the workload's messages in wall-clock time, each at its send time with its delay."""

    def __init__(self, sqs: Any, queue_url: str, send_at_s: np.ndarray, delay_s: np.ndarray, due_at_s: np.ndarray, started_at: float, stop: threading.Event) -> None:
        super().__init__(name=f"producer-{queue_url.rsplit('/', 1)[-1]}", daemon=True)
        self._sqs = sqs
        self._queue_url = queue_url
        self._order = np.argsort(send_at_s, kind="stable")
        self._send_at_s = send_at_s
        self._delay_s = delay_s
        self._due_at_s = due_at_s
        self._started_at = started_at
        self._halt = stop
        self.log = CallLog()
        self.sent = 0
        self._sent_ids: set[int] = set()
        self.error: BaseException | None = None

    def unsent_ids(self, count: int) -> set[int]:
        """Return the message ids among 0..count-1 that were not sent."""
        return set(range(count)) - self._sent_ids

    def run(self) -> None:
        try:
            self._send_all()
        except (ClientError, BotoCoreError) as error:
            logger.error("the producer stopped after %d messages: %s", self.sent, error)
            self.error = error

    def _send_all(self) -> None:
        order = self._order
        position = 0
        while position < len(order) and not self._halt.is_set():
            first = order[position]
            wait_s = self._started_at + self._send_at_s[first] - time.time()
            if wait_s > 0 and self._halt.wait(wait_s):
                return
            batch = [first]
            while len(batch) < 10 and position + len(batch) < len(order):
                candidate = order[position + len(batch)]
                if self._send_at_s[candidate] - self._send_at_s[first] > _SEND_BATCH_WINDOW_S:
                    break
                batch.append(candidate)
            self._send(batch)
            position += len(batch)

    def _send(self, batch: list[int]) -> None:
        started = time.time()
        if len(batch) == 1:
            index = batch[0]
            self._sqs.send_message(
                QueueUrl=self._queue_url,
                MessageBody=message_body(int(index), float(self._due_at_s[index])),
                DelaySeconds=int(self._delay_s[index]),
            )
            api = "SendMessage"
        else:
            entries = [
                {
                    "Id": str(index),
                    "MessageBody": message_body(int(index), float(self._due_at_s[index])),
                    "DelaySeconds": int(self._delay_s[index]),
                }
                for index in batch
            ]
            response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            for failure in response.get("Failed", []):
                logger.error("SendMessageBatch entry %s failed: %s", failure.get("Id"), failure.get("Message"))
            api = "SendMessageBatch"
        self.log.counts[api] += 1
        self.log.calls.append(
            {"api": api, "started_at_s": started - self._started_at, "duration_s": time.time() - started, "entries": len(batch), "failed": 0, "invocation_id": -1}
        )
        self.sent += len(batch)
        self._sent_ids.update(int(index) for index in batch)


class Observer(threading.Thread):
    """Drains the subscriber queue and records when each message id was delivered, and how often."""

    def __init__(self, sqs: Any, observer_url: str, started_at: float, stop: threading.Event) -> None:
        super().__init__(name=f"observer-{observer_url.rsplit('/', 1)[-1]}", daemon=True)
        self._sqs = sqs
        self._url = observer_url
        self._started_at = started_at
        self._halt = stop
        self._lock = threading.Lock()
        self.first_delivery_s: dict[int, float] = {}
        self.deliveries: Counter[int] = Counter()
        self.unknown_bodies = 0

    @property
    def delivered(self) -> int:
        with self._lock:
            return len(self.first_delivery_s)

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.poll_once(_OBSERVER_WAIT_S)
            except (ClientError, BotoCoreError) as error:
                logger.warning("observer receive failed: %s", error)
                self._halt.wait(0.5)

    def poll_once(self, wait_s: int) -> int:
        response = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s)
        messages = response.get("Messages", [])
        now = time.time() - self._started_at
        with self._lock:
            for message in messages:
                message_id = message_id_of(message.get("Body"))
                if message_id is None:
                    self.unknown_bodies += 1
                    continue
                self.deliveries[message_id] += 1
                self.first_delivery_s.setdefault(message_id, now)
        if messages:
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
            )
        return len(messages)


class DepthMonitor(threading.Thread):
    """Samples the delay queue's message counts once a second, to put next to measured latencies."""

    def __init__(self, sqs: Any, queue_url: str, started_at: float, stop: threading.Event) -> None:
        super().__init__(name=f"depth-{queue_url.rsplit('/', 1)[-1]}", daemon=True)
        self._sqs = sqs
        self._url = queue_url
        self._started_at = started_at
        self._halt = stop
        self.samples: list[tuple[float, int, int, int]] = []

    def run(self) -> None:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
        while not self._halt.is_set():
            try:
                attributes = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=names)["Attributes"]
                self.samples.append((time.time() - self._started_at, *(int(attributes.get(name, 0)) for name in names)))
            except (ClientError, BotoCoreError) as error:
                logger.debug("queue depth sample failed: %s", error)
            self._halt.wait(_DEPTH_INTERVAL_S)


def sweep(sqs: Any, queue_url: str, limit: int) -> set[int]:
    """Receive every visible message of a queue once, without deleting; return their ids.

    Long polls of 1 s query every SQS server, so the sweep stops only after two empty ones. A
    message whose receive count reaches the queue's maxReceiveCount on this receive moves to the
    dead-letter queue, as any receive would make it.
    """
    found: set[int] = set()
    empty = 0
    for _ in range(limit // 10 + 10):
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=600)
        messages = response.get("Messages", [])
        if not messages:
            empty += 1
            if empty == 2:
                break
            continue
        for message in messages:
            message_id = message_id_of(message.get("Body"))
            if message_id is not None:
                found.add(message_id)
    return found


def group_times(pairs: list[tuple[str, float]]) -> tuple[dict[int, float], Counter[int]]:
    """Return the first time and the count per message id of (body, time) pairs."""
    first: dict[int, float] = {}
    counts: Counter[int] = Counter()
    for body, at_s in pairs:
        message_id = message_id_of(body)
        if message_id is None:
            continue
        counts[message_id] += 1
        if message_id not in first or at_s < first[message_id]:
            first[message_id] = at_s
    return first, counts


def unique_run_tag() -> str:
    return uuid.uuid4().hex[:10]


__all__ = [
    "DepthMonitor",
    "Observer",
    "Producer",
    "Resources",
    "create_resources",
    "delete_resources",
    "group_times",
    "make_clients",
    "sweep",
    "unique_run_tag",
]
