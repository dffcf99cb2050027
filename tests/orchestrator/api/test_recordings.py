"""Session recordings (docs/recordings.md) through the API over real HTTP: the API process records a
session's virtual phone while it is open, serves the MP4 once it has closed (whole and by range, to
its tenant only), and seals it for a tenant with redaction on (its admins and the session's owner
only). Tasks' recordings are tested end to end in tests/web/test_recording.py."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import ExitStack

import av
import pytest

from orchestrator.db import UserRole
from orchestrator.encryption import SCREENSHOT_MAGIC
from orchestrator.live.recorder import recording_file
from orchestrator.services.recordings import recording_path
from tests.databases import migrate_to_head

# Reused, not copied: the providers' SimProvider fixtures (their conftest is not above this folder).
from tests.device_pool.providers.conftest import MakeSimProvider, make_sim_provider  # noqa: F401
from tests.orchestrator.api.conftest import Caller, StartApi
from tests.orchestrator.api.pools import running_pool
from tests.orchestrator.api.test_device_api import PhoneApi, phone_api, start  # noqa: F401
from tests.processes import AdbServer


def _session_with_a_change(caller: Caller) -> str:
    """A session whose phone showed two screens (home, then Settings), closed again; its id."""
    sid = start(caller)["id"]
    assert caller.http.get(f"/api/v1/sessions/{sid}/recording").status_code == 404  # open: not ready
    launched = caller.http.post(f"/api/v1/sessions/{sid}/launch", json={"app": "Settings"})
    assert launched.status_code == 200, launched.text
    assert caller.http.delete(f"/api/v1/sessions/{sid}").status_code == 200
    return sid


def _decoded_frames(video: bytes) -> int:
    with av.open(io.BytesIO(video)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def test_a_closed_session_has_its_recording(phone_api: PhoneApi) -> None:  # noqa: F811
    caller = phone_api.api.caller()
    sid = _session_with_a_change(caller)
    whole = caller.http.get(f"/api/v1/sessions/{sid}/recording")
    assert whole.status_code == 200, whole.text
    assert whole.headers["content-type"] == "video/mp4"
    assert _decoded_frames(whole.content) > 0
    part = caller.http.get(f"/api/v1/sessions/{sid}/recording", headers={"Range": "bytes=-64"})
    assert part.status_code == 206 and part.content == whole.content[-64:], part.headers
    assert recording_path(phone_api.api.settings, "session", sid) is not None
    assert recording_path(phone_api.api.settings, "task", sid) is None
    # Another tenant's caller does not learn it exists.
    assert phone_api.api.caller().http.get(f"/api/v1/sessions/{sid}/recording").status_code == 404


@pytest.fixture
def sealing_api(
    start_api: StartApi, pg_url: str, adb_server: AdbServer, make_sim_provider: MakeSimProvider  # noqa: F811
) -> Iterator[PhoneApi]:
    """``phone_api`` for tenants that all have text redaction on, with a storage key to seal with."""
    migrate_to_head(pg_url)
    api = start_api(
        pg_url, webrtc={"adb_port": adb_server.port}, redaction={"text_tenants": ["*"]},
        storage={"encryption_key": "recordings test key"},
    )  # fmt: skip
    with ExitStack() as stack:
        pool = stack.enter_context(running_pool(pg_url, make_sim_provider(count=1, max_count=1)))
        yield PhoneApi(api, pool, adb_server)


def test_a_redacted_tenants_recording_is_sealed_and_played_by_its_admins_and_owner(sealing_api: PhoneApi) -> None:
    owner = sealing_api.api.caller()
    sid = _session_with_a_change(owner)
    stored = recording_file(sealing_api.api.settings.data_dir, "session", sid).read_bytes()
    assert stored.startswith(SCREENSHOT_MAGIC), "stored as plain video"

    mine = owner.http.get(f"/api/v1/sessions/{sid}/recording")
    assert mine.status_code == 200, mine.text
    assert _decoded_frames(mine.content) > 0
    part = owner.http.get(f"/api/v1/sessions/{sid}/recording", headers={"Range": "bytes=10-19"})
    assert (part.status_code, part.content) == (206, mine.content[10:20])
    assert part.headers["content-range"] == f"bytes 10-19/{len(mine.content)}"
    past = owner.http.get(f"/api/v1/sessions/{sid}/recording", headers={"Range": f"bytes={len(mine.content)}-"})
    assert past.status_code == 416

    admin = sealing_api.api.caller(role=UserRole.ADMIN, tenant_id=owner.tenant_id)
    assert admin.http.get(f"/api/v1/sessions/{sid}/recording").content == mine.content
    member = sealing_api.api.caller(tenant_id=owner.tenant_id)
    refused = member.http.get(f"/api/v1/sessions/{sid}/recording")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "permission_denied"
