"""Names with `-` and `$param` parts, `repeat N as j`, and numbered labels inside `[ ... ]`."""

from __future__ import annotations

import pytest

import netspec
from conftest import one_error


def names(text: str) -> list[str]:
    return [layer.name for layer in netspec.parse(text, "t.ns").layers]


def test_labels_take_dashes_and_params_like_regnets_names():
    spec = """
block stage(i, n) { repeat $n as j { block$i-$j: [ conv 1x1 x4 nobias; bn ] } }
input 8x8x3
trunk_output: { block1: stage(1, 2) }
"""
    assert names(spec)[1:] == [f"trunk_output.block1.block1-{j}.{k}"
                               for j in (0, 1) for k in (0, 1)]


def test_dashes_do_not_break_negative_numbers_or_expressions():
    spec = """
block b(c) { conv 1x1 x{c-1}; conv 1x1 x{c - 2} }
input 8x8x4
first-stage: b(c=5)
p-1: pool 2 s2
"""
    net = netspec.parse(spec, "t.ns")
    assert [lay.output_shape for lay in net.layers[1:]] == [(8, 8, 4), (8, 8, 3), (4, 4, 3)]
    assert names(spec)[1:] == ["first-stage.conv1", "first-stage.conv2", "p-1"]
    err = one_error("input 8x8x3\nconv 3x3 p-1 x4")
    assert "padding must not be negative" in str(err)


@pytest.mark.parametrize("label", ["a-", "-a", "a--b"])
def test_a_dash_only_joins_two_parts(label):
    with pytest.raises(netspec.SpecSyntaxError):
        netspec.parse(f"input 8x8x3\n{label}: relu", "t.ns")


def test_number_labels_skip_positions_in_a_sequence():
    # torchvision's ConvNeXt numbers Permute modules too: the weights sit at 0, 2, 3, 5
    spec = "input 8x8x3\nstage: [ conv 1x1 x4; 2: bn; relu; 5: conv 1x1 x4 relu ]"
    assert names(spec)[1:] == ["stage.0", "stage.2", "stage.3", "stage.5", "stage.6"]


def test_a_number_label_on_a_group_or_call_sets_its_position():
    spec = "block b() { conv 1x1 x2 }\ninput 8x8x3\nf: [ relu; 3: b(); [ relu ]; 7: { bn } ]"
    assert names(spec)[1:] == ["f.0", "f.3.conv1", "f.4.0", "f.7.bn1"]


def test_number_labels_outside_a_sequence_are_plain_names():
    assert names("input 8x8x3\nf: { 3: relu; relu }")[1:] == ["f.3", "f.relu1"]


@pytest.mark.parametrize("body, taken, message", [
    ("conv 1x1 x2; 0: relu", "0: relu", "sequence number 0 is already taken"),
    ("3: conv 1x1 x2; 1: relu", "1: relu", "sequence number 1 goes backwards"),
    ("2: conv 1x1 x2 relu; 3: bn", "3: bn", "sequence number 3 is already taken"),
])
def test_number_labels_never_go_back(body, taken, message):
    text = f"input 8x8x3\nf: [ {body} ]"
    err = one_error(text)
    assert message in str(err)
    assert err.column == text.split("\n")[1].index(taken) + 1
    assert "only go forward" in err.hint


def test_repeat_counter_counts_from_zero():
    spec = "input 8x8x3\nrepeat 3 as j { conv 1x1 x{j+1} }"
    net = netspec.parse(spec, "t.ns")
    assert [lay.output_shape[-1] for lay in net.layers[1:]] == [1, 2, 3]


@pytest.mark.parametrize("text, message", [
    ("input 4x4x1\nrepeat 2 as C relu", "`C` cannot name a repeat's counter"),
    ("block f(j) { repeat 2 as j relu }\ninput 4x4x1\nf(1)", "it is already a parameter"),
    ("block f(a-b) { relu }\ninput 4x4x1\nf(1)", "use letters, digits and `_`"),
    ("input 4x4x1\nr$x: relu", "unknown parameter `x`"),
])
def test_bad_counters_parameters_and_label_params(text, message):
    assert message in str(one_error(text))


def test_conditional_expressions_pick_the_first_blocks_stride():
    # torchvision's stages: stride s for the first block, 1 for the rest
    spec = ("block stage(n, s) [ repeat $n as j conv 3x3 s{s if j == 0 else 1} p1 x4 ]\n"
            "input 16x16x3\nlayer: stage(3, s=2)")
    net = netspec.parse(spec, "t.ns")
    assert [lay.output_shape for lay in net.layers[1:]] == [(8, 8, 4)] * 3
    shapes = netspec.parse("input 8x8x3\nconv 1x1 x{1 + (2 < 3) + (3 <= 3 < 2) + (1 != 1)}",
                           "t.ns").output_shape
    assert shapes == (8, 8, 2)


def test_syntax_errors_after_a_dashed_or_numbered_label_point_at_the_layer():
    for text in ("input 8x8x3\nblock1-0: cnov 3x3 x4", "input 8x8x3\nf: [ 3: cnov 1x1 x2 ]"):
        err = one_error(text)
        assert "unknown layer `cnov`" in str(err)
        assert err.column == text.split("\n")[1].index("cnov") + 1


@pytest.mark.parametrize("label", ["my.conv", "a-", "3x"])
def test_invalid_labels_say_what_a_label_may_be(label):
    err = one_error(f"input 8x8x3\n{label}: relu")
    assert f"`{label}` is not a valid label" in str(err) and "`-` between parts" in err.hint
