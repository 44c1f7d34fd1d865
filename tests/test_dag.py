"""Named values: joins of any earlier values (`concat(a, b)`, `add(a, b)`, `from a`).

The syntax and what it builds, every error it can give, `netspec fmt`, and the
numbers: the NumPy model against PyTorch twins written by hand (Res2Net-like,
DLA-like) and against onnxruntime, receptive fields and memory on a DAG derived by
hand.
"""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

import netspec
from conftest import errors_of, one_error
from dag_specs import DLA, RES2NET
from netspec.language.format import format_spec

TOL = dict(rtol=1e-4, atol=1e-5)


def _inputs(layer):
    return [i.name for i in layer.inputs]


# ---- what it builds -----------------------------------------------------------------

def test_a_join_reads_named_values_in_the_order_written():
    net = netspec.parse("input 8x8x3\nx = {}\nstem: conv 3x3 p1 x4\n"
                        "y = { conv 3x3 p1 x5; relu }\nconcat(y, x, stem)\nfc: fc 2")
    cat = net["concat1"]
    assert _inputs(cat) == ["relu1", "input", "stem"]   # y is the relu's value
    assert cat.output_shape == (8, 8, 12) and cat.text == "concat(y, x, stem)"
    assert cat.reads == ("y", "x", "stem")
    assert _inputs(net["fc"]) == ["concat1"]             # the flow goes on from the join
    assert net.warnings == []


def test_from_continues_from_a_named_value_and_names_name_no_layer():
    net = netspec.parse("input 8x8x3\nx = {}\nbody = { conv 1x1 x3; relu }\nfrom x\n"
                        "skip: conv 1x1 x3\nadd(body, skip)")
    assert [lay.name for lay in net.layers] == ["input", "conv1", "relu1", "skip", "add1"]
    assert _inputs(net["skip"]) == ["input"]
    assert _inputs(net["add1"]) == ["relu1", "skip"]


def test_the_input_is_a_named_value_and_a_label_after_its_shorthand_activation():
    net = netspec.parse("input 8x8x3\nc: conv 1x1 x3 relu\nadd(c, input)")
    assert _inputs(net["add1"]) == ["relu1", "input"]


def test_a_name_given_again_reads_the_latest_value_as_in_a_repeat():
    net = netspec.parse("input 4x4x2\nh = {}\nrepeat 3 { conv 1x1 x2; s = add(h, conv); h = {} }"
                        .replace("add(h, conv)", "{ c = {}; add(h, c) }"))
    adds = [lay for lay in net.layers if lay.kind == "add"]
    assert [_inputs(a) for a in adds] == [["input", "conv1"], ["add1", "conv2"],
                                          ["add2", "conv3"]]


def test_names_are_seen_across_groups_and_branches_of_one_block():
    """Res2Net: branch 2's add reads branch 1's value, inside one block instance."""
    net = netspec.parse(RES2NET)
    assert _inputs(net["layer1.add1"]) == ["layer1.y1", "layer1.chunk2"]
    assert _inputs(net["layer1.concat1"]) == ["layer1.y1", "layer1.relu2", "layer1.chunk3"]
    assert _inputs(net["layer2.add1"]) == ["layer2.y1", "layer2.chunk2"]   # its own y1
    assert net.warnings == []


def test_dla_tree_root_reads_values_out_of_order():
    net = netspec.parse(DLA)
    assert _inputs(net["level1.root.concat1"]) == [
        "level1.tree2.relu2", "level1.tree1.relu2", "level1.downsample"]
    assert net["level1.root.concat1"].output_shape == (8, 8, 40)
    assert _inputs(net["level1.tree1.add1"]) == ["level1.tree1.bn2", "level1.project.1"]
    assert _inputs(net["level1.project.0"]) == ["level1.downsample"]
    assert _inputs(net["level1.tree1.conv1"]) == ["base.2"]   # `from x`: the tree's input


def test_a_value_nothing_reads_is_a_warning():
    net = netspec.parse("input 8x8x3\nx = {}\nconv 1x1 x3\nfrom x\nrelu")
    (w,) = net.warnings
    assert w.code == "unread-value" and w.line == 3
    assert w.message == "the output of `conv1` is never read: `from x` on line 4 reads other " \
                        "values"


