"""The checker: shapes and parameter counts derived by hand, and every error it reports."""

import pytest

import netspec
from conftest import errors_of, one_error

LENET = """\
input 32x32x3
conv 5x5 s1 p0 x6; pool 2 s2
conv 5x5 x16; pool 2 s2
fc 120; fc 84; fc 10; softmax
"""


def test_lenet_shapes_and_params_by_hand():
    net = netspec.parse(LENET)
    shapes = {layer.name: layer.output_shape for layer in net.layers}
    assert shapes == {
        "input": (32, 32, 3),
        "conv1": (28, 28, 6),      # 32 - 5 + 1
        "pool1": (14, 14, 6),      # (28 - 2)/2 + 1
        "conv2": (10, 10, 16),
        "pool2": (5, 5, 16),
        "fc1": (120,), "fc2": (84,), "fc3": (10,), "softmax1": (10,),
    }
    params = {layer.name: layer.params for layer in net.layers if layer.params}
    assert params == {
        "conv1": (5 * 5 * 3 + 1) * 6,
        "conv2": (5 * 5 * 6 + 1) * 16,
        "fc1": (5 * 5 * 16 + 1) * 120,
        "fc2": (120 + 1) * 84,
        "fc3": (84 + 1) * 10,
    }
    assert net.total_params == sum(params.values())
    assert net.output_shape == (10,)
    # conv1: each of 28*28*6 outputs takes 5*5*3 multiply-adds
    assert net["conv1"].macs == 28 * 28 * 6 * 75


