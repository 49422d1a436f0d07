"""The log: ``kore.log(priority, msg)`` and the kernel's own messages.

In development (``deployment = "dev"``) lines go to stdout with a timestamp,
the process role (``parent`` or ``wrk N``) and the level.  In production they
go to syslog (facility daemon), unless ``logfile`` names a file.  ``USR1``
reopens the log file (log rotation).
"""

import json as _json
import os
import sys
import syslog
import time as _time

LOG_ERR = 3
LOG_WARNING = 4
LOG_NOTICE = 5
LOG_INFO = 6
LOG_DEBUG = 7

LEVEL_NAMES = {LOG_ERR: "error", LOG_WARNING: "warning", LOG_NOTICE: "notice",
               LOG_INFO: "info", LOG_DEBUG: "debug"}
LEVEL_BY_NAME = {v: k for k, v in LEVEL_NAMES.items()}


class Log:
    def __init__(self):
        self.role = "korectl"
        self.threshold = LOG_INFO
        self.path = ""
        self.use_syslog = False
        self.stream = sys.stdout
        self._file = None
        self.json = False       # one JSON object per line (--log-format json)

    def configure(self, level="info", path="", use_syslog=False):
        self.threshold = LEVEL_BY_NAME.get(level, LOG_INFO)
        self.path = path
        self.use_syslog = use_syslog and not path
        if self.use_syslog:
            syslog.openlog("kore", syslog.LOG_PID | syslog.LOG_NDELAY,
                           syslog.LOG_DAEMON)
        self.reopen()

    def reopen(self):
        """Reopen the log file (SIGUSR1)."""
        if not self.path:
            return
        old = self._file
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")
        self.stream = self._file
        if old is not None:
            old.close()

    def enabled(self, priority):
        return priority <= self.threshold

    def write(self, priority, msg):
        if priority > self.threshold:
            return
        if self.use_syslog:
            syslog.syslog(priority, "[%s] %s" % (self.role, msg))
            return
        now = _time.time()
        if self.json:
            line = json_line(now, priority, self.role, msg)
        else:
            stamp = _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(now))
            line = "%s.%03d [%s] %s: %s\n" % (stamp, int(now * 1000) % 1000, self.role,
                                              LEVEL_NAMES.get(priority, str(priority)), msg)
        try:
            self.stream.write(line)
            self.stream.flush()
        except (OSError, ValueError):
            try:
                os.write(2, line.encode("utf-8", "replace"))
            except OSError:
                pass


LOG = Log()

# OpenTelemetry log data model: severity numbers of the syslog levels
_OTEL_SEVERITY = {LOG_ERR: 17, LOG_WARNING: 13, LOG_NOTICE: 10, LOG_INFO: 9, LOG_DEBUG: 5}


def json_line(now, priority, role, msg):
    """One error-log line as JSON (OpenTelemetry field names); json.dumps
    escapes quotes and newlines, so a message cannot forge a field or a line."""
    return _json.dumps({
        "timestamp": _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(now))
        + ".%03dZ" % (int(now * 1000) % 1000),
        "severity_text": LEVEL_NAMES.get(priority, str(priority)).upper(),
        "severity_number": _OTEL_SEVERITY.get(priority, 9),
        "body": msg,
        "process.pid": os.getpid(),
        "process.role": role,
    }, ensure_ascii=False) + "\n"


def log(priority, msg):
    """kore.log(priority, msg): write msg at priority (kore.LOG_* constants)."""
    if not isinstance(priority, int):
        raise TypeError("kore.log: priority must be an int (kore.LOG_*)")
    LOG.write(priority, str(msg))
    return True


def error(msg):
    LOG.write(LOG_ERR, msg)


def warning(msg):
    LOG.write(LOG_WARNING, msg)


def notice(msg):
    LOG.write(LOG_NOTICE, msg)


def info(msg):
    LOG.write(LOG_INFO, msg)


def debug(msg):
    LOG.write(LOG_DEBUG, msg)