# ---- errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("spec,line,col,message,hint", [
    ("input 8x8x3\nconv 1x1 x3\nadd(y, input)", 3, 5, "unknown value `y`",
     "name a value before reading it: `y: conv …` or `y = { … }`"),
    ("input 8x8x3\nstem: conv 1x1 x3\nadd(stme, input)", 3, 5, "unknown value `stme`",
     "did you mean `stem`?"),
    ("input 8x8x3\nconv 1x1 x3\nadd(conv1, input)", 3, 5, "unknown value `conv1`",
     "`conv1` is a layer's own name (line 2), not a value's: label it (`conv1: …`) to read "
     "its output"),
    ("input 8x8x3\nx = {}\nadd(x, y)\ny = conv 1x1 x3", 3, 8,
     "`y` is read before it is computed: it is given on line 4",
     "a join reads only values computed before it (so a network has no cycle): move the join "
     "after that line"),
    ("input 8x8x3\nfrom later\nlater: relu", 2, 6,
     "`later` is read before it is computed: it is given on line 3", None),
    ("block b() { a: conv 1x1 x3; add(a, top) }\ninput 8x8x3\ntop = {}\nb()", 1, 36,
     "`top` is a value of the top level (line 3), which this block does not see",
     "a block reads only the value it is called on and the values it names itself: name what "
     "you need inside the block, or write the join outside it"),
    ("block b() { a: conv 1x1 x3; relu }\ninput 8x8x3\nb1: b()\nadd(a, b1)", 4, 5,
     "`a` is a value inside the block instance `b1` = b() (line 1), which is not visible here",
     "a block instance's values are its own: label the instance (`b1: block(…)`) and read its "
     "output by that name"),
    ("input 8x8x3\naux { h: fc 4 }\nconcat(h, input)", 3, 8,
     "`h` is a value of an `aux` head, which inference does not compute",
     "a join reads values of the main path"),
    ("input 8x8x3\nmul(input, input, input)", 2, 1, "`mul` reads exactly 2 values, not 3",
     "mul them two at a time: `s = mul(a, b)`, then `mul(s, c)`"),
    ("input 8x8x3\nmul(input)", 2, 1, "`mul` reads exactly 2 values, not 1",
     "name the other value too: `mul(input, b)`"),
    ("input 8x8x3\nconcat(input)", 2, 1, "`concat` of one value is that value",
     "to go on from it, write `from input`"),
    ("block b(i) { y$i = {}; from y$j }\ninput 8x8x3\nb(0)", 1, 29, "unknown parameter `j`",
     None),
    ("input 8x8x3\nrepeat 2 as j { h$j: conv 1x1 x3 }\nadd(h0, h)", 3, 9, "unknown value `h`",
     "did you mean `h1`?"),
])
def test_errors(spec, line, col, message, hint):
    err = one_error(spec)
    assert message in str(err), str(err)
    assert (err.line, err.column) == (line, col), str(err)
    assert err.hint == hint or hint is None


@pytest.mark.parametrize("op,how,hint", [
    ("add", "differ", "add sums value by value: both values must have the same shape"),
    ("concat", "differ in height and width", "values are concatenated along the channels, so "
     "each must have the same H×W (pad with `same`, or use the same stride)"),
    ("mul", "cannot be multiplied", "mul multiplies value by value: the second must be "
     "1×1×3 (one value per channel) or 8×8×3"),
])
def test_a_join_of_shapes_that_do_not_combine_names_each_value(op, how, hint):
    err = one_error(f"input 8x8x3\nx = {{}}\nc: conv 3x3 s2 p1 x3\n{op}(x, c)")
    assert isinstance(err, netspec.ShapeError) and (err.line, err.column) == (4, 1)
    assert str(err).startswith(f"t.ns:4:1: `{op}(x, c)` reads values that {how}: "
                               f"`x` is 8×8×3, `c` is 4×4×3")
    assert err.diagnostic.length == len(f"{op}(x, c)")   # the caret underlines the join
    assert err.diagnostic.notes == ("`x`: 8×8×3 from `input`, line 1",
                                    "`c`: 4×4×3 from `c`, line 3")
    assert err.hint == hint


