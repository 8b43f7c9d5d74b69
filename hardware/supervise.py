"""Keep Lava's processes on a leash: run a worker under a watchdog, kill a run completely.

Lava's multiprocessing runtime forks one OS process per process model, plus a shared-memory
manager, and passes messages through POSIX shared memory (/dev/shm/psm_*). `stop()` ends
them all, but a run that hangs or loses a process never gets there, and killing its processes
leaves the shared memory behind. So the Lava network runs in a worker process in its own
process group, under a watchdog that, on timeout or on a signal, kills the whole group and
unlinks every shared-memory segment and semaphore the group had mapped (Linux /proc). The
worker dies with the watchdog (PR_SET_PDEATHSIG), taking its own descendants down first.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

SHARED_MEMORY = Path("/dev/shm")
_PR_SET_PDEATHSIG = 1


def run_watched(command: list[str], timeout: float) -> int | None:
    """Run `command` in a new process group; None if it was killed after `timeout` seconds.

    Whatever ends the command, nothing of its group outlives this call. SIGTERM or SIGINT to
    this process kill the group first, then exit with 128 + signal.
    """
    child = subprocess.Popen(command, start_new_session=True)

    def forward(signum, _frame):
        kill_processes(lambda: group_members(child.pid))
        child.wait()
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        status = child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        status = None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    kill_processes(lambda: group_members(child.pid))  # a worker that died leaves orphans
    child.wait()
    return status


def die_with_parent(parent_pid: int) -> None:
    """In the worker: when the watchdog dies (or sends SIGTERM), end every descendant too."""

    def on_term(signum, _frame):
        kill_processes(lambda: descendants(os.getpid()))
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the watchdog died before prctl took effect
        on_term(signal.SIGTERM, None)


def kill_processes(members: Callable[[], list[int]]) -> int:
    """SIGKILL every process `members()` lists (never this one), including any they fork
    meanwhile, and unlink their shared memory; returns how many died."""
    stopped: set[int] = set()
    while new := [pid for pid in members() if pid not in stopped and pid != os.getpid()]:
        for pid in new:
            _signal(pid, signal.SIGSTOP)  # a stopped process can neither fork nor map memory
        _wait_until(lambda: all(_state(pid) in "TZ" for pid in new))
        stopped.update(new)
    for segment in shared_memory_of(stopped):
        segment.unlink(missing_ok=True)
    for pid in stopped:
        _signal(pid, signal.SIGKILL)
    _wait_until(lambda: all(_state(pid) in "Z" for pid in stopped))
    return len(stopped)


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid`."""
    return [pid for pid, (_, group) in _process_table().items() if group == pgid]


def descendants(pid: int) -> list[int]:
    """Live children, grandchildren, ... of `pid`."""
    children: dict[int, list[int]] = {}
    for child, (parent, _) in _process_table().items():
        children.setdefault(parent, []).append(child)
    found, frontier = [], [pid]
    while frontier:
        kids = children.get(frontier.pop(), [])
        found.extend(kids)
        frontier.extend(kids)
    return found


def shared_memory_of(pids: set[int]) -> set[Path]:
    """Named shared memory and semaphores in /dev/shm that `pids` have mapped and that still
    exist: Python multiprocessing's segments (psm_*) and POSIX semaphores (sem.*), caught
    between creation and unlink."""
    segments = set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        for line in maps.splitlines():
            if line.endswith("(deleted)"):
                continue  # already unlinked
            path = Path(line.split(maxsplit=5)[-1])
            if path.parent == SHARED_MEMORY and path.name.startswith(("psm_", "sem.")):
                segments.add(path)
    return segments


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every live (non-zombie) process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue
        if state != "Z":
            table[int(stat.parent.name)] = (int(parent), int(group))
    return table


def _state(pid: int) -> str:
    """Process state letter (R, S, T, Z, ...); "" once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
