"""The agent for one phone: the phone reached through an adb server, and a client of the model.

``phone_agent(serial, model)`` is how every entry point builds it (the worker's run,
``phonefleet run``): it connects the phone, opens the model client, and yields a ``PhoneAgent``
whose ``run`` drives ``run_agent``; leaving the block closes what it opened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis

from device_pool.driver import AdbDevice, AdbServerClient
from device_pool.errors import DeviceOffline
from worker.agent.app_policy import AppPolicy
from worker.agent.loop import AgentConfig, run_agent
from worker.agent.model_client import ModelClient, ModelClientConfig
from worker.agent.results import AgentResult
from worker.agent.steering import AgentHooks, AgentSteering

__all__ = ["PhoneAgent", "connect_phone", "phone_agent"]

_SERVER_ANSWER_S = 5.0  # a live server answers host:version in milliseconds; a wedged one never


async def connect_phone(serial: str, *, adb_host: str = "127.0.0.1", adb_port: int = 5037) -> AdbDevice:
    """The phone ``serial`` through the adb server at ``adb_host:adb_port``.

    The server is someone else's: the pool's (``phonefleet pool`` starts and supervises it), or the
    one ``phonefleet run`` holds for its run. None is started here: a daemon started by a worker
    would outlive the worker and the pool, owned by nobody. A TCP phone (``host:port``) is
    connected to that server first. Raises ``DeviceError`` (``DeviceOffline`` when no server
    answers) when the phone cannot be reached.
    """
    server = AdbServerClient(adb_host, adb_port)
    try:
        await server.version(timeout=_SERVER_ANSWER_S)
    except DeviceOffline as exc:
        raise DeviceOffline(
            f"no adb server answers at {adb_host}:{adb_port} (the pool's: is `phonefleet pool` "
            f"running with --adb-port {adb_port}?)",
            command="host:version",
        ) from exc
    device = AdbDevice(serial, server=server)
    if ":" in serial:
        await device.connect()
    return device


@dataclass(frozen=True)
class PhoneAgent:
    """A connected phone and an open model client, ready to run tasks one after another."""

    device: AdbDevice
    model: ModelClient
    grounder: ModelClient | None = None  # a planner/grounder pair's grounder (``model`` is its planner)

    async def run(
        self,
        task: str,
        *,
        config: AgentConfig | None = None,
        hooks: AgentHooks | None = None,
        steering: AgentSteering | None = None,
        earlier_tries: str | None = None,
        app_policy: AppPolicy | None = None,
    ) -> AgentResult:
        """Run ``task`` on the phone until it ends (``run_agent``)."""
        return await run_agent(
            task, self.device, self.model, config=config, hooks=hooks, steering=steering,
            earlier_tries=earlier_tries, app_policy=app_policy, grounder=self.grounder,
        )  # fmt: skip


@asynccontextmanager
async def phone_agent(
    serial: str,
    model: ModelClientConfig,
    *,
    adb_host: str = "127.0.0.1",
    adb_port: int = 5037,
    redis_url: str | None = None,
    grounder: ModelClientConfig | None = None,
) -> AsyncIterator[PhoneAgent]:
    """The agent for the phone ``serial``, talking to the model ``model`` describes.

    The phone is connected before anything else opens, so a ``DeviceError`` on entry means the
    phone is unreachable. ``redis_url`` makes the model's in-flight cap hold across every process
    sharing the model server. ``grounder``: a planner/grounder pair's grounder (``model`` is then
    the planner; the run's ``AgentConfig.grounder_family`` names the grounder's family).
    """
    device = await connect_phone(serial, adb_host=adb_host, adb_port=adb_port)
    async with AsyncExitStack() as stack:
        # A bounded connect: an unreachable Redis must fail fast, so the model cap falls back to local.
        shared = aioredis.Redis.from_url(redis_url, socket_connect_timeout=5) if redis_url else None
        if shared is not None:
            stack.push_async_callback(shared.aclose)
        client = await stack.enter_async_context(ModelClient(model, redis=shared))
        grounding = None
        if grounder is not None:
            grounding = await stack.enter_async_context(ModelClient(grounder, redis=shared))
        yield PhoneAgent(device, client, grounding)
