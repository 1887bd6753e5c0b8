"""A real PostgreSQL server from Debian's packages, with its own data folder under the state dir.

Authentication is `trust` on 127.0.0.1 only: this is a development server, never a deployment.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import asyncpg

from bigbrotr.config import DevStackSettings
from bigbrotr.devstack.process import ensure_port_free, port_open, run_checked, wait_for
from bigbrotr.errors import StackError

HOST = "127.0.0.1"
SUPERUSER = "bigbrotr"
DATABASE = "bigbrotr"
SYSTEM_USER = "postgres"


def _reachable_root(wanted: Path) -> Path:
    """As root we run PostgreSQL as `postgres`, which must reach its folder; a checkout under a
    private home (0700) does not allow that, so the cluster then lives in a world-traversable
    spot named after the state folder."""
    if os.geteuid() != 0 or _traversable_by_others(wanted.parent):
        return wanted
    digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"bigbrotr-postgres-{digest}"


def _traversable_by_others(path: Path) -> bool:
    for folder in [path.resolve(), *path.resolve().parents]:
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            return False
    return True


class PostgresServer:
    """Owns `<state>/postgres`: the cluster's data folder, socket folder and log."""

    def __init__(self, settings: DevStackSettings) -> None:
        self.settings = settings
        self.root = _reachable_root(settings.state_dir / "postgres")
        self.data = self.root / "data"
        self.log_file = self.root / "postgres.log"
        self.setup_log = self.root / "setup.log"

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.settings.postgres_port}/{DATABASE}"

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.settings.postgres_port}/{database}"

    def up(self) -> bool:
        """Start the server unless it runs and make sure the database exists; True if started."""
        started = False
        if not self.running():
            bindir = self._bindir()
            ensure_port_free(
                HOST, self.settings.postgres_port, "dev.postgres_port (BIGBROTR_DEV__POSTGRES_PORT)"
            )
            if not (self.data / "PG_VERSION").exists():
                self._initdb(bindir)
            self._run_as_owner(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    str(int(self.settings.start_timeout_s)),
                    "-o",
                    f"-p {self.settings.postgres_port} -k {self.root} -c listen_addresses={HOST}",
                    "start",
                ],
                "starting PostgreSQL",
            )
            started = True
        if not wait_for(lambda: port_open(HOST, self.settings.postgres_port), 30):
            raise StackError(f"PostgreSQL is not accepting connections; see {self.log_file}")
        asyncio.run(self._ensure_database())
        return started

    def down(self) -> bool:
        if not self.running():
            return False
        self._run_as_owner(
            [str(self._bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            "stopping PostgreSQL",
        )
        return True

    def running(self) -> bool:
        """Ours runs if its postmaster.pid names a live process whose data dir is ours."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return False
        return str(self.data).encode() in cmdline

    def _bindir(self) -> Path:
        if self.settings.postgres_bin_dir is not None:
            candidates = [self.settings.postgres_bin_dir]
        else:
            candidates = sorted(
                Path("/usr/lib/postgresql").glob("*/bin"),
                key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                reverse=True,
            )
            on_path = shutil.which("pg_ctl")
            if on_path:
                candidates.append(Path(on_path).resolve().parent)
        for bindir in candidates:
            if (bindir / "pg_ctl").exists() and (bindir / "initdb").exists():
                return bindir
        if os.geteuid() == 0 and shutil.which("apt-get"):
            run_checked(["apt-get", "update", "-qq"], "apt-get update", self.setup_log)
            run_checked(
                ["apt-get", "install", "-y", "-qq", "postgresql"],
                "installing PostgreSQL (apt-get install -y postgresql)",
                self.setup_log,
            )
            return self._bindir_after_install()
        raise StackError(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found: install them with "
            "`sudo apt-get install -y postgresql`, or set dev.postgres_bin_dir"
        )

    def _bindir_after_install(self) -> Path:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not found:
            raise StackError(
                f"apt-get installed postgresql but no pg_ctl appeared; see {self.setup_log}"
            )
        return found[-1].parent

    def _initdb(self, bindir: Path) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self._chown_for_owner(self.root)
        self._run_as_owner(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            "initialising the PostgreSQL data folder",
        )

    def _run_as_owner(self, argv: list[str], what: str) -> None:
        """PostgreSQL refuses to run as root, so as root we run it as the `postgres` user."""
        if os.geteuid() == 0:
            self._chown_for_owner(self.root)
            argv = ["runuser", "-u", SYSTEM_USER, "--", *argv]
        run_checked(argv, what, self.setup_log)

    def _chown_for_owner(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        path.mkdir(parents=True, exist_ok=True)
        try:
            shutil.chown(path, user=SYSTEM_USER)
        except LookupError as exc:
            raise StackError(
                "running as root needs the `postgres` system user (created by "
                "`apt-get install -y postgresql`)"
            ) from exc
        subprocess.run(["chown", "-R", SYSTEM_USER, str(path)], check=False)

    async def _ensure_database(self) -> None:
        try:
            conn = await asyncpg.connect(self.admin_url(), timeout=10)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StackError(f"cannot connect to PostgreSQL ({exc}); see {self.log_file}") from exc
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await conn.close()
