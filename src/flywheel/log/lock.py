"""An inter-process lock so that check-then-commit is atomic across writer processes."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from types import TracebackType


class FileLock:
    """Exclusive `flock` on a file, shared by the threads of a process through a thread
    lock; not re-entrant. The OS releases it when its process dies, even by `kill -9`."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._fd: int | None = None
        self._thread_lock = threading.Lock()

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take the lock; without `blocking`, return False at once if it is held."""
        if not self._thread_lock.acquire(blocking=blocking):
            return False
        try:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._release_fd(locked=False)
            self._thread_lock.release()
            return False
        except BaseException:
            self._release_fd(locked=False)
            self._thread_lock.release()
            raise
        return True

    def release(self) -> None:
        self._release_fd(locked=True)
        self._thread_lock.release()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _release_fd(self, *, locked: bool) -> None:
        if self._fd is not None:
            if locked:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
