"""Change register: witnesses that keep every signed checkpoint outside the register.

The anchor file holds only the latest checkpoint and is replaced on every run, so whoever can
write the controller's files can delete it or put an older one back (that needs no key), and a
truncated register then verifies. A witness is an append-only log of *every* checkpoint, kept
where the register's writer cannot rewrite it (issue 13, the Certificate Transparency idea of an
independent witness of signed tree heads):

* a file: JSON lines, opened ``O_APPEND``. A configured witness file is also made append-only
  (``chattr +a``) when the writer may (root, a file system with the attribute), and ``verify``
  reports whether it is; better, create it append-only once as root and let the controller's
  user only append. Put it on another volume or host (an NFS export of a log host, a WORM mount).
  Without configuration the witness is a plain file next to the anchor (no attribute set, so
  test and demo folders stay removable);
* ``syslog`` (or ``syslog:local3``): one line per checkpoint to the system log, for a SIEM to
  keep. It is write-only from here: ``verify`` cannot read it back, the SIEM compares.

The option is a comma-separated list of those. ``{register_id}`` in a path is replaced.
"""
import fcntl
import json
import os
import struct
import syslog

from ..errors import RegisterError
from ..base import canonical_json

_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_APPEND_FL = 0x00000020


def default_witness(anchor_template):
    """Next to the anchor unless configured: ``witness-{register_id}.jsonl`` in the anchor's folder."""
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(anchor_template)))
    return os.path.join(folder, "witness-{register_id}.jsonl")


def parse_witnesses(spec, register_id):
    """``"PATH,syslog:local3"`` -> [("file", path), ("syslog", facility)]."""
    out = []
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item == "syslog" or item.startswith("syslog:"):
            facility = item.partition(":")[2] or "user"
            if not hasattr(syslog, "LOG_" + facility.upper()):
                raise RegisterError(f"register witness {item!r}: unknown syslog facility {facility!r}; use user, "
                                    "daemon, auth or local0..local7")
            out.append(("syslog", facility))
        else:
            out.append(("file", os.path.abspath(os.path.expanduser(item.replace("{register_id}", register_id)))))
    return out


def _flags(fd):
    buf = fcntl.ioctl(fd, _FS_IOC_GETFLAGS, struct.pack("l", 0))
    return struct.unpack("l", buf)[0]


def append_only(path):
    """True/False when the file system reports the append-only attribute, None when it cannot say."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return bool(_flags(fd) & _FS_APPEND_FL)
    except OSError:
        return None
    finally:
        os.close(fd)


def _make_append_only(fd):
    try:
        flags = _flags(fd)
        if not flags & _FS_APPEND_FL:
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, struct.pack("l", flags | _FS_APPEND_FL))
    except OSError:
        pass  # not root, or a file system without the attribute: verify reports append_only false/unknown


def witness_checkpoint(witnesses, checkpoint, seq, protect=True):
    """Send a signed checkpoint (stored at entry ``seq``) to every witness. Returns [problem, ...].

    ``protect``: also set the append-only attribute on witness files (when this process may).
    """
    line = canonical_json(dict(checkpoint, seq=seq))
    problems = []
    for kind, where in witnesses:
        try:
            if kind == "syslog":
                syslog.openlog("prodgate-register", syslog.LOG_PID, getattr(syslog, "LOG_" + where.upper()))
                syslog.syslog(syslog.LOG_NOTICE, "checkpoint " + line)
                continue
            os.makedirs(os.path.dirname(where), mode=0o700, exist_ok=True)
            fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, (line + "\n").encode("utf-8"))
                os.fsync(fd)
                if protect:
                    _make_append_only(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            problems.append(f"witness {where}: {exc}")
    return problems


def read_witness(path):
    """The checkpoints of a witness file, oldest first: [(line number, checkpoint dict)]. [] if absent."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RegisterError(f"register witness {path} cannot be read: {exc}") from exc
    out = []
    for n, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            cp = json.loads(text)
        except ValueError as exc:
            if n == len(lines):  # a torn last line (the controller died mid-write): the line before counts
                break
            raise RegisterError(f"register witness {path} line {n} is not JSON ({exc}): the witness was altered; "
                                "keep it for the audit") from exc
        out.append((n, cp))
    return out


def latest_witnessed(witnesses):
    """[(name, checkpoint)] of the newest checkpoint in each file witness that holds one."""
    out = []
    for kind, where in witnesses:
        if kind == "file":
            entries = read_witness(where)
            if entries:
                out.append((f"witness {where} line {entries[-1][0]}", entries[-1][1]))
    return out
