"""Files prodgate reads from people it does not trust, and the files its commands write.

Evidence folders, policy files, key files and change files come from the launcher's side of the
threat model (docs/approvals.md): any of them may be a FIFO that never delivers a byte, a device
that never ends, a symlink out of the folder, 4 GiB of brackets, a billion-laughs YAML or plain
binary. Every reader here refuses such input with one error that names the file, what is wrong
and the fix, in bounded time and memory (issue 11, Deliver 9):

- :func:`read_file` opens without following a FIFO into a hang (``O_NONBLOCK``), checks on the
  open descriptor that it is a regular file, and reads at most ``limit`` bytes (16 MiB for
  documents);
- :func:`parse_json` refuses nesting deeper than :data:`MAX_NESTING` (the json module would
  otherwise recurse until RecursionError, and later code with it);
- :func:`parse_yaml` refuses anchors and aliases before anything is built, so no alias can be
  expanded (by the policy's canonical JSON for the signature check, for example), and nesting
  deeper than :data:`MAX_NESTING`;
- :func:`create_file` writes an output without replacing an existing file (unless ``force``) and
  says so when the folder is missing.

The error class is the caller's (PolicyError for a policy, ApprovalError for evidence, ...), so
each adapter reports the refusal as it reports the others.
"""
import errno
import json
import os
import uuid
import stat

import yaml

from .errors import InputError

MiB = 1024 * 1024
MAX_DOCUMENT_BYTES = 16 * MiB
MAX_KEY_BYTES = 64 * 1024
MAX_NESTING = 64

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def kind_of(mode):
    """What a non-regular file is, in words."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def check_path(path, what, error=InputError, fix=""):
    """``path`` as a str; refuses a NUL byte (the OS cannot name such a file) and empty paths."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise error(f"{what}: {path!r} is not a file path{fix}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise error(f"{what}: the path is empty{fix}")
    if "\0" in path:
        raise error(f"{what} {path!r}: the path contains a NUL byte, which no file name can hold{fix}")
    return path


def _size(limit):
    return f"{limit // MiB} MiB" if limit >= MiB and limit % MiB == 0 else f"{limit} bytes"


def read_file(path, what, error=InputError, limit=MAX_DOCUMENT_BYTES, fix=""):
    """The bytes of the regular file ``path``, at most ``limit`` of them; ``error`` otherwise.

    ``fix`` is appended to every message (e.g. "; set prodgate_policy to the signed policy file")."""
    path = check_path(path, what, error, fix)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}{fix}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{what} {path} is {kind_of(mode)}, not a regular file: give the path of the file itself{fix}")
        chunks, size = [], 0
        while size <= limit:
            try:
                chunk = os.read(fd, min(MiB, limit + 1 - size))
            except OSError as exc:
                raise error(f"{what} {path} cannot be read: {exc.strerror or exc}{fix}") from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise error(f"{what} {path} is larger than {_size(limit)}, the most prodgate reads: "
                        f"this is not a file prodgate wrote{fix}")
        return b"".join(chunks)
    finally:
        os.close(fd)


