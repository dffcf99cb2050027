"""The Docker engine calls the redroid provider makes (docker SDK), blocking; the provider runs them on threads.

``engine_errors()`` is the one place where the SDK's exceptions (and the engine being unreachable)
become ``ProviderError``s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests

from device_pool.providers.errors import PortTaken, ProviderError
from device_pool.providers.redroid.config import LABEL_MANAGED, LABEL_POOL, LABEL_ROLE, parse_mount

logger = logging.getLogger(__name__)

_LOG_TAIL_LINES = 40


class PortBusy(PortTaken):
    """The engine could not publish the phone's host port: something else holds it."""


class VolumeTooLarge(ProviderError):
    """A volume read for an export holds more than the caller allows."""


@dataclass(frozen=True)
class Container:
    """One of our containers as the engine lists it."""

    id: str
    name: str
    status: str  # created, running, exited, dead …
    exit_code: int | None
    labels: dict[str, str]
    volumes: tuple[str, ...]  # names of the named volumes it mounts


@contextmanager
def engine_errors(provider: str, url: str, what: str) -> Iterator[None]:
    """Translate the SDK's failures into ProviderError (``raise … from``), naming the engine and the step."""
    try:
        yield
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise ProviderError(f"docker engine at {url}: {what}: {_message(exc)}", provider=provider) from exc


class Engine:
    """A Docker engine, reached lazily (the client is built on first use, so a down engine fails a call, not __init__)."""

    def __init__(self, url: str, *, provider: str, timeout_s: float) -> None:
        self.url = url
        self.provider = provider
        self._timeout = max(int(timeout_s), 1)
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                with engine_errors(self.provider, self.url, "connect"):
                    self._client = docker.DockerClient(base_url=self.url, timeout=self._timeout)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def info(self) -> dict[str, Any]:
        with engine_errors(self.provider, self.url, "docker info"):
            return self.client().info()

    def ensure_image(self, ref: str, *, pull: bool) -> None:
        """The image is present, or pulled when ``pull``; a clear ProviderError otherwise."""
        client = self.client()
        with engine_errors(self.provider, self.url, f"image {ref}"):
            try:
                client.images.get(ref)
                return
            except docker.errors.ImageNotFound:
                if not pull:
                    raise ProviderError(
                        f"image {ref} is not on the engine at {self.url} and pull is 'never': "
                        f"`docker pull {ref}` (or load it) first",
                        provider=self.provider,
                    ) from None
            logger.info("pulling image", extra={"image": ref})
            repository, _, tag = ref.rpartition(":")
            client.images.pull(repository, tag=tag)

    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        with engine_errors(self.provider, self.url, f"create volume {name}"):
            self.client().volumes.create(name=name, labels=labels)

    def remove_volume(self, name: str) -> None:
        """Remove a volume; one already gone is fine."""
        with engine_errors(self.provider, self.url, f"remove volume {name}"):
            try:
                self.client().volumes.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass

    def volume_labels(self, name: str) -> dict[str, str] | None:
        """A volume's labels; None when there is no such volume."""
        with engine_errors(self.provider, self.url, f"inspect volume {name}"):
            try:
                volume = self.client().volumes.get(name)
            except docker.errors.NotFound:
                return None
            return dict(volume.attrs.get("Labels") or {})

    def has_volume(self, name: str) -> bool:
        with engine_errors(self.provider, self.url, f"inspect volume {name}"):
            try:
                self.client().volumes.get(name)
            except docker.errors.NotFound:
                return False
            return True

    def run(
        self,
        *,
        name: str,
        image: str,
        command: list[str],
        labels: dict[str, str],
        volumes: dict[str, tuple[str, str]],  # source (volume name or host path) → (target, mode)
        network_mode: str,
        ports: dict[str, tuple[str, int]] | None,
        environment: dict[str, str],
        privileged: bool,
        memory_mb: int,
        cpus: float,
        devices: tuple[str, ...],
        entrypoint: list[str] | None = None,
    ) -> str:
        """Create and start a detached container; its id. PortBusy when its published port is taken."""
        client = self.client()
        kwargs: dict[str, Any] = {
            "name": name,
            "command": command,
            "labels": labels,
            "volumes": {src: {"bind": dst, "mode": mode} for src, (dst, mode) in volumes.items()},
            "network_mode": network_mode,
            "environment": environment,
            "privileged": privileged,
            "mem_limit": f"{memory_mb}m",
            "nano_cpus": int(cpus * 1e9),
            "devices": [d if d.count(":") >= 2 else f"{d}:rwm" for d in devices],
            "stdin_open": True,  # redroid's init expects a console, as `docker run -it` gives it
            "tty": True,
            "detach": True,
        }
        if ports:
            kwargs["ports"] = ports
        if entrypoint is not None:
            kwargs["entrypoint"] = entrypoint
        with engine_errors(self.provider, self.url, f"run {name}"):
            try:
                container = client.containers.create(image, **kwargs)
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # a leftover of ours with this name: replace it
                    self.remove(name, stop_timeout_s=1)
                    container = client.containers.create(image, **kwargs)
                else:
                    raise
            try:
                container.start()
            except docker.errors.APIError as exc:
                container.remove(force=True)
                text = _message(exc)
                if "port is already allocated" in text or "address already in use" in text:
                    raise PortBusy(text) from exc
                raise
            return container.id

    def inspect(self, ref: str) -> Container | None:
        """The container by id or name; None when it is gone."""
        with engine_errors(self.provider, self.url, f"inspect {ref}"):
            try:
                c = self.client().containers.get(ref)
            except docker.errors.NotFound:
                return None
            return _container(c.attrs)

    def logs(self, ref: str) -> str:
        """The last lines the container printed (for failure messages); never raises."""
        try:
            raw = self.client().containers.get(ref).logs(tail=_LOG_TAIL_LINES)
        except (docker.errors.DockerException, requests.RequestException, ProviderError) as exc:
            return f"(no logs: {_message(exc)})"
        return raw.decode("utf-8", errors="replace").strip() or "(no output)"

    def remove(self, ref: str, *, stop_timeout_s: float) -> None:
        """Stop (SIGTERM, then SIGKILL after the timeout) and remove; a container already gone is fine."""
        with engine_errors(self.provider, self.url, f"remove {ref}"):
            try:
                c = self.client().containers.get(ref)
                if c.status == "running":
                    c.stop(timeout=max(int(stop_timeout_s), 1))
                c.remove(force=True)
            except docker.errors.NotFound:
                pass

    def read_volume(self, volume: str, *, image: str, labels: dict[str, str], max_bytes: int) -> bytes:
        """The volume's contents as an (uncompressed) tar whose members are under ``data/``, owners
        and modes kept: read through a container of ``image`` that mounts it read-only at /data and
        is never started (``docker cp`` of a stopped container). ``VolumeTooLarge`` past ``max_bytes``."""
        with self._helper(volume, image=image, labels=labels, mode="ro") as container:
            chunks, _ = container.get_archive("/data")
            out = bytearray()
            for chunk in chunks:
                out += chunk
                if len(out) > max_bytes:
                    raise VolumeTooLarge(f"volume {volume} holds more than {max_bytes} bytes", provider=self.provider)
            return bytes(out)

    def fill_volume(self, volume: str, tar: bytes, *, image: str, labels: dict[str, str]) -> None:
        """A new volume ``volume`` (labelled ``labels``) holding ``tar``'s members under ``data/``,
        written through a never-started container of ``image`` that mounts it at /data (Docker
        unpacks inside that container's filesystem, so no member lands on the host). Raises
        ``ProviderError`` if the volume exists already."""
        if self.has_volume(volume):
            raise ProviderError(f"volume {volume} exists already", provider=self.provider)
        self.create_volume(volume, labels)
        try:
            with self._helper(volume, image=image, labels=labels, mode="rw") as container:
                put_archive(self.client(), container.id, "/", tar)
        except BaseException:
            self.remove_volume(volume)
            raise

    @contextmanager
    def _helper(self, volume: str, *, image: str, labels: dict[str, str], mode: str) -> Iterator[Any]:
        """A created (never started) container of ``image`` mounting ``volume`` at /data; removed after."""
        with engine_errors(self.provider, self.url, f"a helper container on volume {volume}"):
            container = self.client().containers.create(
                image, command=["true"], labels=labels, network_disabled=True,
                volumes={volume: {"bind": "/data", "mode": mode}},
            )  # fmt: skip
            try:
                yield container
            finally:
                container.remove(force=True)

    def ours(self, pool_id: str, role: str = "phone") -> list[Container]:
        """Every container (running or not) labelled as ours for this pool."""
        filters = {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_POOL}={pool_id}", f"{LABEL_ROLE}={role}"]}
        with engine_errors(self.provider, self.url, "list containers"):
            return [_container(c.attrs) for c in self.client().containers.list(all=True, filters=filters)]

    def our_volumes(self, pool_id: str, role: str = "data") -> list[str]:
        filters = {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_POOL}={pool_id}", f"{LABEL_ROLE}={role}"]}
        with engine_errors(self.provider, self.url, "list volumes"):
            return [v.name for v in self.client().volumes.list(filters=filters)]


