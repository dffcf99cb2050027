"""A server command's refusal: why it cannot start or go on, said once, in the log's format.

In a text log it is the plain line ``phonefleet api: …`` on stderr, as a person at a terminal
expects; in a json log (``PHONEFLEET_LOG_FORMAT=json``, containers) it is an ERROR record, so the
log stays one JSON object per line from the first line to the last.
"""

from __future__ import annotations

import logging
import sys

from device_pool.logs import log_format


def refuse(command: str, message: str) -> None:
    """Say why ``phonefleet <command>`` stops; the caller returns its exit code."""
    if log_format() == "json":
        logging.getLogger(f"orchestrator.cli.{command.replace('-', '_')}").error(message)
    else:
        print(f"phonefleet {command}: {message}", file=sys.stderr)
