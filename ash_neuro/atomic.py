"""Replace a file atomically: write a temporary beside it, then rename it into place.

Every writer of a file someone else may read (checkpoints, the world and its tokenizer, the NIR
export, Lava's out.h5) goes through `replace_atomically`, so a run killed mid-write leaves
either the old file or the new one, never half of one, and no temporary behind. Standard
library only: the Lava environment (`hardware/`) imports it too.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_NAME_TRIES = 100


@contextmanager
def replace_atomically(target: str | Path) -> Iterator[Path]:
    """A new empty temporary file beside `target`, which replaces `target` when the block ends.

    The block writes the temporary by path (h5py, `nir.write`, `torch.save`, ...). On a clean
    exit the temporary is flushed to disk (fsync) and renamed onto `target` (`os.replace`,
    atomic within a folder); on any exception, KeyboardInterrupt included, it is removed and
    `target` is left as it was. The folder must exist. Failures are the OSError of the step
    that failed; callers word them.
    """
    target = Path(target)
    temporary = _create_beside(target)
    try:
        yield temporary
        _fsync(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)


def remove_stale_temporaries(target: str | Path) -> list[Path]:
    """Remove the temporaries `replace_atomically` left beside `target` when a process writing
    it was killed (SIGKILL runs no cleanup); returns what was removed. Call it only where no
    other process writes `target` at the same time."""
    target = Path(target)
    removed = []
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed


def _create_beside(target: Path) -> Path:
    """An empty `.<name>.<random>.tmp` in the target's folder, made with mode 0666 so that the
    umask (and any default ACL) applies as to a normal file; mkstemp's 0600 would survive the
    rename and make the file private."""
    for _ in range(_NAME_TRIES):
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(descriptor)
        return temporary
    raise FileExistsError(errno.EEXIST, "no unused temporary name beside it", str(target))


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; best effort (not every platform can fsync a folder)."""
    try:
        _fsync(folder)
    except OSError:
        pass
