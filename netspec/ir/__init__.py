"""The built network: a tree of the structure the spec wrote (tree.py), whose
flattening is the layer graph the backends run."""
