"""Training memory of the zoo's specs (specs/ subfolders) against PyTorch.

What backward keeps is counted by `saved_tensors_hooks` on a PyTorch twin run at
the smallest input that leaves the spec's parameters unchanged
(zoo_oracle.smallest_input); aux heads run, as they do in training. The classic
specs (specs/*.ns) are checked at their own size in test_memory.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import network_specs
from zoo_oracle import smallest_input

from netspec.analysis.memory import saved_bytes

pytest.importorskip("torch")
from test_memory import _torch_training_twin

ROOT = Path(__file__).resolve().parent.parent
ZOO = [p for p in network_specs() if p.parent != ROOT / "specs"]
#: The training twin allocates every weight: larger specs are left to their families'
#: smaller members, which are built from the same library blocks.
TWIN_PARAMS = 25_000_000


@pytest.mark.parametrize("spec", ZOO, ids=lambda p: p.stem)
def test_zoo_saved_for_backward_within_10_percent_of_pytorch(spec):
    net = smallest_input(spec)
    if net.total_params > TWIN_PARAMS:
        pytest.skip("the twin's weights alone would take seconds to allocate; its family's "
                    "smaller members run the same blocks")
    # two samples: batch norm in training needs more than one value per channel (an
    # aux head's 1×1 maps)
    saved, _, _ = _torch_training_twin(net, 2, backward=False)
    assert saved_bytes(net, 2) == pytest.approx(saved, rel=0.10)
