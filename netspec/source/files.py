"""Files a command writes: never half-written, never over one of its inputs.

`atomic_write` writes a new file beside its target and renames it into place,
so readers see the old file or the whole new one. Where Linux allows, the new
file has no name at all until it is complete (an `O_TMPFILE`), so even a
SIGKILL leaves nothing behind; elsewhere it is a hidden `.NAME.*.tmp` file,
removed on any error and on SIGTERM, SIGHUP and SIGINT.

`refuse_overwriting_inputs` is the one check every command runs before any
work: no output may be one of its inputs, compared by identity (device and
inode), so `./w.npz`, a symlink or a hard link to it are all caught.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator, Mapping

if TYPE_CHECKING:   # pathlib is imported where used: `check` starts faster without it
    from pathlib import Path

#: Signals that, while a file is being written, unwind the writer (as Ctrl-C does)
#: so its temporary file is removed before the process ends.
CLEANUP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT")
                        if hasattr(signal, name))


class OutputIsInputError(ValueError):
    """An output path names the same file as one of the command's inputs."""


class Terminated(BaseException):
    """A termination signal arrived while writing; the temporary file is gone."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def _identity(path: str | Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def refuse_overwriting_inputs(outputs: Mapping[str, str | Path | None],
                              inputs: Mapping[str, str | Path | None]) -> None:
    """Raise OutputIsInputError if any output is the same file as any input.

    Both map a role (`-o`, `--weights`, `SPEC`) to a path, or to None / `-` when
    there is no file. Files are compared by device and inode, not by spelling.
    """
    seen = {}
    for role, path in inputs.items():
        if path is not None and str(path) != "-" and (ident := _identity(path)) is not None:
            seen.setdefault(ident, (role, path))
    for role, path in outputs.items():
        if path is None or str(path) == "-":
            continue
        ident = _identity(path)
        if ident is not None and ident in seen:
            in_role, in_path = seen[ident]
            same = "" if str(in_path) == str(path) else f" ({in_path})"
            raise OutputIsInputError(f"{role} {path} is the {in_role} file{same}: writing it "
                                     f"would destroy an input; choose another output")


@contextlib.contextmanager
def unwinding_on_signals() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise Terminated (SIGINT raises KeyboardInterrupt).

    Only handlers still at their default are replaced (an embedding program keeps
    its own), and only in the main thread, where Python runs signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signum)

    for sig in CLEANUP_SIGNALS:
        if sig != signal.SIGINT and signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def die_of(signum: int) -> None:
    """End the process as `signum` would have, after cleaning up (exit status 128 + signum)."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


#: Per device: whether an unnamed file there can be linked into place (see `_link`).
_LINKABLE: dict[int, bool] = {}


def _link(fd: int, dst: Path) -> None:
    """Give the unnamed file `fd` the new name `dst` (linkat), raising OSError if impossible."""
    try:
        os.link(f"/proc/self/fd/{fd}", dst, follow_symlinks=True)
        return
    except FileExistsError:
        raise
    except OSError:
        pass   # some kernels and sandboxes refuse the /proc path; try AT_EMPTY_PATH
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, at_empty_path = -100, 0x1000
    if libc.linkat(fd, b"", at_fdcwd, os.fsencode(dst), at_empty_path) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(dst))


def _open_unnamed(directory: Path) -> int | None:
    """An unnamed file in `directory` (Linux O_TMPFILE), or None where it cannot be named later."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        fd = os.open(directory, flag | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as err:
        if err.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT
                         ) and directory.is_dir():
            return None      # a file system without O_TMPFILE: use a named temporary
        raise
    device = os.fstat(fd).st_dev
    if device not in _LINKABLE:   # try once per device, on another empty file
        probe = directory / f".netspec-probe.{os.urandom(6).hex()}.tmp"
        probe_fd = os.open(directory, flag | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            _link(probe_fd, probe)
            probe.unlink()
            _LINKABLE[device] = True
        except OSError:
            _LINKABLE[device] = False
        finally:
            os.close(probe_fd)
    if not _LINKABLE[device]:
        os.close(fd)
        return None
    return fd


def _link_into_place(fd: int, path: Path) -> None:
    """Give the unnamed file `fd` the name `path`, replacing any file there atomically."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"
        try:
            _link(fd, tmp)
        except FileExistsError:
            continue
        try:
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return
    raise FileExistsError(errno.EEXIST, "cannot find a free temporary name", str(path))


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(f)` on a new file beside `path`, then rename it into place.

    The rename is atomic on POSIX: readers see the old file or the whole new one.
    On any error or termination signal the new file is removed and `path` is
    untouched; errors name `path`, never the temporary file.
    """
    from pathlib import Path
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        with unwinding_on_signals():
            fd = _open_unnamed(directory)
            if fd is not None:
                with os.fdopen(fd, "wb") as f:
                    write(f)
                    f.flush()
                    os.fsync(f.fileno())
                    _link_into_place(f.fileno(), path)
                return
            _write_named(path, directory, write)
    except OSError as err:   # name the file the user asked for, not a temporary one
        raise OSError(err.errno, err.strerror or str(err), str(path)) from None


def _write_named(path: Path, directory: Path, write: Callable[[BinaryIO], object]) -> None:
    import tempfile  # here, not at the top: it costs `check` start-up time (~3 ms)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)   # as open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


#: The largest spec netspec reads (a spec is a few KB; this stops `/dev/zero`).
MAX_SPEC_BYTES = 16 * 2**20


class TooLargeError(ValueError):
    """A file is larger than netspec reads."""


def read_limited(source: str | Path | BinaryIO, limit: int = MAX_SPEC_BYTES) -> bytes:
    """The bytes of a file, pipe or binary stream, refusing more than `limit`."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return read_limited(f, limit)
    data = source.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"larger than {limit // 2**20} MiB, the most netspec reads as a spec")
    return data


def decode_spec(data: bytes) -> str:
    """A spec's text from its bytes: UTF-8, a byte order mark dropped (ValueError if not UTF-8)."""
    try:
        return data.decode("utf-8-sig")   # a BOM is not part of the spec
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 text (byte {err.start + 1} is 0x{data[err.start]:02x})"
                         ) from None
