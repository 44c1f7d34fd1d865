"""ONNX export (every kind lowers itself, `Layer.onnx`) and onnxruntime as a backend.

    graph    the graph a network lowers into, and the in-memory model (`to_onnx`)
    export   the .onnx file, streamed and atomic (`save_onnx`)
    runtime  onnxruntime on the exported network (`OnnxModel`) or on a file (`OnnxFile`)
"""

from .export import EXTERNAL_DATA_BYTES, save_onnx
from .graph import DEFAULT_OPSET, MIN_OPSET, newest_opset, to_onnx
from .runtime import OnnxFile, OnnxModel, run_onnx_file

__all__ = ["DEFAULT_OPSET", "EXTERNAL_DATA_BYTES", "MIN_OPSET", "OnnxFile", "OnnxModel",
           "newest_opset", "run_onnx_file", "save_onnx", "to_onnx"]
