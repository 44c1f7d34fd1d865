""".npy and .npz files, read as an untrusted source: headers first, data only if it fits.

NumPy's own `np.load` allocates whatever a header claims (a 100-byte file can
ask for terabytes) and inflates a compressed member before anyone looks at
its name. Here every header is read and checked first: a known `.npy` format
version, a header of at most `MAX_HEADER` bytes, no Python objects (so no
pickles), and a shape whose size is exactly the data that follows; the
caller can then check names and shapes (`inspect`) before any data is read
(`read`), and refuse what would not fit in memory.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import IO, Callable

import numpy as np

from ..source.limits import available_memory

#: The largest .npy header read (NumPy writes a few hundred bytes).
MAX_HEADER = 10_000
#: What reading a damaged file may raise, besides the checks below.
READ_ERRORS = (OSError, ValueError, EOFError, KeyError, OverflowError, RuntimeError,
               NotImplementedError, zipfile.BadZipFile, zlib.error, SyntaxError)


class ArrayFileError(ValueError):
    """An .npy/.npz file that is damaged, hostile or not what was expected."""


@dataclass(frozen=True)
class Header:
    """What an .npy header says: the array's shape and dtype, and where its data starts."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int

    @property
    def nbytes(self) -> int:
        return prod(self.shape) * self.dtype.itemsize


def read_header(f: IO[bytes], size: int, what: str) -> Header:
    """Read and check the header of an .npy stream of `size` bytes, reading only the header."""
    prefix = f.read(8)
    if len(prefix) < 8 or prefix[:6] != b"\x93NUMPY":
        raise ArrayFileError(_msg(what, "not a valid .npy array (no .npy magic number)"))
    version = (prefix[6], prefix[7])
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise ArrayFileError(_msg(what, f".npy format version {version} is not supported"))
    width = 2 if version == (1, 0) else 4
    length_bytes = f.read(width)
    length = int.from_bytes(length_bytes, "little") if len(length_bytes) == width else -1
    if not 0 <= length <= MAX_HEADER:   # checked before reading it: a header may claim 4 GB
        raise ArrayFileError(_msg(what, f"not a valid .npy array (a header of "
                                        f"{length:,} bytes; netspec reads at most {MAX_HEADER:,})"))
    text = f.read(length)
    try:
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0   # 3.0 differs only in the text's encoding
        shape, fortran, dtype = read(io.BytesIO(length_bytes + text), max_header_size=MAX_HEADER)
    except READ_ERRORS as err:
        raise ArrayFileError(_msg(what, f"not a valid .npy array ({_reason(err)})")) from None
    if dtype.hasobject:
        raise ArrayFileError(_msg(what, "holds Python objects, which netspec never unpickles"))
    if any(d < 0 for d in shape):
        raise ArrayFileError(_msg(what, f"header gives a negative dimension {shape}"))
    header = Header(tuple(shape), dtype, fortran, 8 + width + length)
    if header.nbytes != size - header.offset:
        raise ArrayFileError(_msg(what, f"the header claims shape {tuple(shape)} of {dtype} "
                                        f"({header.nbytes:,} bytes) but "
                                        f"{max(size - header.offset, 0):,} bytes follow: the "
                                        f"file is truncated or damaged"))
    return header


def _msg(what: str, text: str) -> str:
    """`what: text`, or `text` alone when `what` is empty (the file itself)."""
    return f"{what}: {text}" if what else text


def _reason(err: BaseException) -> str:
    text = str(err).split("\n")[0]
    return text[:200] if text else type(err).__name__


def _read_data(f: IO[bytes], header: Header, what: str) -> np.ndarray:
    """The array whose header was read from f, reading exactly its bytes."""
    array = np.empty(header.shape, header.dtype, order="F" if header.fortran else "C")
    view = memoryview(array.reshape(-1, order="A")).cast("B") if array.size else memoryview(b"")
    done = 0
    while done < len(view):
        n = f.readinto(view[done:done + 2**24])
        if not n:
            raise ArrayFileError(_msg(what, "the data ends early: the file is truncated"))
        done += n
    return array