def decode_text(data, where, error=InputError, fix=""):
    """UTF-8 text of ``data``; binary content is refused."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{where} is not UTF-8 text (binary content at byte {exc.start}){fix}") from None


def read_text(path, what, error=InputError, limit=MAX_DOCUMENT_BYTES, fix=""):
    return decode_text(read_file(path, what, error, limit, fix), f"{what} {path}", error, fix)


def _deeper_than(data, limit):
    """Whether the nesting of lists and maps in ``data`` exceeds ``limit`` (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_json(text, where, error=InputError, fix="", max_nesting=MAX_NESTING):
    """JSON ``text`` (str or bytes) -> data, refusing invalid JSON and nesting deeper than ``max_nesting``."""
    if isinstance(text, (bytes, bytearray)):
        text = decode_text(bytes(text), where, error, fix)
    too_deep = f"{where} nests lists or objects deeper than {max_nesting} levels, which no prodgate file does{fix}"
    try:
        data = json.loads(text)
    except RecursionError:
        raise error(too_deep) from None
    except ValueError as exc:
        raise error(f"{where} is not valid JSON ({exc}){fix}") from None
    if _deeper_than(data, max_nesting):
        raise error(too_deep)
    return data


def parse_yaml(text, where, loader, error=InputError, fix="", max_nesting=MAX_NESTING):
    """YAML ``text`` -> data with ``loader`` (a SafeLoader), refusing anchors and aliases before anything
    is constructed (so nothing is ever expanded) and nesting deeper than ``max_nesting``."""
    if isinstance(text, (bytes, bytearray)):
        text = decode_text(bytes(text), where, error, fix)
    try:
        depth = 0
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                mark = event.start_mark
                raise error(f"{where} uses a YAML anchor or alias (&{getattr(event, 'anchor', '')} / *..., line "
                            f"{mark.line + 1}): prodgate files spell every value out, since an alias can expand to "
                            f"gigabytes; write the repeated value in full{fix}")
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > max_nesting:
                    raise error(f"{where} nests lists or mappings deeper than {max_nesting} levels, which no prodgate "
                                f"file does{fix}")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
        return yaml.load(text, Loader=loader)  # nosec B506 - the callers pass a SafeLoader
    except yaml.YAMLError as exc:
        raise error(f"{where} is not valid YAML: {exc}{fix}") from None
    except RecursionError:
        raise error(f"{where} nests lists or mappings too deeply{fix}") from None


def check_output(path, what, error=InputError, force=False, fix=""):
    """Refuse an output path before any work is done: a NUL byte, a folder in the way, an existing
    file (unless ``force``), a missing folder. Returns the path as a str."""
    path = check_path(path, what, error, fix)
    if os.path.isdir(path):
        raise error(f"{what} {path} is a folder: give the path of a file to write{fix}")
    if os.path.lexists(path) and not force:
        raise error(f"{what} {path} already exists: refusing to overwrite it; choose a new path, or pass --force "
                    f"to replace it{fix}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise error(f"{what} {path} cannot be written: folder {folder} does not exist; create it "
                    f"(mkdir -p {folder}) or choose another path{fix}")
    return path


class _Replacement:
    """A new file written beside ``path`` and renamed over it when the writing succeeds: a forced
    replacement never shows a half-written file, nor the new content under the old file's mode."""

    def __init__(self, handle, tmp, path):
        self.handle, self.tmp, self.path = handle, tmp, path

    def write(self, data):
        return self.handle.write(data)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.handle.flush()
                os.fsync(self.handle.fileno())
            self.handle.close()
            if exc_type is None:
                os.replace(self.tmp, self.path)
        except BaseException:
            os.unlink(self.tmp)
            raise
        if exc_type is not None:
            os.unlink(self.tmp)
        return False


def create_file(path, what, error=InputError, force=False, mode=0o644, fix=""):
    """A new file opened for binary writing, used as a context manager; an existing one is replaced
    only with ``force``, by a new file of ``mode`` renamed over it when the writing succeeds.

    Refuses a path with a NUL byte, a missing folder, a folder in the way and an existing file,
    each with the fix."""
    path = check_path(path, what, error, fix)
    if force and os.path.lexists(path) and (os.path.islink(path) or not os.path.isfile(path)):
        mode_now = os.lstat(path).st_mode
        raise error(f"{what} {path} is {kind_of(mode_now)}, not a file: give the path of a file to write{fix}")
    replacing = force and os.path.lexists(path)
    target = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp" if replacing else path
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags, mode)
    except FileExistsError:
        raise error(f"{what} {path} already exists: refusing to overwrite it; choose a new path, or pass --force "
                    f"to replace it{fix}") from None
    except OSError as exc:
        folder = os.path.dirname(os.path.abspath(path))
        if exc.errno == errno.ENOENT and not os.path.isdir(folder):
            raise error(f"{what} {path} cannot be written: folder {folder} does not exist; create it "
                        f"(mkdir -p {folder}) or choose another path{fix}") from None
        if exc.errno == errno.EISDIR or os.path.isdir(path):
            raise error(f"{what} {path} is a folder: give the path of a file to write{fix}") from None
        raise error(f"{what} {path} cannot be written: {exc.strerror or exc}{fix}") from None
    if replacing and os.geteuid() == 0:
        old = os.lstat(path)
        os.fchown(fd, old.st_uid, old.st_gid)   # root replacing another account's file keeps it theirs
    handle = os.fdopen(fd, "wb")
    return _Replacement(handle, target, path) if replacing else handle
