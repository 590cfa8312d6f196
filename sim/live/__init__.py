"""The live engine: the shared drain code runs for real against an SQS/SNS server.

Each Lambda execution environment is an operating-system process (``sim.live.worker``). The
local runtime (``sim.live.runtime``) starts, reuses, reclaims and kills them, and it queues
asynchronous invocations with Lambda's retry rules.
"""
