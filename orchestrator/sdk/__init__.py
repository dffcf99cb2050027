"""PhoneFleet's Python SDK (docs/sdk.md): a blocking and an asyncio client over every route of REST
API v1, typed answers, pagination as iterators, the events socket as an iterator, and the API's
error codes as one exception tree.

::

    from orchestrator.sdk import AsyncClient, Client, errors

    with Client("http://127.0.0.1:8000", "pf_…") as pf:
        task = pf.submit("Open Settings and turn on Wi-Fi", max_steps=20)
        for event in pf.events(task.id):
            ...

It imports nothing of the server (only httpx, pydantic and, for the events socket, websockets);
its models and exceptions are generated from the server's (``orchestrator/sdk/generate.py``).
"""

from orchestrator.sdk import errors, models
from orchestrator.sdk._base import FINAL_STATUSES, PhoneFleetAPIError, TaskWaitTimeout
from orchestrator.sdk.client import AsyncClient, Client, Event

__all__ = [
    "FINAL_STATUSES",
    "AsyncClient",
    "Client",
    "Event",
    "PhoneFleetAPIError",
    "TaskWaitTimeout",
    "errors",
    "models",
]