def test_every_v1_form_parses():
    net = netspec.parse("""
        # a comment
        input 32x32x3                 # H x W x C
        conv 5x5 s1 p0 x6
        conv 3x3 same x16
        conv 5x5x16 x16
        conv 3x3 s2 d2 g4 x32
        pool 2 s2
        pool max 3 s2 p1
        pool avg 2
        relu; tanh; sigmoid; softmax
        bn
        dropout 0.5
        flatten
        fc 120
    """)
    ops = [layer.op for layer in net.layers]
    assert ops == ["input", "conv", "conv", "conv", "conv", "pool", "pool", "pool", "relu",
                   "tanh", "sigmoid", "softmax", "bn", "dropout", "flatten", "fc"]
    c4 = net["conv4"]
    # dilated span 2*(3-1)+1 = 5 over 24x24 (28 → same → 28 → 5x5 → 24): floor((24-5)/2)+1 = 10
    assert c4.output_shape == (10, 10, 32)
    assert c4.params == (3 * 3 * (16 // 4) + 1) * 32
    # pool max 3 s2 p1 over 5x5: floor((5 + 2 - 3)/2) + 1 = 3; pool avg 2 over 3: 1
    assert net["pool2"].output_shape == (3, 3, 32)
    assert net["pool3"].output_shape == (1, 1, 32)
    assert net["bn1"].params == 2 * 32
    assert net["flatten1"].output_shape == (32,)


def test_options_in_any_order_and_names():
    a = netspec.parse("input 9x9x4; conv 3x3 x8 g2 s2 p1 d1")
    b = netspec.parse("input 9x9x4; stem: conv 3x3 d1 p1 s2 g2 x8")
    assert a.layers[1].output_shape == b.layers[1].output_shape == (5, 5, 8)
    assert [lay.name for lay in b.layers] == ["input", "stem"]


def test_activation_shorthand_is_two_layers():
    net = netspec.parse("input 4x4x1; conv 3x3 x2 relu; fc 3 tanh; fc 2 relu")
    assert [(lay.name, lay.op) for lay in net.layers] == [
        ("input", "input"), ("conv1", "conv"), ("relu1", "relu"), ("fc1", "fc"),
        ("tanh1", "tanh"), ("fc2", "fc"), ("relu2", "relu")]


def test_same_padding_keeps_size_at_stride_one_and_halves_at_two():
    net = netspec.parse("input 15x15x3; conv 3x3 same x4; conv 3x3 s2 same x4; conv 5x5 valid x4")
    assert net.layers[1].output_shape == (15, 15, 4)
    assert net.layers[2].output_shape == (8, 8, 4)   # ceil(15/2)
    assert net.layers[3].output_shape == (4, 4, 4)   # 8 - 5 + 1


def test_rectangular_kernel_and_vector_input():
    net = netspec.parse("input 10x20x1; conv 3x5 x2; fc 4")
    assert net.layers[1].output_shape == (8, 16, 2)
    assert net.layers[1].params == (3 * 5 * 1 + 1) * 2
    assert netspec.parse("input 784; fc 10").total_params == (784 + 1) * 10


# --- errors -------------------------------------------------------------------------

@pytest.mark.parametrize("text, where, message, hint", [
    # the words after a bracket group belong to the statement that opened it
    ("input 8x8x4\nresidual { conv 3x3 p1 x8 } shortcut\n", (2, 1),
     "incomplete `residual`", "residual { ... } [project"),
    ("input 8x8x4\nresidual { conv 3x3 p1 x8 } foo\n", (2, 29),
     "unexpected `foo` in `residual`", "residual { ... } [project"),
    # a statement continued on the line after its `}`
    ("input 8x8x4\nresidual {\n  conv 3x3 p1 x8\n} project\nrelu\n", (4, 3),
     "incomplete `project`", "project NAME: [ ... ]"),
    # recovery blanks the broken branch's own brackets too: one error, not a cascade
    ("input 8x8x4\nconcat { branch { conv 3x3 p1 x8 } branch }\n", (2, 43),
     "unexpected `}` in `branch`", "branch { ... }"),
])
def test_a_syntax_error_names_the_statement_it_is_in(text, where, message, hint):
    err = one_error(text)
    assert isinstance(err, netspec.SpecSyntaxError)
    assert (err.line, err.column) == where
    assert message in str(err) and hint in err.hint


def test_unknown_word_suggests_the_keyword():
    err = one_error("input 8x8x3\ncnov 5x5 x6\n")
    assert isinstance(err, netspec.SpecSyntaxError)
    assert (err.line, err.column) == (2, 1)
    assert "unknown layer `cnov`" in str(err)
    assert err.hint == "did you mean `conv`?"
    rendered = err.render()
    assert "2 | cnov 5x5 x6" in rendered and "| ^~~~" in rendered
    assert rendered.startswith("t.ns:2:1: error:")


def test_other_frameworks_words_and_capitals_get_hints():
    assert one_error("input 8x8x3\nDense 10").hint == "netspec writes this as `fc`"
    assert one_error("input 8x8x3\nConv 3x3 x2").hint == "keywords are lower case: `conv`"


@pytest.mark.parametrize("stmt,col,hint", [
    ("conv 3x3 stride=2 x4", 10, "write the stride as `s2`"),
    ("conv 3x3 16", 10, "write a filter count as `x16`"),
    ("conv 3x3 sme x4", 10, "did you mean `same`?"),
    ("fc 10 rleu", 7, "did you mean `relu`?"),
])
def test_bad_options_point_at_the_option(stmt, col, hint):
    err = one_error(f"input 8x8x3\n{stmt}\n")
    assert (err.line, err.column) == (2, col)
    assert err.hint == hint


def test_all_syntax_errors_are_reported():
    errs = errors_of("input 8x8x3\ncnov 3x3 x2\nconv 3x3 q x2; pool 2\nfc ten\n")
    assert [(e.line, e.column) for e in errs] == [(2, 1), (3, 10), (4, 4)]


def test_option_given_twice():
    err = one_error("input 8x8x3\npool 2 s2 s1")
    assert (err.line, err.column) == (2, 11) and "stride given twice" in str(err)
    assert "padding given twice" in str(one_error("input 8x8x3\nconv 3x3 p1 same x2"))


def test_missing_repeated_and_late_input():
    assert "the spec is empty" in str(one_error("# nothing\n"))
    assert "no `input`" in str(one_error("conv 3x3 x2"))
    errs = errors_of("input 8x8x3\nconv 3x3 x2\ninput 4x4x1")
    assert [(e.line, "second `input`" in str(e)) for e in errs] == [(3, True)]
    err = one_error("conv 3x3 x2\ninput 8x8x3")
    assert err.line == 1 and "comes before `input`" in str(err)


def test_filter_depth_must_equal_input_depth():
    err = one_error("input 32x32x3\nconv 5x5x4 x6")
    assert isinstance(err, netspec.ShapeError)
    assert (err.line, err.column) == (2, 6)
    assert "filter depth 4 does not match the input depth 3" in str(err)
    assert "5x5x3" in err.hint
    netspec.parse("input 32x32x3\nconv 5x5x3 x6")  # the right depth is fine


@pytest.mark.parametrize("spec,col,what", [
    ("input 0x8x3", 7, "input height must be at least 1"),
    ("input 8x8x3\nconv 0x0 x2", 6, "kernel size must be at least 1"),
    ("input 8x8x3\nconv 3x3 s0 x2", 10, "stride must be at least 1"),
    ("input 8x8x3\nconv 3x3 x0", 10, "filter count must be at least 1"),
    ("input 8x8x3\nconv 3x3 p-1 x2", 10, "padding must not be negative"),
    ("input 8x8x3\nconv 3x3 d0 x2", 10, "dilation must be at least 1"),
    ("input 8x8x3\nfc 0", 4, "unit count must be at least 1"),
    ("input 8x8x3\npool 2 s-2", 8, "stride must be at least 1"),
    ("input 8x8x3\ndropout 1", 9, "dropout rate must be in [0, 1)"),
])
def test_non_positive_sizes(spec, col, what):
    err = one_error(spec)
    assert err.column == col and what in str(err), str(err)


def test_output_below_one_shows_the_arithmetic():
    err = one_error("input 8x8x3\nconv 3x3 x4\nconv 7x7 x4")
    # conv1 is 6x6; conv2: floor((6 + 0 - 7)/1) + 1 = 0
    assert err.line == 3
    assert "`conv2` output height and width are 0" in str(err)
    assert "floor((6 + 0 − 7)/1) + 1 = 0 < 1" in str(err)
    err = one_error("input 8x4x3\npool 5")  # width: floor((4 - 5)/5) + 1 = 0
    assert "output width is 0" in str(err)


def test_groups_must_divide_channels_and_filters():
    assert "groups 2 does not divide the 3 input channels" in str(
        one_error("input 8x8x3\nconv 3x3 g2 x4"))
    assert "groups 4 does not divide the 6 filters" in str(
        one_error("input 8x8x4\nconv 3x3 g4 x6"))


def test_spatial_layers_need_a_volume():
    err = one_error("input 8x8x3\nfc 10\nconv 3x3 x2")
    assert err.line == 3 and "vector of 10 values" in str(err)
    assert "vector of 192 values" in str(one_error("input 8x8x3\nflatten\npool 2"))


def test_pool_padding_at_most_half_the_window():
    err = one_error("input 8x8x3\npool 2 p2")
    assert err.column == 8 and "more than half the 2-wide window" in str(err)


def test_duplicate_names():
    err = one_error("input 8x8x3\nconv 3x3 x2\nconv1: conv 3x3 x2")
    assert err.line == 3 and "`conv1` is used twice" in str(err)


def test_all_semantic_errors_are_reported():
    errs = errors_of("input 8x8x3\nconv 3x3 s0 x0\nfc 0\ndropout 2")
    assert [e.line for e in errs] == [2, 2, 3, 4]


def test_errors_after_a_broken_shape_are_not_cascaded():
    errs = errors_of("input 4x4x3\nconv 5x5 x2\nconv 3x3 x2\nfc 10")
    assert len(errs) == 1 and errs[0].line == 2


# --- warnings -----------------------------------------------------------------------

def _warnings(spec):
    return [str(w.message) for w in netspec.parse(spec).warnings]


def test_stride_that_drops_input_warns():
    # 9 + 0 - 2 = 7 is odd: windows start at 0, 2, 4, 6 and the last row (8) is never read
    (w,) = _warnings("input 9x9x3\nconv 2x2 s2 x4")
    assert "ignores the last 1 input row and column" in w and "does not divide 9 + 0 − 2 = 7" in w
    # covered exactly, or only padding is left over, or a 1x1 stride-2 skips by design
    assert _warnings("input 8x8x3\nconv 2x2 s2 x4") == []
    assert _warnings("input 224x224x3\nconv 7x7 s2 p3 x4") == []
    assert _warnings("input 8x8x3\nconv 1x1 s2 x4") == []


def test_same_with_even_kernel_warns_asymmetric():
    (w,) = _warnings("input 8x8x3\nconv 4x4 same x4")
    assert "asymmetric" in w and "1 before, 2 after" in w
    assert _warnings("input 8x8x3\nconv 3x3 same x4") == []


def test_large_fc_warns_with_its_cost():
    (w,) = _warnings("input 1000x1000x3\nfc 1000")
    # (1000*1000*3 + 1) * 1000 parameters
    assert f"{(1000 * 1000 * 3 + 1) * 1000:,} parameters" in w
    assert _warnings("input 32x32x3\nfc 1000") == []


def test_parse_never_prints(capsys):
    with pytest.raises(netspec.NetspecError):
        netspec.parse("cnov")
    netspec.parse("input 9x9x3\nconv 2x2 s2 x4")
    assert capsys.readouterr() == ("", "")


def test_conv_needs_a_filter_count():
    err = one_error("input 8x8x3\nconv 3x3 s2")
    assert "`conv` needs a filter count" in str(err)
    assert err.hint == "add `xK` for K filters, e.g. `conv 3x3 s2 x16`"
