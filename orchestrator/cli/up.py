"""``phonefleet up``: the whole product on one machine, one command.

Migrates the database, creates the first API key (the operator's, also its tenant's admin) on the first run, then starts the reference
model, the pool manager (virtual phones), the worker and the API as child processes, waits until
each answers, prints the URL and the key, and stops them all, by pid, on Ctrl-C or SIGTERM: first
the API, the worker and the model, then the pool (whose phones and adb server the others use until
they stop). An adb server that was not answering on ``--adb-port`` before ``up`` started is one of
``up``'s (the pool's, or a daemon a worker started while the pool's restarted): if one still answers
once the children are gone, it is stopped too. A child that dies takes the others down with it, and
its log tail is printed: a half-running product is worse than a stopped one.

While it runs, the API's URL is in ``{data_dir}/api-url`` (removed on exit): ``phonefleet task`` reads
it when ``PHONEFLEET_URL`` is not set, as it reads the admin key from ``{data_dir}/admin-api-key``.

Embedded defaults: SQLite under the data directory and Celery over SQLite when no Redis URL is set;
``PHONEFLEET_DATABASE_URL`` / ``PHONEFLEET_REDIS_URL`` switch the same command to PostgreSQL + Redis.
Port 0 as ``PHONEFLEET_API__PORT`` or in a local model URL: the OS picks a free port, which the
child writes to its ``--port-file`` (in the logs directory) and the URL printed here carries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.cli.port_file import write_whole

KEY_FILE = "admin-api-key"  # in data_dir, mode 0600: the laptop's own first key, shown at every start
URL_FILE = "api-url"  # in data_dir while up runs: the API's URL, for `phonefleet task`
ADB_STOP_WAIT_S = 5.0


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen
    log: Path

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def _first_admin_key(settings) -> str:
    """The key from the data directory, or, on the first run, a new key of the deployment's operator,
    who is also the admin of its own tenant ("default")."""
    from sqlalchemy import func, select

    from orchestrator.db import ApiKey, UserRole, make_engine, make_sessionmaker
    from orchestrator.services.audit import record_audit
    from orchestrator.services.auth import get_or_create_tenant, issue_api_key

    path = settings.data_dir / KEY_FILE
    if path.exists():
        return path.read_text().strip()
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db_session, db_session.begin():
            if await db_session.scalar(select(func.count()).select_from(ApiKey)):
                return ""  # keys exist already (made elsewhere): none to show
            tenant = await get_or_create_tenant(db_session, "default")
            issued = await issue_api_key(
                db_session, tenant_id=tenant.id, user_name="operator", role=UserRole.OPERATOR,
                name="phonefleet up",
            )
            await record_audit(db_session, None, "api_key.issue", target=f"api_key:{issued.row.id}",
                               detail={"tenant": "default", "user": "operator", "role": "operator",
                                       "name": "phonefleet up", "prefix": issued.row.prefix})  # fmt: skip
    finally:
        await engine.dispose()
    path.write_text(issued.key + "\n")
    path.chmod(0o600)
    return issued.key


def _start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> _Child:
    log = logs / f"{name}.log"
    with open(log, "ab") as fh:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", *argv], env=env, stdout=fh, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
        )  # fmt: skip
    return _Child(name, proc, log)


def _fresh(port_file: Path) -> Path:
    """``port_file`` with the last run's removed: only the child about to start may write it."""
    port_file.unlink(missing_ok=True)
    return port_file