def test_the_errors_are_rendered_in_the_house_style():
    err = one_error("input 8x8x3\nstem: conv 1x1 x3\nconcat(stem, stme)")
    assert err.diagnostic.render() == (
        "t.ns:3:14: error: unknown value `stme`\n"
        "    3 | concat(stem, stme)\n"
        "      |              ^~~~\n"
        "  hint: did you mean `stem`?")


@pytest.mark.parametrize("spec,col,message,hint", [
    ("from y{i+1}", 7, "unexpected `{i+1}` in `from`", "the form is `from NAME`; a name is "
     "letters, digits, `_`, `-` between parts and `$param` parts"),
    ("from", 1, "incomplete `from`: expected a name", "the form is `from NAME`"),
    ("add(a, 3)", 8, "unexpected `3)` in `add`", "a join of named values is `add(NAME, NAME, ...)`; "
     "a name is letters, digits, `_`, `-` between parts and `$param` parts"),
    ("concat()", 8, "unexpected `)` in `concat`", "a join of named values is "
     "`concat(NAME, NAME, ...)`; a name is letters, digits, `_`, `-` between parts and "
     "`$param` parts"),
    ("y = cnov 3x3", 5, "unknown layer `cnov`", "did you mean `conv`?"),
])
def test_syntax_errors(spec, col, message, hint):
    err = one_error("input 8x8x3\n" + spec)
    assert isinstance(err, netspec.SpecSyntaxError) and (err.line, err.column) == (2, col)
    assert message in str(err) and err.hint == hint


def test_names_with_params_are_filled_in():
    net = netspec.parse("block b(i) { y$i = {}; c: conv 1x1 x3; add(y$i, c) }\n"
                        "input 8x8x3\nrepeat 2 as j { h$j: b($j) }\nadd(h0, h1)")
    assert _inputs(net["add1"]) == ["h0.add1", "h1.add1"]
    assert _inputs(net["h1.add1"]) == ["h0.add1", "h1.c"]


def test_every_unknown_name_is_reported_in_one_pass():
    assert [e.column for e in errors_of("input 8x8x3\nconcat(a, input, b)")] == [8, 18]


# ---- the printer --------------------------------------------------------------------------

@pytest.mark.parametrize("written,formatted", [
    ("input 8x8x3\nx   =  {}\nconcat( x,input )\n", "input 8x8x3\nx = {}\nconcat(x, input)\n"),
    ("input 8x8x3\nfrom    input  # back\n", "input 8x8x3\nfrom input  # back\n"),
    ("input 8x8x3\ny = stem: { conv 1x1 x3\n relu }\nadd(y,input)\n",
     "input 8x8x3\ny = stem: {\n    conv 1x1 x3\n    relu\n}\nadd(y, input)\n"),
    ("input 8x8x3\nj: add(input,input); fc: fc 2\nmul(fc,fc)\n",
     "input 8x8x3\nj: add(input, input); fc: fc 2\nmul(fc, fc)\n"),
])
def test_fmt_writes_one_layout(written, formatted):
    assert format_spec(written) == formatted
    assert format_spec(formatted) == formatted


@pytest.mark.parametrize("which", range(4), ids=["res2net", "dla", "vovnet", "hrnet"])
def test_fmt_keeps_the_network_and_the_comments_of_scrambled_dag_specs(which):
    """The specs are formatted; scrambled (spaces, blank lines, comments added), they
    format back to a spec that builds the same graph and keeps every comment."""
    import random

    from test_fmt import _comments, scramble
    spec = [RES2NET, DLA, VOVNET, HRNET][which]
    assert format_spec(spec) == spec
    for seed in range(3):
        text, added = scramble(spec, random.Random(seed))
        out = format_spec(text)
        assert _graph_of(netspec.parse(out)) == _graph_of(netspec.parse(spec))
        assert _comments(out) == _comments(text) and format_spec(out) == out


