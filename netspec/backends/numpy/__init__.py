"""The NumPy model: a checked network and its weights, run on batches.

    plan    the steps (each kind lowers itself, `Layer.numpy`) and their fusions
    model   NumpyModel: threads, the ways to run a small batch, `activations`
    inputs  the batches it takes, checked against the network
    memory  what it allocates, for the memory analysis (`NumpyRuntime`)
"""

from .inputs import Layout, arrange_batch, load_input, prepare_input, sample_shape
from .model import NumpyModel, usable_cpus

__all__ = ["Layout", "NumpyModel", "arrange_batch", "load_input", "prepare_input", "sample_shape",
           "usable_cpus"]