def put_archive(client: docker.DockerClient, container_id: str, path: str, tar: bytes) -> None:
    """Unpack ``tar`` at ``path`` in the container keeping its members' owners (``docker cp -a``,
    the engine's ``copyUIDGID``): Android's apps each own their data, by uid. The SDK's
    ``put_archive`` has no such option, so the endpoint is called as it calls it, with it."""
    api = client.api
    response = api._put(
        api._url("/containers/{0}/archive", container_id), params={"path": path, "copyUIDGID": "1"}, data=tar
    )
    api._raise_for_status(response)


def binds(mounts: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """Config ``mounts`` ("SRC:DST[:ro]") in ``Engine.run``'s form."""
    return {src: (dst, mode) for src, dst, mode in map(parse_mount, mounts)}


def _container(attrs: dict[str, Any]) -> Container:
    state = attrs.get("State") or {}
    config = attrs.get("Config") or {}
    volumes = tuple(
        m["Name"] for m in attrs.get("Mounts") or () if m.get("Type") == "volume" and m.get("Name")
    )
    return Container(
        id=attrs["Id"],
        name=attrs.get("Name", "").lstrip("/"),
        status=state.get("Status", "unknown"),
        exit_code=state.get("ExitCode"),
        labels=dict(config.get("Labels") or {}),
        volumes=volumes,
    )


def _message(exc: BaseException) -> str:
    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc)
    return str(exc) or type(exc).__name__


__all__ = ["Container", "Engine", "PortBusy", "VolumeTooLarge", "binds", "engine_errors", "put_archive"]
