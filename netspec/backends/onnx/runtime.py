"""onnxruntime as a backend: the exported network run on batches, and .onnx files run."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from ...source.diagnostics import Diagnostic, InputError, NetspecError
from ..numpy.inputs import prepare_input
from . import export
from .graph import to_onnx

if TYPE_CHECKING:
    import onnxruntime

    from ...network import Network


def _session(model: onnx.ModelProto | str) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session, or a NetspecError saying why onnxruntime refused."""
    import onnxruntime as ort
    where = model if isinstance(model, str) else None
    options = ort.SessionOptions()
    options.log_severity_level = 3   # errors become NetspecErrors; no warnings on stderr
    try:
        source = model if isinstance(model, str) else model.SerializeToString()
        with contextlib.redirect_stdout(io.StringIO()):   # its "EP Error ... retrying" prints
            return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own untyped errors
        raise NetspecError(Diagnostic("error", f"cannot load ONNX model: {err}", where)) from None


class OnnxModel:
    """The network exported to ONNX and run by onnxruntime (CPU): `model(x)`, like NumpyModel."""

    def __init__(self, net: Network, weights: dict[str, np.ndarray], opset: int | None = None) -> None:
        self.net = net
        if sum(np.asarray(a).nbytes for a in weights.values()) < export.EXTERNAL_DATA_BYTES:
            self.session = _session(to_onnx(net, weights, opset))
            return
        # protobuf cannot hold a model of 2 GiB in memory (RegNetY-128GF has 2.6 GB of
        # weights): write it with external data to a private folder and load the file
        import tempfile
        with tempfile.TemporaryDirectory(prefix="netspec-onnx-") as folder:
            path = Path(folder) / "model.onnx"
            export.save_onnx(net, weights, path, opset)
            self.session = _session(str(path))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.net.layers[0].name: prepare_input(self.net, x)})[0]


class OnnxFile:
    """An .onnx file (as exported by netspec: one float input) loaded into onnxruntime."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.session = _session(self.path)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(float)":
            raise NetspecError(Diagnostic("error", "netspec runs models with one float input; "
                                          "this one takes "
                                          f"{', '.join(i.type for i in inputs) or 'none'}",
                                          self.path))
        outputs = self.session.get_outputs()
        if not outputs or outputs[0].type not in ("tensor(float)", "tensor(double)",
                                                  "tensor(float16)"):
            raise NetspecError(Diagnostic("error", "netspec runs models whose first output is "
                                          "a float tensor; this one gives "
                                          f"{outputs[0].type if outputs else 'no output'}",
                                          self.path))
        self.input = inputs[0]
        #: the input's dimensions, None where the model leaves one open (N); None when the
        #: model leaves its input's shape unsaid (onnxruntime checks it then)
        self.dims: tuple[int | None, ...] | None = tuple(
            d if isinstance(d, int) else None for d in self.input.shape) \
            if self.input.shape else None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run a batch (in the model's own layout); returns float32."""
        x = np.asarray(x, dtype=np.float32)
        want = self.dims
        if want is not None and (x.ndim != len(want) or any(
                w is not None and w != d for w, d in zip(want, x.shape))):
            dims = "×".join("N" if w is None else str(w) for w in want) or "a scalar"
            raise InputError(f"input has shape {'×'.join(map(str, x.shape))}, but "
                             f"{self.path} expects {dims}")
        try:
            y = self.session.run(None, {self.input.name: x})[0]
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise NetspecError(Diagnostic("error", f"onnxruntime failed: {err}",
                                          self.path)) from None
        return np.asarray(y, dtype=np.float32)


def run_onnx_file(path: str | Path, x: np.ndarray) -> np.ndarray:
    """Run an .onnx file (as exported by netspec: one float input) on the batch x."""
    return OnnxFile(path)(x)
