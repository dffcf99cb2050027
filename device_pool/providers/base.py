"""What every provider reports and promises: ``DeviceProfile``, ``DeviceSpec``, ``Health`` and ``Provider``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class DeviceProfile(BaseModel):
    """The kind of phone: screen in pixels and dpi, Android version string, installed packages.

    Its ``model_dump(mode="json")`` is the ``profile`` column of a device row (control-plane.md).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    width: int = Field(1080, gt=0)
    height: int = Field(2400, gt=0)
    density: int = Field(420, gt=0)
    android: str = "13"
    apps: tuple[str, ...] = ()


class DeviceSpec(BaseModel):
    """One phone as its provider reports it: who owns it, where adb reaches it, what it is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str
    serial: str  # what adb calls it: host:port for TCP phones
    profile: DeviceProfile
    labels: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class Health:
    """One health check's verdict; ``latency_ms`` is the shell echo round trip (None if it never answered)."""

    ok: bool
    detail: str
    latency_ms: float | None = None


@runtime_checkable
class Provider(Protocol):
    """A source of phones (virtual phones, static ADB phones, redroid containers) the pool manager drives.

    The pool manager holds one provider per configured source and calls only these methods; it never
    knows how a phone is made. Every method is a coroutine with its own deadlines (set in the
    provider's config) and is safe to call from any event loop, one call after another or several
    at once for different serials. Serials are adb serials (``host:port`` for TCP phones).

    Errors: ``ProviderError`` subclasses for what the provider cannot do (``ProviderCapacity``,
    ``UnsupportedProfile``, ``UnknownDevice``, ``PhoneStartFailed``), ``DeviceError`` subclasses for
    a phone that failed while being talked to. A ``ValueError`` means a bad argument.

    - ``start()``: bring up what the config asks for (sim: ``count`` phones; static: ``adb connect``
      every listed phone); returns ``list()``. A phone that fails to come up is logged, not fatal,
      for static phones (health reports it); for started phones it raises ``PhoneStartFailed``.
    - ``list()``: the phones this provider has now, connectable or not. It reads no phone.
    - ``create(profile)``: a new phone in factory state, online (adb state ``device``), on its home
      screen, and in ``list()``; ``None`` means the provider's default profile. Raises
      ``ProviderCapacity`` when it cannot make one (at its limit, or it cannot make phones at all)
      and ``UnsupportedProfile`` when it cannot make that profile.
    - ``destroy(serial)``: the phone is gone from ``list()`` and its resources are released (sim:
      process stopped, data removed; static: disconnected). Idempotent: an unknown serial is a no-op.
    - ``reset(serial)``: the phone is back in the state the next user may get — **it never hands a
      phone to the next user with the previous user's data** — connectable (state ``device``) and
      with the launcher in front. If it cannot guarantee that, it raises (``DeviceError`` or
      ``ProviderError``) and the caller must not hand the phone out. Raises ``UnknownDevice`` for a
      serial it does not have.
    - ``health(serial)``: observes over ADB, changes nothing: adb state ``device``, a shell echo round
      trip, and the screen size matching the profile. **It never raises for an unhealthy phone** —
      offline, hung, killed or wrong-sized phones come back as ``Health(ok=False, detail=…)`` within
      the provider's health deadline. It raises only for programming errors (``UnknownDevice``).
    - ``close()``: releases everything the provider started (no child process survives it).
      Idempotent. Static phones are disconnected, never changed.
    """

    name: str

    async def start(self) -> list[DeviceSpec]:
        """Bring up the phones the config lists; returns ``list()``."""
        ...

    async def list(self) -> list[DeviceSpec]:
        """The phones this provider has now."""
        ...

    async def create(self, profile: DeviceProfile | None = None) -> DeviceSpec:
        """A new phone in factory state, online and on its home screen."""
        ...

    async def destroy(self, serial: str) -> None:
        """Release the phone; a serial the provider does not have is a no-op."""
        ...

    async def reset(self, serial: str) -> None:
        """Back to the state the next user may get, connectable and on the home screen."""
        ...

    async def health(self, serial: str) -> Health:
        """Observe the phone; an unhealthy phone is reported, never raised."""
        ...

    async def close(self) -> None:
        """Release everything this provider started."""
        ...


@runtime_checkable
class PersonalData(Protocol):
    """A provider that can run a phone on a personal phone's data, kept apart from the phone itself
    (docs/personal-phones.md): the virtual phone (a data directory each) and redroid (a volume each).

    - ``attach(serial, personal_phone_id)``: the phone runs on that personal phone's data from now
      on (made in factory state the first time), online and connectable. The phone's previous data
      is not carried over.
    - ``detach(serial)``: the personal phone's data is kept where it lives, and the phone runs on
      data of its own again, in factory state. ``reset`` of an attached phone detaches it first:
      a reset never wipes a personal phone's data.
    - ``remove_data(personal_phone_id)``: its data is gone for good; no phone may run on it.

    A provider whose personal data lives on its own pool's host (redroid: a Docker volume on that
    pool's engine) sets ``personal_data_local = True``: a phone woken there is pinned to that pool,
    its *home pool* (``personal_phones.home_pool``), since another pool would find no data and
    start an empty phone. The virtual phone's directories are one shared folder in deployments
    (``personal_phones.data_dir``): every pool reaches them, so it leaves the default, False.
    """

    personal_data_local: bool = False

    async def attach(self, serial: str, personal_phone_id: uuid.UUID) -> None: ...

    async def detach(self, serial: str) -> None: ...

    async def remove_data(self, personal_phone_id: uuid.UUID) -> None: ...


__all__ = ["DeviceProfile", "DeviceSpec", "Health", "PersonalData", "Provider"]
