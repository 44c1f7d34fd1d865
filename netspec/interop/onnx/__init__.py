"""ONNX → layers: the reader every kind's `from_onnx` is given, and the walk over a graph."""

from .reader import Imported, Num, OnnxImportError, module_path
from .walk import MIN_OPSET, load_onnx, read_onnx

__all__ = ["MIN_OPSET", "Imported", "Num", "OnnxImportError", "load_onnx", "module_path",
           "read_onnx"]
