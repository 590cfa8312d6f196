"""AWS service limits and documented defaults used by the model and by validation.

Each constant names the AWS guide it comes from. Values marked "unconfirmed" were not found in a
primary AWS source and are used as defaults only.
"""

# Amazon SQS Developer Guide, "Amazon SQS message timers" and "Amazon SQS delay queues":
# a per-message DelaySeconds is 0 to 900 s (15 minutes).
MAX_DELAY_S = 900

# SQS Developer Guide, "Amazon SQS visibility timeout": 0 s to 12 hours, default 30 s.
MAX_VISIBILITY_TIMEOUT_S = 43_200
DEFAULT_VISIBILITY_TIMEOUT_S = 30

# SQS API Reference, ReceiveMessage: MaxNumberOfMessages is 1 to 10.
MAX_RECEIVE_MESSAGES = 10

# SQS Developer Guide, "Amazon SQS short and long polling": WaitTimeSeconds is 0 to 20 s.
MAX_WAIT_TIME_S = 20

# SQS queue attribute MessageRetentionPeriod: 60 s to 1,209,600 s (14 days), default 4 days.
MIN_RETENTION_S = 60
MAX_RETENTION_S = 1_209_600
DEFAULT_RETENTION_S = 345_600

# SQS RedrivePolicy maxReceiveCount. The 1 to 1,000 range is unconfirmed.
MIN_MAX_RECEIVE_COUNT = 1
MAX_MAX_RECEIVE_COUNT = 1_000

# SQS standard queue quotas: about 120,000 in-flight messages. At the limit a long poll
# returns no messages and no error.
MAX_IN_FLIGHT_MESSAGES = 120_000

# SQS batch actions (SendMessageBatch, DeleteMessageBatch) and SNS PublishBatch take at most
# 10 entries per request.
MAX_BATCH_ENTRIES = 10

# Lambda Developer Guide, quotas: timeout up to 900 s; memory 128 to 10,240 MB.
MAX_FUNCTION_TIMEOUT_S = 900
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240

# Lambda Developer Guide, "Lambda execution environment": the Init phase is limited to 10 s.
MAX_INIT_DURATION_S = 10.0

# Lambda Developer Guide, quotas: 1,000 concurrent executions per Region by default.
DEFAULT_CONCURRENCY_LIMIT = 1_000

# Lambda FunctionEventInvokeConfig: MaximumRetryAttempts 0 to 2 (default 2) and
# MaximumEventAgeInSeconds 60 to 21,600 (default 6 hours).
MAX_ASYNC_RETRY_ATTEMPTS = 2
MIN_EVENT_AGE_S = 60
MAX_EVENT_AGE_S = 21_600

# Lambda Developer Guide, "Asynchronous invocation": about 1 minute before the first retry of a
# function error and about 2 minutes before the second.
FUNCTION_ERROR_RETRY_DELAYS_S = (60.0, 120.0)

# Same guide: a throttled event goes back to the queue and is retried with backoff from 1 s
# up to 5 minutes, until the maximum event age.
THROTTLE_BACKOFF_INITIAL_S = 1.0
THROTTLE_BACKOFF_MAX_S = 300.0

# Lambda Developer Guide, "Lambda recursive loop detection": after about 16 invocations in one
# chain of requests, Lambda drops the next invocation unless the function allows recursion.
RECURSIVE_LOOP_MAX_INVOCATIONS = 16

# Lambda pricing, "New for AWS Lambda - 1ms Billing Granularity": duration rounds up to 1 ms.
BILLING_GRANULARITY_MS = 1

# EventBridge user guide, scheduled rules: the finest rate is rate(1 minute), and a rule fires
# somewhere within its scheduled minute.
MIN_SCHEDULE_PERIOD_S = 60
SCHEDULE_MINUTE_S = 60
