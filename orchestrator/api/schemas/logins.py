"""Request and response bodies of the dashboard login routes (``/api/v1/auth``)."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.db import UserRole
from orchestrator.services.specs import plain_text

__all__ = ["LoginIn", "LoginOut", "WhoAmIOut"]


class LoginIn(BaseModel):
    """Log in to the dashboard with an API key."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"api_key": "pf_1a2b3c4d_Zx…"}]})

    api_key: str = Field(min_length=1, max_length=512, description="`pf_<prefix>_<secret>`")

    _check_key = field_validator("api_key")(plain_text)


class WhoAmIOut(BaseModel):
    """The caller: tenant, user, role, and how it authenticated."""

    tenant: str
    user: str
    role: UserRole
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    key_id: uuid.UUID
    auth: str = Field(examples=["cookie", "bearer"], description="`bearer` (API key) or `cookie` (login)")
    login_expires_at: dt.datetime | None = Field(description="When the login ends; null for `bearer`.")
    session_expires_at: dt.datetime | None = Field(
        deprecated=True, description="Deprecated (removed next release): the same as `login_expires_at`."
    )


class LoginOut(WhoAmIOut):
    """A new login: the cookies are set; ``csrf_token`` is also in the ``pf_csrf`` cookie."""

    csrf_token: str = Field(description="Send it as `X-CSRF-Token` on POST/PUT/PATCH/DELETE.")
