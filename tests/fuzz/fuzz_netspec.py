"""Coverage-guided fuzzing (atheris) of netspec's three readers of untrusted bytes.

Not part of the pytest run (the file name does not start with `test_`). Run one
target at a time, for a bounded time, from the repository root:

    pip install atheris
    PYTHONPATH=$PWD python tests/fuzz/fuzz_netspec.py parser  -max_total_time=120 \
        -dict=tests/fuzz/netspec.dict
    PYTHONPATH=$PWD python tests/fuzz/fuzz_netspec.py weights -max_total_time=120
    PYTHONPATH=$PWD python tests/fuzz/fuzz_netspec.py onnx    -max_total_time=120

Each target accepts any NetspecError (a clear message) and nothing else: any
other exception, a crash, a hang (-timeout) or an allocation over -rss_limit_mb
is a finding, which atheris saves as `crash-*` / `timeout-*` for replay
(`python tests/fuzz/fuzz_netspec.py TARGET crash-...`). The seed corpus is the
specs in specs/ (parser), weights saved by `netspec init` (weights) and an
exported model (onnx), written to a temporary folder at start.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["netspec", "lark", "zipfile"]):
    import zipfile  # noqa: F401 -- instrumented, so that the fuzzer sees into the archive reader

    import netspec
    import netspec.data.arrays
    import netspec.language.builder   # netspec imports these on first use: import them
    import netspec.language.parser    # here, inside the block, so that they are instrumented
    import netspec.backends.onnx
    import netspec.source.limits
    import netspec.data.weights
    import netspec.tables
    from netspec.source.diagnostics import NetspecError

ROOT = Path(__file__).resolve().parents[2]
NET = netspec.parse("input 6x6x2\nconv 3x3 x3 relu\nbn\nfc 2\n", "fuzz.ns")
WORK = Path(tempfile.mkdtemp(prefix="netspec-fuzz-"))
FILE = WORK / "input.bin"


def fuzz_parser(data: bytes) -> None:
    """Any text: a Network or NetspecErrors, never another exception."""
    text = data.decode("utf-8", "replace")
    try:
        net = netspec.parse(text, "fuzz.ns")
    except NetspecError as err:
        err.render()
        return
    net.summary()
    net.to_dict()


def fuzz_weights(data: bytes) -> None:
    """Any .npz bytes: checked weights or a WeightsError, with and without a network."""
    from netspec.data.weights import load_weights
    FILE.write_bytes(data)
    for net in (NET, None):
        try:
            load_weights(FILE, net)
        except NetspecError as err:
            err.render()


def fuzz_onnx(data: bytes) -> None:
    """Any .onnx bytes run on a small batch: an output or a NetspecError."""
    import numpy as np

    from netspec.backends.onnx import run_onnx_file
    FILE.write_bytes(data)
    try:
        run_onnx_file(FILE, np.ones((1, 2, 6, 6), np.float32))
    except NetspecError as err:
        err.render()


def _seeds(target: str) -> Path:
    corpus = WORK / f"corpus-{target}"
    corpus.mkdir()
    if target == "parser":
        for spec in sorted((ROOT / "specs").glob("*.ns")):
            (corpus / spec.name).write_bytes(spec.read_bytes())
    elif target == "weights":
        from netspec.data.weights import save_weights
        save_weights(corpus / "w.npz", NET.init_weights(0))
    else:
        from netspec.backends.onnx import save_onnx
        save_onnx(NET, NET.init_weights(0), corpus / "m.onnx")
    return corpus


TARGETS = {"parser": fuzz_parser, "weights": fuzz_weights, "onnx": fuzz_onnx}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options]")
    target = sys.argv.pop(1)
    args = sys.argv + ([] if any(not a.startswith("-") for a in sys.argv[1:])
                       else [str(_seeds(target))])
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    atheris.Setup(args, TARGETS[target])
    atheris.Fuzz()