def _stop(children: list[_Child], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``: the pool last, since the others use its phones and adb
    server until they have stopped (a worker finishing a step, the API closing a live view)."""
    users = [child for child in reversed(children) if child.name != "pool"]
    pool = [child for child in children if child.name == "pool"]
    for phase in (users, pool):
        for child in phase:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in phase:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()


def _adb_answers(port: int) -> bool:
    from device_pool.driver import AdbServerClient
    from device_pool.errors import DeviceError

    async def probe() -> bool:
        try:
            await AdbServerClient(port=port).version(timeout=1.0)
            return True
        except DeviceError:
            return False

    return asyncio.run(probe())


def _stop_adb_server(port: int) -> None:
    """Stop the adb server on ``port`` (``host:kill``; SIGKILL for one that ignores it) and wait
    until the port is free."""
    from device_pool.driver import AdbServerClient
    from device_pool.errors import DeviceError
    from device_pool.pool.adb_supervisor import adb_listeners

    async def kill() -> None:
        try:
            await AdbServerClient(port=port).kill(timeout=2.0)
        except DeviceError:
            pass

    asyncio.run(kill())
    deadline = time.monotonic() + ADB_STOP_WAIT_S
    while adb_listeners(port) and time.monotonic() < deadline:
        time.sleep(0.1)  # a shutdown poll, not test synchronisation
    for pid in adb_listeners(port):  # wedged: it did not obey host:kill
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _stop_all(children: list[_Child], adb_port: int, adb_was_running: bool) -> None:
    _stop(children)
    if not adb_was_running and _adb_answers(adb_port):
        print(f"phonefleet up: stopping the adb server on port {adb_port}", flush=True)
        _stop_adb_server(adb_port)


def _wait_http(url: str, children: list[_Child], timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}")
        try:
            if httpx.get(url, timeout=2.0, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # a start-up poll, not test synchronisation
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


def _local_port(base_url: str) -> int | None:
    """The port of a model URL served on this machine, else None (a remote vLLM needs no reference model)."""
    parts = urlsplit(base_url)
    if parts.hostname in ("127.0.0.1", "localhost"):
        return 80 if parts.port is None else parts.port  # 0: any free one, read back from its port file
    return None


def _with_port(base_url: str, port: int) -> str:
    parts = urlsplit(base_url)
    return parts._replace(netloc=f"{parts.hostname}:{port}").geturl()


def _wait_port(port_file: Path, children: list[_Child], timeout: float) -> int:
    """The port the last child wrote to ``port_file`` once listening (the OS's choice for port 0)."""
    from orchestrator.cli.port_file import read_port_file

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}")
        port = read_port_file(port_file)
        if port is not None:
            return port
        time.sleep(0.1)  # a start-up poll, not test synchronisation
    raise RuntimeError(f"{children[-1].name} did not listen within {timeout:g} s")


_ENDPOINT_OPTIONS = ("family", "script", "model", "role", "planner", "grounder")
_ROLES = ("agent", "planner", "grounder")  # the reference model's --role


def _reference_endpoint(spec: str) -> dict[str, str]:
    """``NAME[,family=F][,script=PATH][,model=SERVED][,role=R]``, or a pair of two others
    ``NAME,planner=P,grounder=G`` (no server of its own) → its parts; ValueError when unreadable."""
    name, *options = spec.split(",")
    parts = {"name": name.strip()}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key.strip() not in _ENDPOINT_OPTIONS or not value.strip():
            raise ValueError(
                f"--reference-endpoint {spec!r}: {option!r} is not one of {', '.join(_ENDPOINT_OPTIONS)}=…"
            )
        parts[key.strip()] = value.strip()
    if parts.get("role", "agent") not in _ROLES:
        raise ValueError(f"--reference-endpoint {spec!r}: role is one of {', '.join(_ROLES)}")
    if "script" in parts:
        parts["script"] = str(Path(parts["script"]).expanduser().resolve())
    return parts


def _is_pair(e: dict[str, str]) -> bool:
    return "planner" in e or "grounder" in e


def _extra_json(e: dict[str, str], base_url: str) -> dict[str, str | None]:
    """A --reference-endpoint as a model.endpoints entry, its server at ``base_url`` (a pair has none)."""
    if _is_pair(e):
        return {"name": e["name"], "planner": e.get("planner"), "grounder": e.get("grounder")}
    return {"name": e["name"], "base_url": base_url, "model": e.get("model", e["name"]),
            "family": e.get("family", "autoglm")}  # fmt: skip


def _endpoint_json(ep) -> dict:
    data = ep.model_dump(mode="json", exclude={"api_key"})
    return {**data, "api_key": ep.api_key.get_secret_value()}


def _cmd_up(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from orchestrator.db.migrate import upgrade
    from orchestrator.settings import ModelSettings, load_settings
    from orchestrator.vault_cipher import vault_key

    try:
        settings = load_settings()
        extra = [_reference_endpoint(spec) for spec in args.reference_endpoint or []]
        # Checked now, with stand-in URLs: a name used twice or an unknown family starts nothing.
        ModelSettings(endpoints=[*map(_endpoint_json, settings.model.all_endpoints()),
                                 *(_extra_json(e, "http://127.0.0.1:1/v1") for e in extra)])  # fmt: skip
    except (ValidationError, ValueError) as exc:
        print(f"phonefleet up: {exc}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs = settings.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    print(f"phonefleet up: data in {settings.data_dir}; database {settings.database_url.split('://')[0]}; "
          f"broker {'Redis' if settings.redis_url else 'SQLite'}", flush=True)  # fmt: skip
    try:
        asyncio.run(upgrade(settings.database_url))
        key = asyncio.run(_first_admin_key(settings))
        # The vault's key ({data_dir}/vault.key unless vault.key is set): made on the first start,
        # so secrets can be stored at once; the API and the workers read the same file.
        vault_key(settings)
    except Exception as exc:  # an unreachable database: one clear line, nothing started
        print(f"phonefleet up: cannot prepare the database: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1

    # Children read the same settings from the environment; pin what was derived here.
    env = dict(
        os.environ, PHONEFLEET_DATA_DIR=str(settings.data_dir), PHONEFLEET_DATABASE_URL=settings.database_url
    )
    children: list[_Child] = []
    stopping = False
    # Not answering now: whatever answers on the port later was started for this run, and goes with it.
    adb_was_running = _adb_answers(args.adb_port)
    url_file = settings.data_dir / URL_FILE

    def on_signal(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        model_port = _local_port(settings.model.base_url)
        if model_port is not None and not args.no_reference_model:
            port_file = _fresh(logs / "reference-model.port")
            children.append(_start("reference-model", ["reference-model", "--port", str(model_port),
                                   "--port-file", str(port_file), "--model-name", settings.model.name],
                                   env, logs))  # fmt: skip
            model_port = _wait_port(port_file, children, 60)
            env["PHONEFLEET_MODEL__BASE_URL"] = _with_port(settings.model.base_url, model_port)
            _wait_http(f"http://127.0.0.1:{model_port}/healthz", children, 60)
        endpoints = [_endpoint_json(ep) for ep in settings.model.all_endpoints()]
        if not settings.model.endpoints and "PHONEFLEET_MODEL__BASE_URL" in env:
            endpoints[0]["base_url"] = env["PHONEFLEET_MODEL__BASE_URL"]  # the one just started
        for e in extra:  # a reference model of its own for each --reference-endpoint (a pair: none)
            if _is_pair(e):
                endpoints.append(_extra_json(e, ""))
                continue
            served, family = e.get("model", e["name"]), e.get("family", "autoglm")
            port_file = _fresh(logs / f"reference-model-{e['name']}.port")
            command = ["reference-model", "--port", "0", "--port-file", str(port_file), "--model-name", served,
                       "--family", family, *(["--script", e["script"]] if "script" in e else []),
                       *(["--role", e["role"]] if "role" in e else [])]  # fmt: skip
            children.append(_start(f"reference-model-{e['name']}", command, env, logs))
            port = _wait_port(port_file, children, 60)
            _wait_http(f"http://127.0.0.1:{port}/healthz", children, 60)
            endpoints.append(_extra_json(e, f"http://127.0.0.1:{port}/v1"))
        if extra:  # the API and the worker read every endpoint from here
            env["PHONEFLEET_MODEL__ENDPOINTS"] = json.dumps(endpoints)
        children.append(_start("pool", ["pool", "--adb-port", str(args.adb_port)], env, logs))
        children.append(_start("worker", ["worker", "--concurrency", str(args.concurrency),
                                          "--adb-port", str(args.adb_port)], env, logs))  # fmt: skip
        # The live view reaches phones through the same adb server as the pool and worker.
        port_file = _fresh(logs / "api.port")
        children.append(_start("api", ["api", "--port-file", str(port_file)],
                               {**env, "PHONEFLEET_WEBRTC__ADB_PORT": str(args.adb_port)}, logs))  # fmt: skip
        api = f"http://{settings.api.host}:{_wait_port(port_file, children, 60)}"
        _wait_http(f"{api}/healthz", children, 60)
    except RuntimeError as exc:
        print(f"phonefleet up: {exc}", file=sys.stderr)
        _stop_all(children, args.adb_port, adb_was_running)
        return 1
    write_whole(url_file, api + "\n")
    print(f"\nPhoneFleet is running at {api}  (API docs: {api}/docs)", flush=True)
    if key:
        print(
            f"Admin API key: {key}\n  (the operator's, also the admin of tenant 'default'; kept in "
            f"{settings.data_dir / KEY_FILE}; use it as 'Authorization: Bearer …')",
            flush=True,
        )
    print(f"Logs: {logs}   Ctrl-C stops everything.", flush=True)
    code = 0
    while not stopping:
        dead = next((c for c in children if c.proc.poll() is not None), None)
        if dead is not None:
            print(f"phonefleet up: {dead.name} exited with {dead.proc.returncode}; stopping.\n{dead.tail()}",
                  file=sys.stderr)  # fmt: skip
            code = 1
            break
        time.sleep(0.2)
    print("phonefleet up: stopping…", flush=True)
    url_file.unlink(missing_ok=True)
    _stop_all(children, args.adb_port, adb_was_running)
    return code


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "up", help="run the whole product on this machine (API, worker, pool, phones, model)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=3, help="runs the worker holds at once (one task each)"
    )
    parser.add_argument("--adb-port", type=int, default=5037, help="the adb server the pool and worker share")
    parser.add_argument(
        "--no-reference-model",
        action="store_true",
        help="do not start the reference model (a real one is at the model URL)",
    )
    parser.add_argument(
        "--reference-endpoint", action="append", default=None,
        metavar="NAME[,family=F][,script=PATH][,model=M][,role=R] | NAME,planner=P,grounder=G",
        help="start one more reference model (rules, or replaying a script; role agent, planner or grounder) "
        "as the model endpoint NAME, or name a pair of two endpoints; repeatable (docs/models.md)",
    )  # fmt: skip
    parser.set_defaults(func=_cmd_up)
