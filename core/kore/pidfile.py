"""The master's pidfile (option ``pidfile``, ``korectl run -p FILE``).

Written atomically (a temporary file renamed over the path) when the master
starts supervising; refused when it names another process that still runs;
removed when the master stops, only if it still holds this master's pid
(a newer master may have taken the path over).  A forked child (a worker,
the reload probe) forgets it: only the master removes the file.
"""

from __future__ import annotations

import os
from typing import Optional


class Pidfile:
    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.pid: Optional[int] = None

    def create(self, pid: Optional[int] = None) -> None:
        """Write ``pid`` (default: this process); SystemExit naming the
        running process when the file belongs to one."""
        pid = os.getpid() if pid is None else pid
        old = self._read()
        if old and old != pid:
            try:
                os.kill(old, 0)
            except ProcessLookupError:
                pass                    # stale: its process is gone
            except PermissionError:
                raise SystemExit("korectl: pidfile %s names a running process"
                                 % self.path) from None
            else:
                raise SystemExit("korectl: pidfile %s names running process %d"
                                 % (self.path, old))
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % pid)
        os.replace(tmp, self.path)
        self.pid = pid

    def forget(self) -> None:
        """In a forked child: never remove the master's file."""
        self.pid = None

    def remove(self) -> None:
        """Remove the file if it still holds the pid this object wrote."""
        if self.pid is None:
            return
        if self._read() == self.pid:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        self.pid = None

    def _read(self) -> Optional[int]:
        try:
            with open(self.path) as f:
                return int(f.read().strip() or 0) or None
        except (OSError, ValueError):
            return None
