"""Translations of the built network, each of the IR and never re-deriving it:

    torch   PyTorch source code, one class per block (`netspec export --torch`)
"""