# ---- the numbers ------------------------------------------------------------------------

def _randomise(model, seed=0):
    import torch
    torch.manual_seed(seed)
    for p in model.parameters():
        p.data.normal_(0, 0.3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("which", [0, 1], ids=["res2net", "dla"])
def test_numpy_and_onnxruntime_match_a_hand_written_torch_module(which):
    torch = pytest.importorskip("torch")
    from dag_specs import torch_twins

    from netspec.backends.onnx import OnnxModel
    net = netspec.parse([RES2NET, DLA][which])
    model = _randomise(torch_twins()[which])
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    weights = net.check_weights(state)   # the names and shapes are torch's
    x = np.random.default_rng(0).standard_normal(
        (2, net.input_shape[2], *net.input_shape[:2])).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.numpy_model(weights)(x), expected, **TOL)
    np.testing.assert_allclose(OnnxModel(net, weights)(x), expected, **TOL)


# ---- analyses on a DAG, derived by hand ---------------------------------------------------

RF_NET = """\
input 16x16x1
a: conv 3x3 s2 p1 x2
b: conv 3x3 p1 x2
c: conv 3x3 p1 x2
s: add(a, c)
concat(s, b, a)
"""


def test_receptive_fields_through_a_dag():
    """a: 1 + 2·1 = 3, jump 2; b: 3 + 2·2 = 7; c: 7 + 2·2 = 11; the add unites a (3) and
    c (11), both centred on pixel 0: 11; the concat unites s, b and a: 11."""
    from netspec.analysis.rf import receptive_fields
    net = netspec.parse(RF_NET)
    fields = receptive_fields(net)
    assert [fields[n].rf for n in ("a", "b", "c", "s", "concat1")] == [
        (3, 3), (7, 7), (11, 11), (11, 11), (11, 11)]
    assert fields["s"].jump == (2, 2) and fields["s"].start == (-5, -5)
    assert net.warnings == []


def test_forward_peak_follows_the_values_lifetimes():
    """float32, batch 1: the input 16·16·1·4 = 1024 B; a, b, c, s 8·8·2·4 = 512 B each; the
    concat 8·8·6·4 = 1536 B. a is read by b, s and the concat, b by c and the concat. At the
    concat a, b and s are alive with it: 3·512 + 1536 = 3072 B; before it at most a, b, c, s
    (2048 B, at s; c goes after s)."""
    from netspec.analysis.memory import forward_peak
    net = netspec.parse(RF_NET)
    peak = forward_peak(net)
    assert (peak.bytes, peak.layer) == (3072, "concat1")
    assert set(peak.alive) == {"a", "b", "s", "concat1"}


@pytest.mark.parametrize("which", [0, 1], ids=["res2net", "dla"])
def test_gradients_match_torch_autograd(which):
    """A value read by several joins (Res2Net's y1, DLA's tree1) gets the sum of their
    gradients."""
    torch = pytest.importorskip("torch")
    from dag_specs import torch_twins
    net = netspec.parse([RES2NET, DLA][which])
    model = _randomise(torch_twins()[which])
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, net.input_shape[2], *net.input_shape[:2])).astype(np.float32)
    dy = rng.standard_normal((2, 10)).astype(np.float32)
    dx, grads = netspec.gradients(net, weights, x, dy)
    xt = torch.from_numpy(x).requires_grad_()
    model(xt).backward(torch.from_numpy(dy))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)


# ---- PyTorch code ------------------------------------------------------------------------

@pytest.mark.parametrize("which", [0, 1, 2], ids=["res2net", "dla", "vovnet"])
def test_generated_torch_writes_named_values_as_variables(which, tmp_path):
    """The generated module loads netspec's weights (strict), computes what the NumPy
    model does, passes ruff and TorchScript; a join is an expression of variables named
    as the spec names its values (a group naming values read outside it is written into
    the forward that reads them)."""
    pytest.importorskip("torch")
    from test_torch_codegen import _check, _ruff
    net = netspec.parse([RES2NET, DLA, VOVNET][which])
    source = _check(net, tmp_path, script=True)
    assert _ruff(tmp_path / f"gen_{net.name}.py").returncode == 0
    assert ["x = y1 + x2", "x = torch.cat([tree2, tree1, downsample], 1)",
            "x = torch.cat([x_, m1, m2, m3], 1)"][which] in source


