"""``phonefleet admin``: bootstrap tenants and API keys from the terminal.

``phonefleet admin create-key --tenant NAME [--admin | --operator]`` creates the tenant if it is new, a
user in it (``operator``, ``admin`` or ``member`` unless ``--user`` names one) and a key, and prints
the key: the only time it is ever shown. ``--operator`` makes the deployment's operator (the fleet's
devices, every tenant; also the admin of its own tenant): whoever runs this command has the database,
so it is the operator's own way in. ``--admin`` with no ``--user``, while the deployment has no
operator yet, makes the operator (the bootstrap key, as ``phonefleet up``'s first). ``revoke-key
PREFIX`` revokes one. ``reencrypt-secrets`` re-encrypts every vault value under ``vault.key``, the
second step of rotating it (docs/security.md, "Rotating the vault key").
"""

from __future__ import annotations

import argparse
import asyncio
import sys


async def _create_key(url: str, tenant: str, user: str, role_name: str, name: str) -> tuple[str, str]:
    """The new key and its user's role: the deployment's first admin (no operator yet) is made its
    operator, as ``phonefleet up``'s first key is, so a deployment bootstrapped with ``--admin`` can
    run its fleet."""
    from sqlalchemy import select

    from orchestrator.db import User, UserRole, make_engine, make_sessionmaker
    from orchestrator.services.audit import record_audit
    from orchestrator.services.auth import get_or_create_tenant, issue_api_key

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db_session, db_session.begin():
            row = await get_or_create_tenant(db_session, tenant)
            role = UserRole(role_name)
            if role == UserRole.ADMIN and user == "":
                operator = await db_session.scalar(select(User.id).where(User.role == UserRole.OPERATOR).limit(1))
                role = UserRole.OPERATOR if operator is None else role
            issued = await issue_api_key(
                db_session, tenant_id=row.id, user_name=user or role.value, role=role, name=name
            )
            await record_audit(db_session, None, "api_key.issue", target=f"api_key:{issued.row.id}",
                               detail={"tenant": tenant, "user": issued.user.name, "role": role.value,
                                       "name": name, "prefix": issued.row.prefix})  # fmt: skip
            return issued.key, role.value
    finally:
        await engine.dispose()


async def _revoke_key(url: str, prefix: str) -> bool:
    from sqlalchemy import select

    from orchestrator.db import ApiKey, make_engine, make_sessionmaker
    from orchestrator.services.audit import record_audit
    from orchestrator.services.auth import revoke_api_key

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db_session, db_session.begin():
            key = await db_session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
            if key is None:
                return False
            if key.revoked_at is None:
                await record_audit(db_session, None, "api_key.revoke", target=f"api_key:{key.id}",
                                   detail={"tenant_id": str(key.tenant_id), "prefix": prefix})  # fmt: skip
            await revoke_api_key(db_session, tenant_id=key.tenant_id, key_id=key.id)
            return True
    finally:
        await engine.dispose()


async def _reencrypt_secrets(settings: object) -> int:
    from orchestrator.db import make_engine, make_sessionmaker
    from orchestrator.db.database import Database
    from orchestrator.services.vault import VaultService
    from orchestrator.vault_cipher import VaultCipher

    engine = make_engine(settings.database_url)  # type: ignore[attr-defined]
    try:
        vault = VaultService(Database(make_sessionmaker(engine)), VaultCipher.from_settings(settings))
        return await vault.reencrypt_all()
    finally:
        await engine.dispose()


def _cmd_admin(args: argparse.Namespace) -> int:
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from orchestrator.errors import PhoneFleetError
    from orchestrator.settings import load_settings

    try:
        settings = load_settings(**({"database_url": args.database_url} if args.database_url else {}))
    except ValidationError as exc:
        print(f"phonefleet admin: {exc}", file=sys.stderr)
        return 2
    try:
        if args.action == "create-key":
            key, role = asyncio.run(
                _create_key(settings.database_url, args.tenant, args.user, args.role, args.name)
            )
            print(key)
            if role != args.role:
                print(f"The deployment's first admin is its {role}: this key also runs the fleet.", file=sys.stderr)
            print("Store this key now: it is not shown again.", file=sys.stderr)
            return 0
        if args.action == "reencrypt-secrets":
            count = asyncio.run(_reencrypt_secrets(settings))
            print(f"{count} secret(s) re-encrypted under vault.key; vault.old_keys may be emptied now.", file=sys.stderr)
            return 0
        if not asyncio.run(_revoke_key(settings.database_url, args.prefix)):
            print(f"phonefleet admin: no API key with prefix {args.prefix!r}", file=sys.stderr)
            return 1
        return 0
    except (PhoneFleetError, SQLAlchemyError, OSError) as exc:
        # Unmigrated or unreachable database, or a user with another role: one line, not a traceback.
        print(f"phonefleet admin: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("admin", help="create tenants and API keys")
    parser.add_argument(
        "--database-url", default=None, help="database (default: PHONEFLEET_DATABASE_URL or SQLite)"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create-key", help="print a new API key (created tenant and user if new)")
    create.add_argument("--tenant", required=True, help="tenant name (created if it does not exist)")
    role = create.add_mutually_exclusive_group()
    role.add_argument("--admin", dest="role", action="store_const", const="admin",
                      help="the key's user is an admin of the tenant")  # fmt: skip
    role.add_argument("--operator", dest="role", action="store_const", const="operator",
                      help="the key's user is the deployment's operator (and its tenant's admin)")  # fmt: skip
    create.set_defaults(role="member")
    create.add_argument("--user", default="", help="user name (default: the role's name)")
    create.add_argument("--name", default="cli", help="a label for the key")
    revoke = actions.add_parser(
        "revoke-key", help="revoke the key with this prefix (the 8 characters after pf_)"
    )
    revoke.add_argument("prefix")
    actions.add_parser(
        "reencrypt-secrets",
        help="re-encrypt every vault value under vault.key (after a key rotation; vault.old_keys must read them)",
    )
    parser.set_defaults(func=_cmd_admin)
