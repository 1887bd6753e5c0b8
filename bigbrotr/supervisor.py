"""`bigbrotr run`: every component as a child process under one supervisor.

Each component already is a process with its own signal handling and bounded shutdown, so the
supervisor only starts them, prefixes their output with their name, restarts one that exits on its
own (after a doubling delay, and says so), and on stop sends each one SIGTERM, waits at most
`shutdown_timeout_s`, then kills what is left. Children run in their own process groups, so a
Ctrl-C at the terminal reaches the supervisor alone and every child is stopped exactly once; on
Linux they also get SIGTERM should the supervisor itself die.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from bigbrotr.config import Settings

log = logging.getLogger("bigbrotr.run")

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class Component:
    """One child: its name in the log and the `bigbrotr` arguments that run it."""

    name: str
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """The n-th crash in a row waits `min(max_s, base_s * 2**(n-1))`; a child that stayed up for
    `max_s` counts as healthy again."""

    base_s: float
    max_s: float

    def delay(self, crashes: int) -> float:
        return float(min(self.max_s, self.base_s * 2 ** min(crashes - 1, 62)))


@dataclass(frozen=True, slots=True)
class Exit:
    """How a child ended: its pid, exit status (negative: the signal that ended it), and whether
    the supervisor had to kill it."""

    name: str
    pid: int
    returncode: int
    killed: bool


@dataclass(slots=True)
class _Child:
    component: Component
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    crashes: int = 0
    output: asyncio.Task[None] | None = None
    exits: list[Exit] = field(default_factory=list)


def bigbrotr_command(args: Sequence[str], config: str | None) -> list[str]:
    """The argv of a `bigbrotr` child run by the same Python as this process."""
    root = ["--config", config] if config is not None else []
    return [sys.executable, "-m", "bigbrotr", *root, *args]


def _die_with_parent(parent: int) -> None:
    """Runs in the child before exec: SIGTERM when the supervisor dies (Linux only)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)


class Supervisor:
    """`await supervisor.run()` until `supervisor.stop()`; returns every child's exits."""

    def __init__(
        self,
        components: Sequence[Component],
        *,
        config: str | None,
        restart: RestartPolicy,
        shutdown_timeout_s: float,
        env: Mapping[str, str] | None = None,
        output: TextIO | None = None,
    ) -> None:
        self._children = [_Child(component) for component in components]
        self._config = config
        self._restart = restart
        self._shutdown_timeout_s = shutdown_timeout_s
        self._env = {**os.environ, **(env or {})}
        self._output = output if output is not None else sys.stdout
        self._width = max((len(c.name) for c in components), default=0)
        self._stopping = asyncio.Event()
        self._signals = 0

    def stop(self) -> None:
        """Begin a clean stop; a second call kills the children at once. Signal-handler safe."""
        self._signals += 1
        self._stopping.set()
        if self._signals > 1:
            for child in self._children:
                self._signal(child, signal.SIGKILL)

    @property
    def pids(self) -> dict[str, int]:
        """The running children by component name."""
        return {
            child.component.name: child.process.pid
            for child in self._children
            if child.process is not None and child.process.returncode is None
        }

    async def run(self) -> list[Exit]:
        async with asyncio.TaskGroup() as tasks:
            for child in self._children:
                tasks.create_task(self._keep_running(child))
        return [exit_ for child in self._children for exit_ in child.exits]

    async def _keep_running(self, child: _Child) -> None:
        name = child.component.name
        while not self._stopping.is_set():
            process = await self._start(child)
            stopping = asyncio.ensure_future(self._stopping.wait())
            exited = asyncio.ensure_future(process.wait())
            await asyncio.wait({stopping, exited}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not exited.done():
                await self._terminate(child, process, exited)
                return
            await self._finish(child, process, killed=False)
            uptime = time.monotonic() - child.started_at
            child.crashes = 1 if uptime >= self._restart.max_s else child.crashes + 1
            delay = self._restart.delay(child.crashes)
            log.warning(
                "%s (pid %d) exited with %s after %.1f s; restarting in %.1f s (crash %d in a row)",
                name,
                process.pid,
                _status(process.returncode),
                uptime,
                delay,
                child.crashes,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _start(self, child: _Child) -> asyncio.subprocess.Process:
        argv = bigbrotr_command(child.component.args, self._config)
        parent = os.getpid()
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self._env,
            process_group=0,
            preexec_fn=lambda: _die_with_parent(parent),
        )
        child.process = process
        child.started_at = time.monotonic()
        child.output = asyncio.create_task(self._relay_output(child.component.name, process))
        log.info(
            "started %s (pid %d): bigbrotr %s",
            child.component.name,
            process.pid,
            " ".join(child.component.args),
        )
        return process

    async def _terminate(
        self, child: _Child, process: asyncio.subprocess.Process, exited: asyncio.Future[int]
    ) -> None:
        self._signal(child, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(exited), self._shutdown_timeout_s)
            killed = False
        except TimeoutError:
            log.warning(
                "%s (pid %d) still running %.0f s after SIGTERM; killing it",
                child.component.name,
                process.pid,
                self._shutdown_timeout_s,
            )
            self._signal(child, signal.SIGKILL)
            await exited
            killed = True
        await self._finish(child, process, killed=killed)

    async def _finish(
        self, child: _Child, process: asyncio.subprocess.Process, *, killed: bool
    ) -> None:
        if child.output is not None:
            await child.output
        returncode = await process.wait()
        exit_ = Exit(child.component.name, process.pid, returncode, killed)
        child.exits.append(exit_)
        if self._stopping.is_set():
            log.info(
                "%s (pid %d) stopped: %s after %.1f s",
                exit_.name,
                exit_.pid,
                "killed" if killed else _status(exit_.returncode),
                time.monotonic() - child.started_at,
            )

    def _signal(self, child: _Child, signum: int) -> None:
        process = child.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)

    async def _relay_output(self, name: str, process: asyncio.subprocess.Process) -> None:
        """Each line of the child, prefixed with its name; a slow terminal slows only the logs."""
        assert process.stdout is not None
        prefix = f"{name:<{self._width}} | "
        async for line in process.stdout:
            self._output.write(prefix + line.decode(errors="replace").rstrip("\n") + "\n")
            self._output.flush()


def _status(returncode: int | None) -> str:
    if returncode is None:
        return "no status"
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


async def supervise(
    settings: Settings, config: str | None, env: Mapping[str, str] | None = None
) -> list[Exit]:
    """Run `settings.run.components` until SIGTERM or SIGINT (a second one kills at once)."""
    supervisor = main_job(settings, config, env)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, supervisor.stop)
    try:
        return await supervisor.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def main_job(
    settings: Settings,
    config: str | None,
    env: Mapping[str, str] | None = None,
    output: TextIO | None = None,
) -> Supervisor:
    """The supervisor of a one-machine deployment: one child per configured component."""
    run = settings.run
    return Supervisor(
        [Component(name, (name,)) for name in run.components],
        config=config,
        restart=RestartPolicy(run.restart_base_s, run.restart_max_s),
        shutdown_timeout_s=run.shutdown_timeout_s,
        env=env,
        output=output,
    )