# ---- pictures --------------------------------------------------------------------------

def _references(svg: str) -> set[tuple[str, str]]:
    """(value, reader) of each reference edge drawn: it starts at the right edge of the
    value's node and ends at its reader's node (or at the fork of the branches that read
    it)."""
    import xml.etree.ElementTree as ET

    from test_pictures import SVG, body_box, groups
    def key(names: list[str]) -> str:   # a layer's name, or a collapsed group's prefix
        parts = [n.split(".") for n in names]
        common = [p[0] for p in zip(*parts) if len(set(p)) == 1]
        return names[0] if len(names) == 1 else ".".join(common)
    boxes = {key(g.get("data-layers").split()): body_box(g) for g in groups(svg)}
    out = set()
    for path in ET.fromstring(svg).iter(f"{SVG}path"):
        if "ref" not in (path.get("class") or "").split():
            continue
        points = re.findall(r"(-?[\d.]+),(-?[\d.]+)", path.get("d"))
        (x0, y0), (x1, y1) = (tuple(map(float, p)) for p in (points[0], points[-1]))
        source = [n for n, b in boxes.items() if abs(b[2] - x0) < 0.2 and b[1] <= y0 <= b[3]]
        reader = [n for n, b in boxes.items()
                  if b[0] - 2 <= x1 <= b[2] + 2 and b[1] - 2 <= y1 <= b[3] + 2]
        assert len(source) == 1 and len(reader) <= 1, (source, reader)
        out.add((source[0], reader[0] if reader else "fork"))
    return out


@pytest.mark.parametrize("which", [0, 1], ids=["res2net", "dla"])
def test_the_graph_picture_draws_each_layer_once_and_every_reference(which, capsys, tmp_path):
    from test_pictures import check_json, check_picture

    from netspec.picture import default_style, draw
    spec = [RES2NET, DLA][which]
    net = netspec.parse(spec)
    assert default_style(net) == "graph"
    svg = draw(net, "graph")
    (tmp_path / "t.ns").write_text(spec)
    layers = check_json(tmp_path / "t.ns", capsys)
    check_picture(svg, layers)   # each layer once, none overlapping
    check_picture(draw(net, "volumes"), layers)
    # every value read other than from the node above it
    want = {
        0: {(f"layer{i}.y1", f"layer{i}.add1") for i in (1, 2)},
        1: {pair for lv, before in (("level1", "base.2"), ("level2", "level1.root.relu1"))
            for pair in [(before, f"{lv}.tree1.conv1"),                    # from x
                         (f"{lv}.project.1", f"{lv}.tree1.add1"),
                         (f"{lv}.tree1.relu2", f"{lv}.root.concat1"),
                         (f"{lv}.downsample", f"{lv}.root.concat1")]},
    }[which]
    assert _references(svg) == want


@pytest.mark.parametrize("depth", [1, 2])
def test_collapsed_pictures_keep_the_references_between_groups(depth, capsys, tmp_path):
    from test_pictures import check_json, check_picture

    from netspec.picture import draw
    net = netspec.parse(DLA)
    (tmp_path / "t.ns").write_text(DLA)
    layers = check_json(tmp_path / "t.ns", capsys)
    svg = draw(net, "graph", depth)
    check_picture(svg, layers)
    refs = _references(svg)
    if depth == 1:   # a level is one box: what it reads comes from the box above it
        assert refs == set()
    else:
        assert ("level1.downsample", "level1.root") in refs
        assert ("base.2", "level1.tree1") in refs and ("level1.tree1", "level1.root") in refs


# ---- ONNX export, then import ---------------------------------------------------------

