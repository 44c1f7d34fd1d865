"""Every analysis on every shipped network spec (specs/ in any folder), against its oracle.

The classic specs (specs/*.ns) are checked at their own size in test_receptive_field.py
and test_memory.py; here the zoo's families run at the smallest input that leaves
their parameters unchanged (zoo_oracle.smallest_input), which keeps the PyTorch
twins fast: receptive fields against autograd (a narrow twin, positive weights),
and the table's analysis columns, JSON, `explain` and the forward peak as a smoke
test on every spec. Training memory: test_zoo_memory.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import network_specs
from zoo_oracle import smallest_input

import netspec
from netspec.analysis import forward_peak, receptive_fields
from netspec.analysis.explain import explain

torch = pytest.importorskip("torch")
from test_receptive_field import _check

ROOT = Path(__file__).resolve().parent.parent
ALL = network_specs()
ZOO = [p for p in ALL if p.parent != ROOT / "specs"]


def _id(path: Path) -> str:
    return path.stem


@pytest.mark.parametrize("spec", ZOO, ids=_id)
def test_zoo_receptive_fields_against_autograd(spec):
    net = smallest_input(spec)
    fields = receptive_fields(net)
    spatial = [lay for lay in net.layers if lay.name in fields]
    step = max(1, len(spatial) // 6)
    chosen = {*spatial[::step], spatial[-1]}
    exact = _check(net, [lay for lay in spatial if lay in chosen], narrow=True)
    assert exact >= 3, exact   # the input and the early layers' windows fit at least


@pytest.mark.parametrize("spec", ALL, ids=_id)
def test_every_spec_explains_and_fills_every_analysis_column(spec):
    from netspec.tables import COLUMNS, as_dict, table
    net = netspec.load(spec)
    text = explain(net)
    assert all(layer.name in text for layer in net.layers if not layer.aux)
    out = table(net, columns=tuple(COLUMNS), batch=2)
    assert net.layers[-1].name in out
    d = as_dict(net, batch=2)
    fields = receptive_fields(net)
    # every spatial layer has its field, except from a window no arithmetic describes
    # on (an uneven adaptive pooling, as in an aux head; upsampling's fractional
    # stride): there the column shows –
    assert {lay["name"] for lay in d["layers"] if "rf" in lay and "jump" in lay} == set(fields)
    for layer in net.layers:
        if len(layer.output_shape) == 3 and layer.name not in fields:   # it, or an input, has
            assert layer.window() is None or \
                any(i.name not in fields for i in layer.inputs), layer.name   # no window
    assert forward_peak(net, 2).bytes > 0
