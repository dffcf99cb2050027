"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Enum, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["JSONType", "UTCDateTime", "str_enum", "utcnow"]

# JSONB on PostgreSQL: comparable (DISTINCT, =) and indexable (@> for profile matching); JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes, SQLite included.

    SQLite stores no zone, so values are normalised to UTC on the way in and tagged UTC on the way
    out. A naive datetime is refused: its zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware one (datetime.now(UTC))")
        value = value.astimezone(dt.UTC)
        # SQLite compares timestamps as text: store them without an offset so they sort correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def str_enum(enum_cls: type[StrEnum], name: str, length: int = 32) -> Enum:
    """A portable enum column: VARCHAR(length) plus a CHECK, holding the members' values.

    Not a native PostgreSQL ENUM, so adding a member is a constraint change on both databases;
    ``length`` leaves room for longer members later.
    """
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=_values,
        validate_strings=True,
    )


def _values(enum_cls: type[StrEnum]) -> list[Any]:
    return [member.value for member in enum_cls]
