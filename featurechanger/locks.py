"""An exclusive lock across processes on one machine, for work that two commands must not do
at once on the same files (building one shard set, training one run)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from featurechanger.errors import DataError


@contextmanager
def exclusive(lock_file: Path, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (created if need be) while the block runs; raise a
    DataError with the message `busy` at once if another process holds it. The system drops the
    lock when its process ends, however it ends, so a crash leaves nothing to clean up."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(busy) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
