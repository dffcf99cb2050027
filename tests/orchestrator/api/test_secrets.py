"""The secrets vault's API: write-only values, tenant-scoped names, rotation, deletion, and values
encrypted at rest with ``vault.key`` (the dev key made in the data directory when none is set)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orchestrator.cli import main
from orchestrator.db import Secret, UserRole
from orchestrator.settings import Settings
from orchestrator.vault_cipher import KEY_FILE, VaultCipher, vault_key
from tests.aio import run
from tests.databases import migrate_to_head, open_sessions
from tests.orchestrator.api.conftest import Api, StartApi

SECRETS = "/api/v1/secrets"
VALUE = "hunter2-Vault-Value-7391"


async def _stored(db_url: str, name: str) -> list[Secret]:
    async with open_sessions(db_url) as sessions, sessions() as session:
        return list(await session.scalars(select(Secret).where(Secret.name == name)))


def test_a_secret_goes_in_and_only_its_name_comes_back(api: Api) -> None:
    admin = api.caller(role=UserRole.ADMIN)
    member = api.caller(tenant_id=admin.tenant_id)
    stranger = api.caller(role=UserRole.ADMIN)
    name = "bank_password"

    created = admin.http.post(SECRETS, json={"name": name, "value": VALUE})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == name and VALUE not in created.text, created.text
    again = admin.http.post(SECRETS, json={"name": name, "value": "other"})
    assert again.status_code == 409 and again.json()["error"] == "secret_exists", again.text

    # Names only, to any key of the tenant; nothing to another tenant.
    for caller in (admin, member):
        listed = caller.http.get(SECRETS)
        assert [s["name"] for s in listed.json()] == [name] and VALUE not in listed.text, listed.text
    one = member.http.get(f"{SECRETS}/{name}")
    assert one.status_code == 200 and VALUE not in one.text and one.json()["rotated_at"] is None, one.text
    assert stranger.http.get(SECRETS).json() == []
    assert stranger.http.get(f"{SECRETS}/{name}").status_code == 404
    assert stranger.http.put(f"{SECRETS}/{name}", json={"value": "x"}).status_code == 404
    assert stranger.http.delete(f"{SECRETS}/{name}").status_code == 404
    # A member may not write, rotate or delete.
    assert member.http.post(SECRETS, json={"name": "other", "value": "x"}).status_code == 403
    assert member.http.put(f"{SECRETS}/{name}", json={"value": "x"}).status_code == 403
    assert member.http.delete(f"{SECRETS}/{name}").status_code == 403

    # At rest: a Fernet token under the data directory's dev key, not the value.
    (row,) = run(_stored(api.db_url, name))
    assert VALUE not in row.value and row.value.startswith("gAAAA"), row.value
    key = (api.settings.data_dir / KEY_FILE).read_text().strip()
    assert VaultCipher(key).decrypt(row.value) == VALUE

    rotated = admin.http.put(f"{SECRETS}/{name}", json={"value": "rotated-value-55"})
    assert rotated.status_code == 200 and rotated.json()["rotated_at"] is not None, rotated.text
    (row,) = run(_stored(api.db_url, name))
    assert VaultCipher(key).decrypt(row.value) == "rotated-value-55"

    assert admin.http.delete(f"{SECRETS}/{name}").status_code == 204
    assert admin.http.get(f"{SECRETS}/{name}").status_code == 404
    assert run(_stored(api.db_url, name)) == []

    # Every write is an audit entry naming the secret, never holding its value.
    entries = admin.http.get("/api/v1/audit", params={"limit": 100}).json()["items"]
    writes = [(e["action"], e["target"]) for e in reversed(entries) if e["action"].startswith("secret.")]
    assert writes == [("secret.create", f"secret:{name}"), ("secret.rotate", f"secret:{name}"),
                      ("secret.delete", f"secret:{name}")]  # fmt: skip
    assert VALUE not in str(entries) and "rotated-value-55" not in str(entries)


def test_bad_names_and_values_are_refused_without_echoing_them(api: Api) -> None:
    admin = api.caller(role=UserRole.ADMIN)
    for body in ({"name": "1abc", "value": VALUE}, {"name": "a b", "value": VALUE}, {"name": "ok", "value": ""},
                 {"name": "ok", "value": VALUE, "extra": 1}, {"name": "x" * 65, "value": VALUE}):  # fmt: skip
        refused = admin.http.post(SECRETS, json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert VALUE not in refused.text, refused.text


def test_a_rotated_key_still_reads_old_values_and_reencrypts_them(tmp_path) -> None:
    old = VaultCipher("the-old-key")
    token = old.encrypt(VALUE)
    both = VaultCipher("the-new-key", ["the-old-key"])
    assert both.decrypt(token) == VALUE
    moved = both.reencrypt(token)
    assert VaultCipher("the-new-key").decrypt(moved) == VALUE
    with pytest.raises(Exception, match="cannot be read"):
        VaultCipher("the-new-key").decrypt(token)
    # In prod an unset key means no vault at all, never a made-up one.
    prod = Settings(env="prod", data_dir=tmp_path, auth={"login_secret": "s" * 20, "webhook_secret": "w" * 20})
    assert vault_key(prod) is None and not (tmp_path / KEY_FILE).exists()
    with pytest.raises(Exception, match=r"vault\.key"):
        VaultCipher.from_settings(prod).encrypt(VALUE)


def test_reencrypting_the_vault_after_a_key_rotation_is_the_operators_audited_step(
    start_api: StartApi, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``phonefleet admin reencrypt-secrets`` with the new key and the old one in ``vault.old_keys``:
    every value is then read with the new key alone, and the rotation is in the audit log. On a
    database of its own: the command re-encrypts every tenant's values, which must all be under
    this API's key."""
    migrate_to_head(pg_url)
    api = start_api(pg_url)
    admin = api.caller(role=UserRole.ADMIN)
    name = "rotated_with_the_key"
    assert admin.http.post(SECRETS, json={"name": name, "value": VALUE}).status_code == 201
    old = (api.settings.data_dir / KEY_FILE).read_text().strip()  # the dev key the API made
    monkeypatch.setenv("PHONEFLEET_VAULT__KEY", "the vault's next key")
    monkeypatch.setenv("PHONEFLEET_VAULT__OLD_KEYS", f'["{old}"]')
    assert main(["admin", "--database-url", api.db_url, "reencrypt-secrets"]) == 0
    assert "re-encrypted under vault.key" in capsys.readouterr().err
    (row,) = run(_stored(api.db_url, name))
    assert VaultCipher("the vault's next key").decrypt(row.value) == VALUE
    operator = api.caller(role=UserRole.OPERATOR)
    entries = operator.http.get("/api/v1/audit", params={"action": "vault.reencrypt", "limit": 100}).json()["items"]
    assert [(e["role"], e["target"], e["detail"]) for e in entries] == [("cli", "vault", {"secrets": 1})]
    # Without the old key the values cannot be read: the command says so and changes nothing.
    monkeypatch.setenv("PHONEFLEET_VAULT__KEY", "a key that never was")
    monkeypatch.delenv("PHONEFLEET_VAULT__OLD_KEYS")
    assert main(["admin", "--database-url", api.db_url, "reencrypt-secrets"]) == 1
    assert "VaultUnavailable" in capsys.readouterr().err
    assert run(_stored(api.db_url, name))[0].value == row.value
