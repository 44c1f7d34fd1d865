"""`netspec export`: a network and its weights as an .onnx file, streamed and atomic.

The file is byte-for-byte a serialised ModelProto, written field by field so that
no second copy of the weights is made; past 2 GB the weights go to a data file
beside it (ONNX external data). See graph.py for what the graph holds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto

from ...source.files import atomic_write, unwinding_on_signals
from .graph import skeleton, tensor

if TYPE_CHECKING:
    from ...network import Network

#: Protobuf cannot serialise a model of 2 GiB or more; beyond this, weights go
#: to a separate file beside the .onnx (ONNX external data).
EXTERNAL_DATA_BYTES = 2**31 - 2**26


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, length: int) -> bytes:
    """Protobuf tag and length of a length-delimited field."""
    return _varint(number << 3 | 2) + _varint(length)


# Protobuf field numbers, from onnx.proto.
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9


def save_onnx(net: Network, weights: dict[str, np.ndarray], path: str | Path,
              opset: int | None = None) -> dict[str, Any]:
    """Write the network as an .onnx file, streaming each weight array from memory.

    The file is byte-for-byte a serialised ModelProto, but written field by field,
    so export needs no second or third copy of the weights (protobuf's own
    serialisation would hold the model and its bytes at once). Past 2 GB the
    weights go to `PATH.ID.data` beside it as ONNX external data, ID being unique
    to this export. Atomic, the pair too: the data file is written first under
    its new name, then the .onnx that references it is renamed into place, then
    the data files of earlier exports to PATH are removed, so the .onnx on disk
    always references complete data of its own export. A failed export leaves
    no partial file. Returns {"opset": N, "external": data file or None}.
    """
    path = Path(path)
    model, arrays = skeleton(net, weights, opset)
    external = sum(a.nbytes for _, a in arrays) >= EXTERNAL_DATA_BYTES
    location = f"{path.name}.{os.urandom(8).hex()}.data"
    heads: list[tuple[bytes, np.ndarray | None]] = []
    offset = 0
    for name, array in arrays:
        t = tensor(name, dtype=array.dtype)
        t.dims.extend(array.shape)
        if external:
            t.data_location = TensorProto.EXTERNAL
            for key, value in (("location", location), ("offset", offset), ("length", array.nbytes)):
                t.external_data.add(key=key, value=str(value))
            offset += array.nbytes
            heads.append((t.SerializeToString(), None))
        else:
            heads.append((t.SerializeToString() + _field(_TENSOR_RAW_DATA, array.nbytes), array))
    entries = [(_field(_GRAPH_INITIALIZER, len(h) + (a.nbytes if a is not None else 0)), h, a)
               for h, a in heads]
    graph = model.graph.SerializeToString()
    model.ClearField("graph")
    graph_len = len(graph) + sum(len(f) + len(h) + (a.nbytes if a is not None else 0)
                                 for f, h, a in entries)

    def write_model(f: Any) -> None:
        f.write(model.SerializeToString())
        f.write(_field(_MODEL_GRAPH, graph_len))
        f.write(graph)
        for field, head, array in entries:
            f.write(field)
            f.write(head)
            if array is not None:
                f.write(memoryview(array).cast("B"))

    def write_data(f: Any) -> None:
        for _, array in arrays:
            f.write(memoryview(array).cast("B"))

    stale = _data_files_of(path)
    with unwinding_on_signals():   # a SIGTERM between the two writes removes the new data
        if external:
            atomic_write(path.parent / location, write_data)
        try:
            atomic_write(path, write_model)
        except BaseException:
            if external:
                (path.parent / location).unlink(missing_ok=True)
            raise
    for name in stale - {location}:
        (path.parent / name).unlink(missing_ok=True)
    return {"opset": model.opset_import[0].version, "external": location if external else None}


def _data_files_of(path: Path) -> set[str]:
    """External data files that exports to `path` wrote and may have left behind.

    Those the current .onnx references (only plain names in its folder), and any
    `PATH.ID.data` (an export killed between writing its data and its model).
    """
    names: set[str] = set()
    pattern = re.compile(re.escape(path.name) + r"\.[0-9a-f]{16}\.data")
    try:
        names.update(p.name for p in path.parent.iterdir() if pattern.fullmatch(p.name))
        if path.is_file() and path.stat().st_size < 2**26:   # an external-data .onnx is small
            old = onnx.load(str(path), load_external_data=False)
            for t in old.graph.initializer:
                for entry in t.external_data:
                    if (entry.key == "location" and "/" not in entry.value
                            and "\\" not in entry.value and entry.value.startswith(path.name)
                            and entry.value.endswith(".data")):
                        names.add(entry.value)
    except Exception:  # an unreadable old file or folder: nothing to clean up
        pass
    names.discard(path.name)
    return names
