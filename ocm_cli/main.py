"""The `ocm` command's commands: serve the platform locally, and operator tasks."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from ocm_cli import analytics_cli
from shared import bootstrap
from shared.config import Settings
from shared.domain.errors import OcmError, ValidationFailed
from shared.services.identity import tenants, users
from shared.services.onboarding import signup


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["OCM_DATA_DIR"] = Path(args.data_dir)
    if getattr(args, "host", None):
        overrides["OCM_HOST"] = args.host
    if getattr(args, "port", None):
        overrides["OCM_PORT"] = args.port
    if getattr(args, "settings_file", None):
        from ocm_cli.azure_init import local_settings

        overrides.update(local_settings(Path(args.settings_file)))
    return Settings(**overrides)


def _print(data: Any, as_json: bool, text: str) -> None:
    print(orjson.dumps(data).decode() if as_json else text)


async def _tenant_create(settings: Settings, name: str, as_json: bool) -> int:
    async with bootstrap.running(settings) as deps:
        created = await signup.create_tenant(deps, name)
    tenant_id = created.tenant["id"]
    _print(
        {"tenant_id": tenant_id, "api_key": created.api_key},
        as_json,
        f"tenant {tenant_id} created\nAPI key (shown once, keep it safe): {created.api_key}",
    )
    return 0


async def _tenant_list(settings: Settings, as_json: bool) -> int:
    async with bootstrap.running(settings) as deps:
        items = await tenants.list_tenants(deps)
    rows = [{"tenant_id": t["id"], "name": t["name"], "status": t["status"]} for t in items]
    _print(
        rows, as_json, "\n".join(f"{r['tenant_id']}  {r['status']:<9} {r['name']}" for r in rows)
    )
    return 0


async def _tenant_status(settings: Settings, tenant_id: str, status: str, as_json: bool) -> int:
    async with bootstrap.running(settings) as deps:
        doc = await tenants.set_status(deps, tenant_id, status)
    _print(
        {"tenant_id": doc["id"], "status": doc["status"]},
        as_json,
        f"tenant {doc['id']} is {doc['status']} (a running server sees it within "
        f"{settings.OCM_LOOKUP_CACHE_SECONDS:g} s)",
    )
    return 0


async def _tenant_limits(settings: Settings, args: argparse.Namespace) -> int:
    changes: dict[str, float | None] = {}
    for name in tenants.NUMERIC_LIMITS:
        value = getattr(args, name)
        if value is not None:
            try:
                changes[name] = None if value.lower() == "default" else float(value)
            except ValueError:
                raise ValidationFailed(
                    f"--{name.replace('_', '-')} takes a number or 'default'"
                ) from None
    if args.children_count is not None:
        choice = args.children_count.lower()
        changes["children_count"] = None if choice == "default" else float(choice == "yes")
    async with bootstrap.running(settings) as deps:
        doc = await tenants.set_limits(deps, args.tenant_id, changes)
    limits = doc.get("limits") or {}
    _print(
        {"tenant_id": doc["id"], "limits": limits},
        args.json,
        f"tenant {doc['id']} limits: "
        + (", ".join(f"{k}={v:g}" for k, v in limits.items()) or "the platform's defaults"),
    )
    return 0


async def _reset_password(settings: Settings, email: str, as_json: bool) -> int:
    async with bootstrap.running(settings) as deps:
        token = await users.reset_token(deps, email)
    _print(
        {"email": email, "reset_token": token, "expires_in": users.RESET_SECONDS},
        as_json,
        f"password reset token for {email} (single use, valid one hour; give it to the "
        f"user for POST /api/v1/users/reset-password): {token}",
    )
    return 0


async def _serve(settings: Settings) -> int:
    # Imported here: building the Functions app (every trigger) is for `serve` alone.
    from function_app import app
    from functions.http import asgi_app
    from ocm_cli.local_runtime import serve

    async with bootstrap.running(settings) as deps:
        bootstrap.set_deps(deps)
        try:
            await serve(app, asgi_app, deps, host=settings.OCM_HOST, port=settings.OCM_PORT)
        finally:
            bootstrap.set_deps(None)
    return 0


def _azure_init(settings: Settings) -> int:
    if settings.OCM_BACKEND != "azure":
        print(
            "ocm azure init: the settings are for the embedded backend; set OCM_BACKEND=azure "
            "and the Azure settings (or pass --settings local.settings.json)",
            file=sys.stderr,
        )
        return 2
    from ocm_cli import azure_init

    return asyncio.run(azure_init.run(settings))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocm", description="OCM omni-channel messaging")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the API and run every trigger locally")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1, or OCM_HOST)")
    serve.add_argument("--port", type=int, help="port (default 7071, or OCM_PORT)")
    serve.add_argument("--data-dir", help="data directory (default ./.ocm, or OCM_DATA_DIR)")
    tenant = sub.add_parser("tenant", help="manage tenants (operator)")
    tsub = tenant.add_subparsers(dest="tenant_command", required=True)
    create = tsub.add_parser("create", help="create a tenant and its first API key")
    create.add_argument("name")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.add_argument("--data-dir")
    listing = tsub.add_parser("list", help="list tenants")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--data-dir")
    for verb, help_text in (
        ("suspend", "suspend a tenant: its credentials get 403 TENANT_SUSPENDED"),
        ("resume", "make a suspended tenant active again"),
    ):
        command = tsub.add_parser(verb, help=help_text)
        command.add_argument("tenant_id")
        command.add_argument("--json", action="store_true", help="print JSON")
        command.add_argument("--data-dir")
    limits = tsub.add_parser(
        "limits", help="set a tenant's own rate limit and quotas ('default' clears one)"
    )
    limits.add_argument("tenant_id")
    for name in tenants.NUMERIC_LIMITS:
        limits.add_argument(f"--{name.replace('_', '-')}", metavar="N|default")
    limits.add_argument(
        "--children-count",
        choices=("yes", "no", "default"),
        help="count child tenants' requests against this tenant's ceiling too",
    )
    limits.add_argument("--json", action="store_true", help="print JSON")
    limits.add_argument("--data-dir")
    user = sub.add_parser("user", help="help users (operator)")
    usub = user.add_subparsers(dest="user_command", required=True)
    reset = usub.add_parser("reset-password", help="print a single-use password reset token")
    reset.add_argument("email")
    reset.add_argument("--json", action="store_true", help="print JSON")
    reset.add_argument("--data-dir")
    sub.add_parser("secret-key", help="print a new key for OCM_SECRET_KEY")
    analytics_cli.add_parser(sub)
    azure = sub.add_parser("azure", help="the azure backend (OCM_BACKEND=azure)")
    asub = azure.add_subparsers(dest="azure_command", required=True)
    init = asub.add_parser(
        "init", help="create the Cosmos DB containers and Service Bus entities that are missing"
    )
    init.add_argument(
        "--settings",
        dest="settings_file",
        metavar="FILE",
        help="take the settings from a local.settings.json's Values (they win over the "
        "environment)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        print(f"ocm: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as exc:  # the --settings file
        print(f"ocm: cannot read the settings file: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.OCM_LOG_LEVEL, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "serve":
            return asyncio.run(_serve(settings))
        if args.command == "secret-key":
            from cryptography.fernet import Fernet

            print(Fernet.generate_key().decode())
            return 0
        if args.command == "azure":
            return _azure_init(settings)
        if args.command == "analytics":
            return asyncio.run(analytics_cli.run(settings, args))
        if args.command == "user":
            return asyncio.run(_reset_password(settings, args.email, args.json))
        if args.tenant_command == "create":
            return asyncio.run(_tenant_create(settings, args.name, args.json))
        if args.tenant_command == "limits":
            return asyncio.run(_tenant_limits(settings, args))
        if args.tenant_command in ("suspend", "resume"):
            status = "suspended" if args.tenant_command == "suspend" else "active"
            return asyncio.run(_tenant_status(settings, args.tenant_id, status, args.json))
        return asyncio.run(_tenant_list(settings, args.json))
    except OcmError as exc:
        print(f"ocm: {exc.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
