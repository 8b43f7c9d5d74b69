"""User-facing errors: one line naming the problem and the fix, never a deep traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class AshError(Exception):
    """An error caused by user input (config, checkpoint, file, data); printed as one line."""


class ConfigError(AshError):
    """A config file or override is invalid."""


class CheckpointError(AshError):
    """A checkpoint is missing, corrupt, or from another program."""


class TrainingDiverged(AshError):
    """The loss became NaN or infinite."""


def cli_entry(main: Callable[..., T]) -> Callable[..., T]:
    """Wrap a command's main(): AshError becomes `error: ...` on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except AshError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper
