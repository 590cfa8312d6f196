"""The SQS/SNS endpoint of a live run: an embedded moto server, a user's server, or real AWS.

The embedded server is moto's, started as a separate process on 127.0.0.1 and a free port, and
stopped by its process id. moto 5.2's ThreadedMotoServer binds 0.0.0.0 unless given a host, so
the host is always passed explicitly and the server never listens beyond the loopback address.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Credentials for a local server; they are never sent to AWS.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "drainsim-local", "AWS_SECRET_ACCESS_KEY": "drainsim-local"}
_START_TIMEOUT_S = 30.0


class EndpointKind(str, enum.Enum):
    EMBEDDED_MOTO = "embedded-moto"
    CUSTOM = "custom"
    AWS = "aws"


@dataclass
class Endpoint:
    """Target of a live run's SQS and SNS calls, with the credentials and Region to use."""

    kind: EndpointKind
    url: str | None
    region: str
    credentials: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def client_environment(self) -> dict[str, str]:
        """Return the environment variables that point boto3 at this endpoint."""
        environment = {"AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region, **self.credentials}
        if self.url:
            environment["AWS_ENDPOINT_URL_SQS"] = self.url
            environment["AWS_ENDPOINT_URL_SNS"] = self.url
        return environment

    def describe(self) -> str:
        if self.kind is EndpointKind.AWS:
            return f"AWS, Region {self.region}"
        return f"{self.url} ({self.kind.value})"

    def stop(self) -> None:
        """Stop the embedded server, if this endpoint started one."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        logger.info("stopped the moto server (process %d)", self.process.pid)


def terminate_with_parent() -> None:
    """Ask Linux to send SIGTERM to this child process when its parent dies, even by SIGKILL.

    Runs in the child between fork and exec. On other systems it does nothing, and a killed
    drainsim can leave its server running.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def start_moto(log_path: Path, region: str = "us-east-1") -> Endpoint:
    """Start moto's server on 127.0.0.1 and a free port, and wait until it responds."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    log_file = open(log_path, "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=terminate_with_parent,
    )
    log_file.close()
    endpoint = Endpoint(EndpointKind.EMBEDDED_MOTO, url, region, dict(LOCAL_CREDENTIALS), process)
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the moto server exited at start with status {process.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                logger.info("moto server ready at %s (process %d)", url, process.pid)
                return endpoint
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    endpoint.stop()
    raise RuntimeError(f"the moto server did not respond within {_START_TIMEOUT_S:.0f} s; see {log_path}")


def custom_endpoint(url: str, region: str) -> Endpoint:
    """Use an SQS/SNS-compatible server the user runs (ElasticMQ, LocalStack, a moto server)."""
    return Endpoint(EndpointKind.CUSTOM, url.rstrip("/"), region, dict(LOCAL_CREDENTIALS))


def aws_endpoint(region: str) -> Endpoint:
    """Use a real AWS account with the caller's own credentials chain."""
    return Endpoint(EndpointKind.AWS, None, region, {})
