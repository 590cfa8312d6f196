"""drainsim: simulate and measure how a Lambda should drain an SQS delay queue into an SNS topic."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
