"""The worker's link to its broker survives a Redis restart: two small changes to Celery's worker.

**A failed acknowledgement frees its prefetch slot** (``SlotFreeingRequest``). kombu's Redis
transport stops polling its BRPOP socket while every prefetch slot is taken (``QoS.can_consume``
false: a message per busy thread), so a broker that goes away then is not noticed by the
consumer. When a run ends during the outage, its late ack fails (``Couldn't ack …
ConnectionError``) and kombu's ``QoS.ack`` raises before it frees the slot; the slot stays taken
forever, the socket is never polled again, the lost connection is never seen, and the worker
consumes nothing more, for good. Here a failed ack or reject frees the slot (the virtual
transport's own ``QoS.ack``, without the Redis bookkeeping that failed): polling resumes, the dead
socket reads as a lost connection, and Celery's consumer reconnects as it does for any other loss.
The message was not acknowledged, so the broker may deliver it again; the task's claim in the
database decides (a task already claimed or finished is not run twice).

**Reconnects are tried every few seconds, forever** (``SteadyConsumer``). kombu's
``ensure_connection`` waits 2, 4, 6 … up to 30 s between tries and Celery gives up after
``broker_connection_max_retries`` (100); here the waits stop growing at ``RECONNECT_MAX_S`` and
``make_worker_app`` sets no limit on tries, so a worker is consuming again within about
``RECONNECT_MAX_S`` of its Redis coming back, however long it was down.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from celery.worker.consumer import Consumer
from celery.worker.request import Request
from kombu.transport import virtual

__all__ = ["RECONNECT_MAX_S", "SlotFreeingRequest", "SteadyConsumer"]

logger = logging.getLogger(__name__)

RECONNECT_MAX_S = 5.0  # the longest wait between two connection tries


class SlotFreeingRequest(Request):
    """Celery's request, whose ack or reject frees the message's prefetch slot when it fails."""

    def acknowledge(self) -> None:
        if self.acknowledged:
            return
        try:
            self.message.ack()
        except (*self.connection_errors, OSError) as exc:
            _free_slot(self.message, "ack", exc)
        self.acknowledged = True

    def reject(self, requeue: bool = False) -> None:
        if self.acknowledged:
            return
        try:
            self.message.reject(requeue=requeue)
        except (*self.connection_errors, OSError) as exc:
            _free_slot(self.message, "reject", exc)
        self.acknowledged = True
        self.send_event("task-rejected", requeue=requeue)


def _free_slot(message: Any, what: str, exc: BaseException) -> None:
    qos = getattr(message.channel, "qos", None)
    if isinstance(qos, virtual.QoS):
        # The base class's ack only marks the tag done locally: no broker round trip to fail.
        virtual.QoS.ack(qos, message.delivery_tag)
    logger.warning(
        "broker connection lost: could not %s a message; its prefetch slot is freed so the consumer "
        "reconnects (a redelivery finds the task claimed)",
        what,
        extra={"delivery_tag": message.delivery_tag, "error": f"{type(exc).__name__}: {exc}"},
    )


class SteadyConsumer(Consumer):
    """Celery's consumer, whose reconnect tries wait at most ``RECONNECT_MAX_S`` apart."""

    def ensure_connected(self, conn: Any) -> Any:
        # Celery passes only (errback, max_retries, callback=); the intervals are kombu's defaults.
        conn.ensure_connection = functools.partial(
            conn.ensure_connection, interval_start=1, interval_step=1, interval_max=RECONNECT_MAX_S
        )
        return super().ensure_connected(conn)
