"""Versioned plain-SQL migrations, applied in order, once each, and checked against the history.

A migration is a file `NNNN_name.sql` in the migrations directory. Each pending file runs in its
own transaction together with its row in `schema_migrations`, so a failing file leaves nothing
behind and earlier files stay applied. Files must not contain BEGIN/COMMIT of their own. An
applied file must never change: the runner refuses to go on when one was edited, renamed or
deleted, because the database would no longer be what the files describe.

Parsing, ordering and comparing are pure functions over names, bytes and rows; the I/O around them
is thin.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from bigbrotr.config import PROJECT_ROOT
from bigbrotr.errors import MigrationError

DEFAULT_DIRECTORY = PROJECT_ROOT / "migrations"
FILENAME_PATTERN = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql$")
FILENAME_EXAMPLE = "0007_add_relay_index.sql"

# Every runner takes this session-level advisory lock before touching the history; any constant
# works as long as all runners agree on it.
ADVISORY_LOCK_KEY = 0x6262_6D69_6772_6174  # "bbmigrat"
LOCK_TIMEOUT_MS = 60_000
CONNECT_TIMEOUT_S = 10.0

_CREATE_HISTORY = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
_SELECT_HISTORY = (
    "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
)
_RECORD = """
INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3) RETURNING applied_at
"""
# asyncpg fails with AttributeError on a query string without a statement (an empty or comment-only
# file), so every file runs followed by a statement that does nothing.
_STATEMENT_TAIL = "\n;\nSELECT 1"


class MigrationState(StrEnum):
    """How one version stands between the files and the database."""

    APPLIED = "applied"
    PENDING = "pending"
    MODIFIED = "modified"
    MISSING = "missing"


@dataclass(frozen=True)
class MigrationFile:
    """One parsed migration file; `checksum` is the sha256 of its bytes as read."""

    version: int
    name: str
    checksum: str
    sql: str

    @property
    def filename(self) -> str:
        return filename_of(self.version, self.name)


@dataclass(frozen=True)
class AppliedMigration:
    """One row of `schema_migrations`."""

    version: int
    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True)
class MigrationStatus:
    """One version as `migration_status` reports it; `applied_at` is None while pending."""

    version: int
    name: str
    state: MigrationState
    applied_at: datetime | None


def filename_of(version: int, name: str) -> str:
    """The file name a version and name are written as, also for versions whose file is gone."""
    return f"{version:04d}_{name}.sql"


def checksum_of(content: bytes) -> str:
    """Hex sha256 of the exact file bytes, so any edit, even of whitespace, is noticed."""
    return hashlib.sha256(content).hexdigest()


def parse_filename(filename: str) -> tuple[int, str]:
    """Version and name of a migration file name, or MigrationError saying how to name it."""
    match = FILENAME_PATTERN.fullmatch(filename)
    if match is None:
        raise MigrationError(
            f"migration file {filename!r} is badly named: expected four digits, an underscore and "
            f"lowercase words joined by underscores, e.g. {FILENAME_EXAMPLE}; rename it"
        )
    version = int(match["version"])
    if version == 0:
        raise MigrationError(f"migration file {filename!r}: versions start at 0001; renumber it")
    return version, match["name"]


def parse_migration_files(files: Mapping[str, bytes]) -> list[MigrationFile]:
    """Migrations from file names and contents, ordered by version.

    Names not ending in `.sql` (in any case) are not migrations and are skipped, so a README may
    live in the directory; every `.sql` name must be well formed and versions must be unique.
    """
    by_version: dict[int, MigrationFile] = {}
    for filename in sorted(files):
        if not filename.lower().endswith(".sql"):
            continue
        version, name = parse_filename(filename)
        content = files[filename]
        if version in by_version:
            other = by_version[version].filename
            raise MigrationError(
                f"migration files {other} and {filename} share version {version:04d}; "
                f"renumber one of them above the highest version"
            )
        try:
            sql = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MigrationError(
                f"migration file {filename} is not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                f"save it as UTF-8"
            ) from exc
        by_version[version] = MigrationFile(version, name, checksum_of(content), sql)
    return [by_version[version] for version in sorted(by_version)]


def compare(
    files: Sequence[MigrationFile], applied: Sequence[AppliedMigration]
) -> list[MigrationStatus]:
    """State of every version found in the files or in the history, ordered by version."""
    applied_by_version = {row.version: row for row in applied}
    file_versions = {file.version for file in files}
    statuses = [_status(file, applied_by_version.get(file.version)) for file in files]
    statuses += [
        MigrationStatus(row.version, row.name, MigrationState.MISSING, row.applied_at)
        for row in applied
        if row.version not in file_versions
    ]
    return sorted(statuses, key=lambda status: status.version)


def plan(
    files: Sequence[MigrationFile], applied: Sequence[AppliedMigration]
) -> list[MigrationFile]:
    """The files still to apply, in order, or MigrationError when the history forbids going on."""
    files_by_version = {file.version: file for file in files}
    for row in sorted(applied, key=lambda row: row.version):
        file = files_by_version.get(row.version)
        if file is None:
            raise MigrationError(
                f"migration {filename_of(row.version, row.name)} was applied on "
                f"{row.applied_at:%Y-%m-%d %H:%M} but its file is gone from the migrations "
                f"directory; restore it (e.g. from git): applied migrations must stay"
            )
        if not _unchanged(file, row):
            raise MigrationError(_modified_message(file, row))
    applied_versions = {row.version for row in applied}
    pending = [file for file in files if file.version not in applied_versions]
    if pending and applied:
        last = max(applied, key=lambda row: row.version)
        if pending[0].version < last.version:
            raise MigrationError(
                f"migration {pending[0].filename} is pending but the later "
                f"{filename_of(last.version, last.name)} is already applied; renumber it above "
                f"{last.version:04d} so every database applies migrations in the same order"
            )
    return pending


def _unchanged(file: MigrationFile, row: AppliedMigration) -> bool:
    return file.checksum == row.checksum and file.name == row.name


def _status(file: MigrationFile, row: AppliedMigration | None) -> MigrationStatus:
    if row is None:
        return MigrationStatus(file.version, file.name, MigrationState.PENDING, None)
    state = MigrationState.APPLIED if _unchanged(file, row) else MigrationState.MODIFIED
    return MigrationStatus(file.version, file.name, state, row.applied_at)


def _modified_message(file: MigrationFile, row: AppliedMigration) -> str:
    applied_name = filename_of(row.version, row.name)
    if file.name != row.name:
        change = f"was applied as {applied_name} but is now named {file.filename}"
    else:
        change = f"changed after it was applied on {row.applied_at:%Y-%m-%d %H:%M}"
    return (
        f"migration {applied_name} {change}; restore the applied file (e.g. from git) and put "
        f"the change in a new migration numbered above the highest version"
    )


def error_line(sql: str, position: str | None) -> int | None:
    """Line of the 1-based character position PostgreSQL reports for an error, if it gave one."""
    if position is None or not position.isdigit():
        return None
    return sql.count("\n", 0, int(position) - 1) + 1


def read_migration_files(directory: Path) -> list[MigrationFile]:
    """Parsed migrations of a directory; an empty or absent directory is an error, not a no-op."""
    if not directory.is_dir():
        raise MigrationError(
            f"migrations directory {directory} does not exist; point to the directory that holds "
            f"the NNNN_name.sql files"
        )
    files = parse_migration_files(
        {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}
    )
    if not files:
        raise MigrationError(
            f"no migration files (like {FILENAME_EXAMPLE}) in {directory}; "
            f"is it the right directory?"
        )
    return files


async def migrate(dsn: str, directory: Path | None = None) -> list[AppliedMigration]:
    """Apply every pending migration in order and return what was applied now."""
    files = read_migration_files(directory or DEFAULT_DIRECTORY)
    async with _connection(dsn) as conn:
        await _lock(conn, dsn)
        await conn.execute(_CREATE_HISTORY)
        pending = plan(files, await _history(conn))
        return [await _apply(conn, file) for file in pending]


async def migration_status(dsn: str, directory: Path | None = None) -> list[MigrationStatus]:
    """State of every version without changing the database (no history table is created)."""
    files = read_migration_files(directory or DEFAULT_DIRECTORY)
    async with _connection(dsn) as conn:
        has_history = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        return compare(files, await _history(conn) if has_history else [])


def _where(dsn: str) -> str:
    """Host, port and database of a DSN, never its user or password, for messages."""
    try:
        parts = urlsplit(dsn)
        port = parts.port
    except ValueError:
        return "the configured database"
    if not parts.hostname:
        return "the configured database"
    return f"{parts.hostname}:{port or 5432}{parts.path or '/'}"


@asynccontextmanager
async def _connection(dsn: str) -> AsyncIterator[Any]:
    where = _where(dsn)
    try:
        conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise MigrationError(
            f"cannot reach PostgreSQL at {where} ({exc or 'timed out'}); is PostgreSQL running? "
            f"try `bigbrotr dev up`"
        ) from exc
    except asyncpg.PostgresError as exc:
        raise MigrationError(
            f"PostgreSQL at {where} refused the connection ({exc}); check the user, password "
            f"and database name in database.url"
        ) from exc
    except ValueError as exc:
        raise MigrationError(
            f"the database URL is invalid ({exc}); fix database.url, e.g. "
            f"postgresql://user@host:5432/db"
        ) from exc
    try:
        yield conn
    except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as exc:
        raise MigrationError(
            f"lost the connection to PostgreSQL at {where} ({exc}); no migration is half applied: "
            f"check the server and run `bigbrotr migrate` again"
        ) from exc
    finally:
        # Closing also releases the advisory lock, which is held per session. A failed close has
        # already aborted the connection, which releases it too.
        with suppress(OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresError):
            await conn.close(timeout=CONNECT_TIMEOUT_S)


async def _lock(conn: Any, dsn: str) -> None:
    """Wait for other runners to finish, bounded so a stuck one shows up as an error."""
    await conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
    except asyncpg.LockNotAvailableError as exc:
        raise MigrationError(
            f"another migration runner has held the lock on {_where(dsn)} for "
            f"{LOCK_TIMEOUT_MS / 1000:g} s; let it finish, then run `bigbrotr migrate` again"
        ) from exc
    finally:
        await conn.execute("RESET lock_timeout")


async def _history(conn: Any) -> list[AppliedMigration]:
    rows = await conn.fetch(_SELECT_HISTORY)
    return [AppliedMigration(r["version"], r["name"], r["checksum"], r["applied_at"]) for r in rows]


async def _apply(conn: Any, file: MigrationFile) -> AppliedMigration:
    try:
        async with conn.transaction():
            await conn.execute(file.sql + _STATEMENT_TAIL)
            applied_at = await conn.fetchval(_RECORD, file.version, file.name, file.checksum)
    except asyncpg.PostgresConnectionError:
        raise
    except asyncpg.PostgresError as exc:
        line = error_line(file.sql, exc.as_dict().get("position"))
        at = f" at line {line}" if line is not None else ""
        raise MigrationError(
            f"migration {file.filename} failed{at}: {exc}; it was rolled back and earlier "
            f"migrations stay applied: fix the file and run `bigbrotr migrate` again"
        ) from exc
    return AppliedMigration(file.version, file.name, file.checksum, applied_at)
