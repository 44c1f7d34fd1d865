"""Models from other formats as specs: ONNX import.

    onnx/    the graph walked node by node into layers (each kind reads its operators:
             `Layer.onnx_ops`, `Layer.from_onnx`; shape computations and constants in
             `plumbing`)
    spec/    the layers written as a spec tree: structure (series–parallel, or with named
             values where joins read values of different forks: dag), naming (scopes from
             module paths), the names of the values joins read (values), blocks and
             repeats, and the layout the printer writes (`netspec fmt`'s printer)

The API is `netspec.importer.import_onnx`, which checks what is written against the model.
"""