def fits_in_memory(nbytes: int) -> bool:
    """Whether `nbytes` more bytes are available now (True when unknown)."""
    have = available_memory()
    return have is None or nbytes <= have


def _refuse_unless_fits(nbytes: int, what: str) -> None:
    if not fits_in_memory(nbytes):
        raise ArrayFileError(_msg(what, f"its arrays need {nbytes:,} bytes "
                                        f"({nbytes / 2**30:,.1f} GiB), more than the memory "
                                        f"available"))


def read_npy(path: str | Path) -> np.ndarray:
    """One array from an .npy file (regular file), checked header first."""
    what = ""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if zipfile.is_zipfile(f):
                raise ArrayFileError(_msg(what, "expected a .npy array, found an .npz archive"))
            f.seek(0)
            header = read_header(f, size, what)
            _refuse_unless_fits(header.nbytes, what)
            return _read_data(f, header, what)
    except ArrayFileError:
        raise
    except READ_ERRORS as err:
        raise ArrayFileError(_msg(what, f"cannot read ({_reason(err)})")) from None


#: Deflate cannot compress more than 1032:1; a member claiming more is damaged or a bomb.
MAX_DEFLATE_RATIO = 1032


def _check_member(info: zipfile.ZipInfo, where: str) -> None:
    """Refuse, from the zip headers alone, a member that is encrypted or inflates impossibly."""
    if info.flag_bits & 0x1:
        raise ArrayFileError(f"{where} is encrypted")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise ArrayFileError(f"{where}: the archive's sizes disagree: it is damaged")
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 1024:
            raise ArrayFileError(f"{where} claims {info.file_size:,} bytes from "
                                 f"{info.compress_size:,} compressed, more than deflate can "
                                 f"give: the archive is damaged or a zip bomb")
    else:
        raise ArrayFileError(f"{where} is compressed with method {info.compress_type}; netspec "
                             f"reads .npz archives as np.savez and np.savez_compressed write "
                             f"them (stored or deflated)")


class Archive:
    """An .npz archive opened for checking: names and headers now, data on `read`."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self.zip = zipfile.ZipFile(path)
        except READ_ERRORS as err:
            with open(path, "rb") as f:
                magic = f.read(6)
            if magic == b"\x93NUMPY":
                raise ArrayFileError("expected an .npz archive of named arrays, "
                                     "found a single array") from None
            raise ArrayFileError(f"not an .npz archive ({_reason(err)})") from None
        self.headers: dict[str, Header] = {}
        self.members: dict[str, zipfile.ZipInfo] = {}
        try:
            for info in self.zip.infolist():
                name = info.filename.removesuffix(".npy")
                where = f"array `{name}`"
                if name in self.members:
                    raise ArrayFileError(f"{where} is stored twice")
                _check_member(info, where)
                with self.zip.open(info) as f:
                    self.headers[name] = read_header(f, info.file_size, where)
                self.members[name] = info
        except ArrayFileError:
            self.zip.close()
            raise
        except READ_ERRORS as err:
            self.zip.close()
            raise ArrayFileError(f"cannot read ({_reason(err)})") from None

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.zip.close()

    def read(self, accept: Callable[[str], bool] = lambda name: True) -> dict[str, np.ndarray]:
        """The arrays (those `accept` keeps), after refusing what would not fit in memory."""
        names = [n for n in self.headers if accept(n)]
        _refuse_unless_fits(sum(self.headers[n].nbytes for n in names), "")
        out = {}
        try:
            for name in names:
                with self.zip.open(self.members[name]) as f:
                    f.read(self.headers[name].offset)
                    out[name] = _read_data(f, self.headers[name], f"array `{name}`")
        except ArrayFileError:
            raise
        except READ_ERRORS as err:
            raise ArrayFileError(f"cannot read array `{name}` ({_reason(err)})") from None
        return out