VOVNET = """\
block osa(mid, out) {
    x = {}
    conv_mid: [
        m1 = { conv 3x3 p1 x$mid nobias; bn; relu }
        m2 = { conv 3x3 p1 x$mid nobias; bn; relu }
        m3 = { conv 3x3 p1 x$mid nobias; bn; relu }
    ]
    concat(x, m1, m2, m3)
    conv_concat: [ conv 1x1 x$out nobias; bn; relu ]
}
input 16x16x3
stem: [ conv 3x3 s2 p1 x8 nobias; bn; relu ]
stage1: osa(8, 16)
stage2: [ pool 3 s2 ceil; osa(12, 24) ]
pool avg global
fc: fc 10
"""


def _graph_of(net):
    """Every layer: name, kind, shape, parameters, and the names of what it reads."""
    return [(lay.name, lay.kind, lay.output_shape, lay.params,
             sorted(i.name for i in lay.inputs) if lay.kind in ("add", "mul")
             else [i.name for i in lay.inputs]) for lay in net.layers]


@pytest.mark.parametrize("spec,written", [
    (RES2NET, ["add(y1, chunk2)", "chunk2 = {}", "repeat 2 layer"]),
    (DLA, ["concat(x, tree1, downsample)", "add(bn2, project)", "from x", "level(16)"]),
    (VOVNET, ["conv_mid_2 = {}", "concat(x, conv_mid_2, conv_mid_5, conv_mid)",
              "stage1: unit(8, 16)"]),
], ids=["res2net", "dla", "vovnet"])
def test_an_exported_dag_imports_as_the_same_network(spec, written):
    """netspec's own ONNX export of a DAG imports back to a spec that builds the same
    layers (names, kinds, shapes, parameters, what each reads) and computes the same;
    the joins read named values; blocks are found where their names are their own."""
    from netspec.importer import import_onnx
    net = netspec.parse(spec, "t.ns")
    rng = np.random.default_rng(0)
    weights = {k: rng.uniform(0.5, 1.5, v.shape).astype(np.float32) if "running_var" in k
               else rng.normal(0, 0.3, v.shape).astype(np.float32)
               for k, v in net.init_weights(seed=1).items()}
    imported = import_onnx(net.to_onnx(weights), name="t")
    assert imported.names_kept
    assert _graph_of(imported.network) == _graph_of(net)
    for text in written:
        assert text in imported.text, imported.text
    assert format_spec(imported.text) == imported.text
    x = rng.standard_normal((2, net.input_shape[2], *net.input_shape[:2])).astype(np.float32)
    np.testing.assert_allclose(imported.network.numpy_model(imported.weights())(x),
                               net.numpy_model(weights)(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("which", [0, 1], ids=["res2net", "dla"])
def test_a_torch_export_of_a_dag_imports_and_computes_the_same(which, tmp_path):
    """The hand-written torch twins, exported by torch (batch norm folded into the convs,
    module scopes as names) and imported: the joins read named values, the blocks are
    found, and the NumPy model computes what torch does."""
    torch = pytest.importorskip("torch")
    from dag_specs import torch_twins

    from netspec.importer import import_onnx
    model = _randomise(torch_twins()[which])
    body = [lambda x: model.layer2(model.layer1(model.stem(x))),
            lambda x: model.level2(model.level1(model.base(x)))][which]
    model.forward = lambda x: model.fc(torch.flatten(   # a pooling torch exports as one op
        torch.nn.functional.adaptive_avg_pool2d(body(x), 1), 1))
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(
        [(2, 8, 12, 12), (2, 3, 16, 16)][which]).astype(np.float32))
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (x,), str(path), opset_version=17, dynamo=False)
    imported = import_onnx(path)
    assert imported.names_kept
    assert [["repeat 2 layer", "add(relu_out, chunk)"],
            ["level(16)", "concat(x, tree1, pool_out)"]][which][0] in imported.text
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(imported.network.numpy_model(imported.weights())(x.numpy()),
                               expected, **TOL)


# ---- highlighting -------------------------------------------------------------------------

