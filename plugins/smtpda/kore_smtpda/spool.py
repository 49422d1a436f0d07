"""The spool: one file per message, written so that it is never half-read.

Layout (Postfix's queues, by directory)::

    <spool>/tmp/            files being written (never read by the agent)
    <spool>/incoming/       complete new messages
    <spool>/deferred/       messages waiting for their next attempt
    <spool>/undeliverable/  bounced or expired messages, kept keep_days
    <spool>/corrupt/        files that could not be parsed, set aside
    <spool>/status.json     the agent's counters (see status.py)

A file is created in ``tmp/``, written, fsync'ed, made mode 0600 and then
renamed into ``incoming/`` (rename is atomic within a file system), and the
directory is fsync'ed: the agent sees either nothing or the whole file.

File format: the line ``KORE-SMTPDA 1``, one line of JSON (the envelope and
the delivery state), then the RFC 5322 message exactly as it is sent.  The
envelope names the SMTP server by name (or host/port/ssl for a server without
credentials); it never holds a password.  The JSON records the message's
length and SHA-256, so a truncated or altered file is recognised as corrupt.
"""

import hashlib
import json
import os
import secrets
import time

MAGIC = b"KORE-SMTPDA 1\n"
SUBDIRS = ("tmp", "incoming", "deferred", "undeliverable", "corrupt")
QUEUES = ("incoming", "deferred")
SUFFIX = ".msg"
FILE_MODE = 0o600
DIR_MODE = 0o700


class CorruptFile(ValueError):
    """A spool file that cannot be parsed (moved to corrupt/)."""


def ensure(spool):
    """Create the spool directories (mode 0700) if missing; return spool."""
    os.makedirs(spool, mode=DIR_MODE, exist_ok=True)
    for sub in SUBDIRS:
        os.makedirs(os.path.join(spool, sub), mode=DIR_MODE, exist_ok=True)
    return spool


def new_name():
    """A unique file name that sorts by arrival: ns timestamp + random."""
    return "%016x-%s%s" % (time.time_ns(), secrets.token_hex(6), SUFFIX)


def encode(envelope, message):
    """Bytes of a spool file for ``envelope`` (dict) and ``message`` (bytes)."""
    env = dict(envelope)
    env["size"] = len(message)
    env["sha256"] = hashlib.sha256(message).hexdigest()
    head = json.dumps(env, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return MAGIC + head + b"\n" + message


def decode(data):
    """Return ``(envelope, message)`` from a spool file's bytes or raise CorruptFile."""
    if not data.startswith(MAGIC):
        raise CorruptFile("not a spool file (bad first line)")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise CorruptFile("truncated envelope")
    try:
        env = json.loads(data[len(MAGIC):end].decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptFile("bad envelope: %s" % exc) from None
    if not isinstance(env, dict):
        raise CorruptFile("bad envelope: not an object")
    for key, kind in (("id", str), ("message_id", str), ("sender", str),
                      ("rcpt", list), ("server", (str, dict)), ("created", (int, float)),
                      ("attempts", int), ("size", int), ("sha256", str)):
        if not isinstance(env.get(key), kind):
            raise CorruptFile("bad envelope: field '%s' missing or of the wrong type" % key)
    _check_envelope(env)
    message = data[end + 1:]
    if len(message) != env["size"]:
        raise CorruptFile("message is %d bytes, the envelope says %d (truncated?)"
                          % (len(message), env["size"]))
    if hashlib.sha256(message).hexdigest() != env["sha256"]:
        raise CorruptFile("message checksum mismatch")
    return env, message


def _address_ok(value):
    return isinstance(value, str) and "\r" not in value and "\n" not in value


def _check_envelope(env):
    """The fields the agent acts on, beyond their types: a file edited by
    hand or by a bug must be set aside, not fail in the middle of SMTP on
    every retry."""
    if not _address_ok(env["sender"]):
        raise CorruptFile("bad envelope: sender is not an address")
    if not all(_address_ok(r) and "@" in r for r in env["rcpt"]):
        raise CorruptFile("bad envelope: a recipient is not an address")
    server = env["server"]
    if isinstance(server, dict) and not (
            isinstance(server.get("host"), str) and server["host"]
            and isinstance(server.get("port"), int) and 0 < server["port"] < 65536):
        raise CorruptFile("bad envelope: server is neither a name nor host and port")
    nxt = env.get("next_attempt")
    if nxt is not None and not isinstance(nxt, (int, float)):
        raise CorruptFile("bad envelope: next_attempt is not a time")
    for key in ("errors", "bounced"):
        if not isinstance(env.get(key, []), list):
            raise CorruptFile("bad envelope: field '%s' is not a list" % key)


def read_envelope(path):
    """Only the envelope of a spool file (cheap: the message is not hashed)."""
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
        if head != MAGIC:
            raise CorruptFile("not a spool file (bad first line)")
        line = f.readline(1 << 20)
    if not line.endswith(b"\n"):
        raise CorruptFile("truncated envelope")
    try:
        env = json.loads(line.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptFile("bad envelope: %s" % exc) from None
    if not isinstance(env, dict):
        raise CorruptFile("bad envelope: not an object")
    return env


def read(path):
    with open(path, "rb") as f:
        return decode(f.read())


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(spool, queue, name, data):
    """Write ``data`` to ``<spool>/<queue>/<name>``: tmp file, fsync, rename."""
    tmp = os.path.join(spool, "tmp", name + "." + secrets.token_hex(4))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.close(fd)
    final = os.path.join(spool, queue, name)
    os.rename(tmp, final)
    _fsync_dir(os.path.join(spool, queue))
    return final


def move(spool, path, queue):
    """Move a spool file to another queue directory (same name)."""
    dst = os.path.join(spool, queue, os.path.basename(path))
    os.rename(path, dst)
    _fsync_dir(os.path.join(spool, queue))
    return dst


def names(spool, queue):
    """File names in a queue directory (complete spool files only)."""
    try:
        with os.scandir(os.path.join(spool, queue)) as it:
            return [e.name for e in it if e.name.endswith(SUFFIX) and e.is_file()]
    except FileNotFoundError:
        return []


def counts(spool):
    """``{queue: number of files}`` for every queue directory."""
    return {sub: len(names(spool, sub)) for sub in SUBDIRS if sub != "tmp"}
