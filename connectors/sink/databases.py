"""Creating and dropping whole databases on a server, for replay into a fresh one and for
verification against the topics (a scratch copy)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bigbrotr.errors import SinkError
from connectors.sink.database import CONNECT_TIMEOUT_S, where

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def with_database(dsn: str, name: str) -> str:
    """`dsn` with its database replaced by `name` (same server, user and password)."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


async def _admin(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(with_database(dsn, "postgres"), timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise SinkError(f"cannot reach PostgreSQL at {where(dsn)} ({exc}); is it running?") from exc


async def create_database(dsn: str, name: str) -> str:
    """Create the empty database `name` on the server of `dsn`; its URL."""
    if not NAME.match(name):
        raise SinkError(
            f"{name!r} is not a plain database name: use letters, digits and _ (at most 63)"
        )
    conn = await _admin(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.DuplicateDatabaseError as exc:
        raise SinkError(
            f"database {name} already exists on {where(dsn)}; choose another name, or replay "
            f"into it with --database"
        ) from exc
    except asyncpg.InsufficientPrivilegeError as exc:
        raise SinkError(
            f"the user of database.url may not create databases on {where(dsn)} ({exc}); "
            "create it yourself and use --database"
        ) from exc
    finally:
        await conn.close()
    return with_database(dsn, name)


async def drop_database(dsn: str) -> None:
    conn = await _admin(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database_name(dsn)}" WITH (FORCE)')
    finally:
        await conn.close()