def test_the_lexer_colours_value_names_as_labels():
    """A value's name is a label's colour wherever it stands: given (`y1 = …`, `stem:`),
    read by a join or by `from`; the join's and `from`'s keywords are keywords."""
    from pygments.token import Keyword, Name, Operator, Punctuation

    from netspec.language.lexer import NetspecLexer

    def tokens(text):
        return [(t, v) for t, v in NetspecLexer().get_tokens(text) if v.strip()]
    assert tokens("y1 = { relu }")[:2] == [(Name.Label, "y1"), (Operator, "=")]
    assert tokens("concat(y1, x2)") == [
        (Keyword, "concat"), (Punctuation, "("), (Name.Label, "y1"), (Punctuation, ","),
        (Name.Label, "x2"), (Punctuation, ")")]
    assert tokens("from x") == [(Keyword, "from"), (Name.Label, "x")]
    assert tokens("root: add(a, b)")[2:4] == [(Keyword, "add"), (Punctuation, "(")]
    for spec in (RES2NET, DLA):   # every character a token, none unclassified
        toks = list(NetspecLexer().get_tokens(spec))
        assert "".join(v for _, v in toks) == spec


# ---- more of the patterns the families need ----------------------------------------------

HRNET = """\
block basic(c) {
    residual { conv 3x3 p1 x$c nobias; bn; relu; conv 3x3 p1 x$c nobias; bn }
    relu
}
input 32x32x8
s0: conv 3x3 p1 x8 nobias relu
s1: conv 3x3 s2 p1 x16 nobias relu  # a second stream, at half the resolution
b0 = { from s0; basic(8) }
b1 = { from s1; basic(16) }
up: [ conv 1x1 x8 nobias; bn; upsample 2 ]  # stream 1 → 0
f0 = { add(b0, up); relu }
from b0
down: [ conv 3x3 s2 p1 x16 nobias; bn ]  # stream 0 → 1
f1 = { add(down, b1); relu }
from f0
p: pool 2
concat(f1, p)
"""


def test_an_hrnet_like_exchange_between_two_streams(tmp_path):
    """Each stream reads the other's value at its own resolution (HRNet's fuse layers):
    the NumPy model against onnxruntime, the generated PyTorch module against the NumPy
    model, and the import of the export."""
    from netspec.backends.onnx import OnnxModel
    from netspec.importer import import_onnx
    net = netspec.parse(HRNET)
    assert [i.name for i in net["add2"].inputs] == ["down.1", "basic2.relu2"]   # b1
    assert [i.name for i in net["up.0"].inputs] == ["basic2.relu2"]
    assert net.output_shape == (16, 16, 24) and net.warnings == []
    weights = net.init_weights(seed=3)
    x = np.random.default_rng(0).standard_normal((2, 8, 32, 32)).astype(np.float32)
    want = net.numpy_model(weights)(x)
    np.testing.assert_allclose(OnnxModel(net, weights)(x), want, **TOL)
    imported = import_onnx(net.to_onnx(weights), name="t")
    assert _graph_of(imported.network) == _graph_of(net)
    np.testing.assert_allclose(imported.network.numpy_model(imported.weights())(x), want,
                               rtol=1e-6, atol=1e-6)
    if importlib.util.find_spec("torch") is not None:
        from test_torch_codegen import _check
        _check(net, tmp_path, script=True)


def test_repeated_dag_blocks_import_as_one_block_each_naming_its_own_input():
    """A value read only inside the group it flows into is named first in that group (the
    innermost), so that the groups stay blocks: three DLA trees in a `[ ]` import as
    `repeat 3 …` of one block whose joins read only its own names."""
    from netspec.importer import import_onnx
    spec = DLA.replace("level2: tree(32)\n", "levels: [ repeat 3 tree(16, s=1) ]\n")
    net = netspec.parse(spec)
    imported = import_onnx(net.to_onnx(net.init_weights(seed=2)), name="t", weights=False)
    assert imported.names_kept and "levels: [ repeat 3 unit ]" in imported.text
    block = imported.text[imported.text.index("block unit()"):imported.text.index("input ")]
    assert block.startswith("block unit() {\n    x = {}\n") and "from x" in block
    assert _graph_of(imported.network) == _graph_of(net)
