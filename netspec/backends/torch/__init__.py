"""PyTorch code generation (`netspec export --torch`): see module.py."""

from .module import TorchCodegenError, torch_source

__all__ = ["TorchCodegenError", "torch_source"]
