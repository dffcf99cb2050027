"""Personal phones: a user's persistent phone, whose data outlives any device it runs on.

The rows only (docs/personal-phones.md has the whole design): who owns a phone, its name and
device shape, and where its data is now (``state``). Waking a phone on a device, keeping its data
when the device is released, stopping an idle one and removing a deleted one's data are the pool's
(``device_pool/pool/personal.py``, the pool manager).

Visibility: a phone belongs to the user and tenant that made it. Its owner reads, renames, deletes
and uses it; an admin of the tenant also lists (``scope=tenant``), reads and deletes it, but never
runs a task or session on another user's phone (its data holds that user's logins). Another
tenant's phone is not found, whatever the route.

Deleting marks the row (``deleted_at``), hidden from every read at once; the pool manager stops
its device, removes its data and deletes the row. A phone that a task or session holds now, or
that is waking or going to sleep, is refused (409): its device is mid-change.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, insert, select, update

from orchestrator.db import DbSession, Event, PersonalPhone, PersonalPhoneState, Schedule, utcnow
from orchestrator.db.database import Database
from orchestrator.db.pagination import Page, newest_first, time_page
from orchestrator.db.quotas import refusal as quota_refusal
from orchestrator.errors import (
    ConfirmationMismatch,
    LimitReached,
    PermissionDenied,
    PersonalPhoneInUse,
    PersonalPhoneNotFound,
    PersonalPhoneQuota,
    PersonalPhonesUnsupported,
)
from orchestrator.profiles import profile_match
from orchestrator.services.audit import record_audit
from orchestrator.services.auth import Principal
from orchestrator.services.specs import MAX_PROFILE_BYTES, AllowedApps, ProfileName, _json_size

__all__ = [
    "PersonalPhoneService",
    "PersonalPhoneSpec",
    "PersonalPhoneUpdate",
    "check_own_phone",
    "delete_phones_of",
    "pause_schedules_on",
]

logger = logging.getLogger(__name__)

# Providers whose phones can be started on a personal phone's data (static ADB phones cannot: the
# pool neither makes nor restarts them, so a user's data could not be kept apart from the next one).
SUPPORTED_PROVIDERS = frozenset({"sim", "redroid"})
# Why a schedule whose task names a deleted personal phone paused (schedules.paused_reason).
PHONE_DELETED = "personal_phone_deleted"
# Held or mid-change: its device must not be touched by a delete.
_BUSY = (PersonalPhoneState.IN_USE, PersonalPhoneState.WAKING, PersonalPhoneState.SLEEPING)

Name = Field(min_length=1, max_length=200, description="What you call it (1–200 characters).")


def _clean(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


class PersonalPhoneSpec(BaseModel):
    """A new personal phone (``POST /api/v1/personal-phones``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Name
    device_profile: dict[str, Any] | ProfileName | None = Field(
        default=None,
        description="The device it runs on must match this, as for tasks: an object, or a profile name.",
    )
    allowed_apps: AllowedApps = None  # every task on it is held to these too (docs/security.md)

    _name = field_validator("name", mode="after")(classmethod(lambda cls, v: _clean(v)))

    @field_validator("device_profile", mode="after")
    @classmethod
    def _profile(cls, value: dict[str, Any] | str | None) -> dict[str, Any] | str | None:
        if isinstance(value, dict):
            _json_size(value, MAX_PROFILE_BYTES)  # the tasks' rule: ≤ 4 KB, storable JSON
        return value


class PersonalPhoneUpdate(BaseModel):
    """A rename, or a new app allowlist (``PATCH /api/v1/personal-phones/{id}``)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="A new name; absent: unchanged."
    )
    # Absent: unchanged; null: any app from now on.
    allowed_apps: AllowedApps = None

    _name = field_validator("name", mode="after")(
        classmethod(lambda cls, v: None if v is None else _clean(v))
    )


class PersonalPhoneService:
    """Personal phone rows for one caller at a time."""

    def __init__(
        self,
        db: Database,
        *,
        provider: str,
        max_per_user: int,
        profiles: Mapping[str, dict[str, Any]] | None = None,
        quotas: Any = None,
    ) -> None:
        self.db = db
        self.quotas = quotas  # settings.quotas: the tenants' default limits (max_personal_phones)
        self.provider = provider
        self.max_per_user = max_per_user
        self.profiles = dict(profiles or {})

    async def create(
        self,
        principal: Principal,
        spec: PersonalPhoneSpec,
        *,
        phone_id: uuid.UUID | None = None,
        home_pool: str | None = None,
    ) -> PersonalPhone:
        """A new, asleep personal phone of the caller (``phone_id``: an import's, whose data is in
        place already, on pool ``home_pool``'s host where the data is local to a pool). Raises ``PersonalPhonesUnsupported`` (409: the
        pool's provider cannot keep data), ``PersonalPhoneQuota`` (409), ``UnknownDeviceProfile`` (422)."""
        if self.provider not in SUPPORTED_PROVIDERS:
            raise PersonalPhonesUnsupported(
                f"the pool's provider {self.provider!r} cannot keep a phone's data between uses; "
                f"personal phones need one of {', '.join(sorted(SUPPORTED_PROVIDERS))} (pool.provider)",
                context={"provider": self.provider},
            )
        match = profile_match(spec.device_profile, self.profiles)
        now = utcnow()
        async with self.db.transaction(write=True) as db_session:
            owned = await db_session.scalar(
                select(func.count())
                .select_from(PersonalPhone)
                .where(*_of_user(principal), PersonalPhone.deleted_at.is_(None))
            )
            if (owned or 0) >= self.max_per_user:
                raise PersonalPhoneQuota(
                    f"you have {owned} personal phones, the most a user may have "
                    f"(personal_phones.max_per_user = {self.max_per_user}); delete one first",
                    context={"max_per_user": self.max_per_user},
                )
            over = await quota_refusal(db_session, principal.tenant_id, self.quotas, "personal_phone")
            if over is not None:
                raise LimitReached(f"{over}; delete one first")
            row = PersonalPhone(
                id=phone_id or uuid.uuid4(), created_at=now, updated_at=now, tenant_id=principal.tenant_id,
                user_id=principal.user_id, name=spec.name, state=PersonalPhoneState.ASLEEP,
                device_profile=match, allowed_apps=spec.allowed_apps, home_pool=home_pool,
            )  # fmt: skip
            db_session.add(row)
            await db_session.flush()
            await _event(db_session, row, "personal_phone.created", {"name": row.name})
        logger.info("personal phone created", extra={"personal_phone_id": str(row.id)})
        return row

    async def list(
        self, principal: Principal, *, scope: Literal["mine", "tenant"], limit: int, cursor: str | None
    ) -> Page[PersonalPhone]:
        """The caller's phones (``mine``) or, for an admin, the tenant's (``tenant``), newest first."""
        if scope == "tenant" and not principal.is_admin:
            raise PermissionDenied("scope=tenant lists every user's personal phones: admins only")
        query = select(PersonalPhone).where(
            PersonalPhone.tenant_id == principal.tenant_id, PersonalPhone.deleted_at.is_(None)
        )
        if scope == "mine":
            query = query.where(PersonalPhone.user_id == principal.user_id)
        query = newest_first(query, PersonalPhone, cursor=cursor, limit=limit)
        async with self.db.transaction() as db_session:
            return time_page(list(await db_session.scalars(query)), limit)

    async def get(self, principal: Principal, phone_id: uuid.UUID) -> PersonalPhone:
        """The phone, for its owner or an admin of its tenant; raises ``PersonalPhoneNotFound``."""
        async with self.db.transaction() as db_session:
            row = await _load(db_session, principal, phone_id, admin_too=True)
        return row

    async def owned(self, principal: Principal, phone_id: uuid.UUID) -> PersonalPhone:
        """The caller's own phone, to run a task or session on; raises ``PersonalPhoneNotFound``
        (also for another user's phone of the same tenant: nobody else uses its logins)."""
        async with self.db.transaction() as db_session:
            return await _load(db_session, principal, phone_id, admin_too=False)

    async def rename(
        self, principal: Principal, phone_id: uuid.UUID, spec: PersonalPhoneUpdate
    ) -> PersonalPhone:
        """A new name for the caller's own phone; raises ``PersonalPhoneNotFound``."""
        async with self.db.transaction(write=True) as db_session:
            row = await _load(db_session, principal, phone_id, admin_too=False)
            values: dict[str, Any] = {"updated_at": utcnow()}
            if spec.name is not None:
                values["name"] = spec.name
            if "allowed_apps" in spec.model_fields_set:
                values["allowed_apps"] = spec.allowed_apps
            await db_session.execute(
                update(PersonalPhone)
                .where(PersonalPhone.id == row.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        return await self.get(principal, phone_id)

    async def delete(self, principal: Principal, phone_id: uuid.UUID, confirm: str | None) -> PersonalPhone:
        """Mark the phone deleted (the pool removes its data for good); ``confirm`` must be its name.

        Raises ``PersonalPhoneNotFound``, ``ConfirmationMismatch`` (422), ``PersonalPhoneInUse`` (409).
        """
        now = utcnow()
        async with self.db.transaction(write=True) as db_session:
            row = await _load(db_session, principal, phone_id, admin_too=True)
            if confirm != row.name:
                raise ConfirmationMismatch(
                    f"deleting a personal phone removes its data for good: repeat its name as "
                    f"?confirm={row.name}",
                    context={"personal_phone_id": str(row.id)},
                )
            result = await db_session.execute(
                update(PersonalPhone)
                .where(PersonalPhone.id == row.id, PersonalPhone.state.not_in(_BUSY))
                .values(deleted_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                raise PersonalPhoneInUse(
                    f"personal phone {row.id} is {row.state.value}: end its task or session first",
                    context={"personal_phone_id": str(row.id), "state": row.state.value},
                )
            await _event(db_session, row, "personal_phone.deleted", {"name": row.name})
            await pause_schedules_on(db_session, row.tenant_id, [row.id])
            await record_audit(db_session, principal, "personal_phone.delete", target=f"personal_phone:{row.id}",
                               detail={"name": row.name, "user_id": str(row.user_id)})  # fmt: skip
        logger.info("personal phone deleted", extra={"personal_phone_id": str(phone_id)})
        row.deleted_at = now
        return row


async def delete_phones_of(
    db_session: DbSession, tenant_id: uuid.UUID, *, user_id: uuid.UUID | None = None, refuse_busy: bool = False
) -> int:
    """Mark every personal phone of the tenant (or of one user of it) deleted, in the caller's
    transaction: hidden at once; the pool manager then stops its device and removes its data (volume
    or data folder) and row. For deleting a tenant (``services/tenants.py``) or a user
    (``services/api_keys.py``). How many.

    ``refuse_busy``: lock the phones first and raise ``PersonalPhoneInUse`` (409), changing nothing,
    if one is in use, waking or going to sleep (as deleting one phone does)."""
    now = utcnow()
    where = [PersonalPhone.tenant_id == tenant_id, PersonalPhone.deleted_at.is_(None)]
    if user_id is not None:
        where.append(PersonalPhone.user_id == user_id)
    if refuse_busy:
        phones = (await db_session.execute(
            select(PersonalPhone.id, PersonalPhone.state).where(*where).order_by(PersonalPhone.id).with_for_update()
        )).all()  # fmt: skip
        busy = next((p for p in phones if p.state in _BUSY), None)
        if busy is not None:
            raise PersonalPhoneInUse(
                f"personal phone {busy.id} is {busy.state.value}: end its task or session first",
                context={"personal_phone_id": str(busy.id), "state": busy.state.value},
            )
    deleted = list((await db_session.execute(
        update(PersonalPhone).where(*where).values(deleted_at=now, updated_at=now)
        .returning(PersonalPhone.id).execution_options(synchronize_session=False)
    )).scalars())  # fmt: skip
    await pause_schedules_on(db_session, tenant_id, deleted)
    return len(deleted)


async def pause_schedules_on(
    db_session: DbSession, tenant_id: uuid.UUID, phone_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    """Pause the tenant's running schedules whose task names one of these (deleted) personal phones,
    in the caller's transaction: ``paused_reason`` "personal_phone_deleted" and a ``schedule.paused``
    event each. Paused, not deleted: the schedule keeps its task, for its owner to point at another
    phone (PATCH) and resume. The ids it paused."""
    if not phone_ids:
        return []
    # The scheduler imports this module: its schedule events are read from it here, at call time.
    from orchestrator.services.scheduler import PAUSED, add_schedule_event

    named = Schedule.task["personal_phone_id"].as_string()
    paused = list((await db_session.execute(
        update(Schedule)
        .where(Schedule.tenant_id == tenant_id, Schedule.paused.is_(False),
               named.in_([str(p) for p in phone_ids]))
        .values(paused=True, paused_reason=PHONE_DELETED, updated_at=utcnow())
        .returning(Schedule.id, named).execution_options(synchronize_session=False)
    )).all())  # fmt: skip
    for schedule_id, phone_id in paused:
        await add_schedule_event(db_session, tenant_id, PAUSED, {
            "schedule_id": str(schedule_id), "reason": PHONE_DELETED, "personal_phone_id": phone_id})  # fmt: skip
        logger.info("schedule paused: its personal phone was deleted",
                    extra={"schedule_id": str(schedule_id), "personal_phone_id": phone_id})  # fmt: skip
    return [row[0] for row in paused]


async def check_own_phone(
    phones: PersonalPhoneService | None, principal: Principal, phone_id: uuid.UUID | None
) -> None:
    """A task, a schedule's task or a session that names a personal phone must name the caller's
    own: raises ``PersonalPhoneNotFound`` otherwise (404, also for another user's phone of the same
    tenant), and where no personal phone service is wired (a sweeper's services make none of these)."""
    if phone_id is None:
        return
    if phones is None:
        raise PersonalPhoneNotFound(phone_id)
    await phones.owned(principal, phone_id)


def _of_user(principal: Principal) -> tuple[Any, ...]:
    return (PersonalPhone.tenant_id == principal.tenant_id, PersonalPhone.user_id == principal.user_id)


async def _load(
    db_session: DbSession, principal: Principal, phone_id: uuid.UUID, *, admin_too: bool
) -> PersonalPhone:
    query = select(PersonalPhone).where(
        PersonalPhone.id == phone_id,
        PersonalPhone.tenant_id == principal.tenant_id,
        PersonalPhone.deleted_at.is_(None),
    )
    if not (admin_too and principal.is_admin):
        query = query.where(PersonalPhone.user_id == principal.user_id)
    row = await db_session.scalar(query)
    if row is None:
        raise PersonalPhoneNotFound(phone_id)
    return row


async def _event(db_session: DbSession, row: PersonalPhone, type_: str, payload: dict[str, Any]) -> None:
    await db_session.execute(
        insert(Event).values(
            tenant_id=row.tenant_id, task_id=None, type=type_,
            payload={"personal_phone_id": str(row.id), "user_id": str(row.user_id), **payload},
            created_at=utcnow(),
        )
    )  # fmt: skip
