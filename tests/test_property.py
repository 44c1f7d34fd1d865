"""Random specs never crash the checker with anything but a NetspecError."""

from hypothesis import HealthCheck, given, settings, strategies as st

import netspec

WORDS = ["input", "conv", "pool", "fc", "bn", "dropout", "flatten", "relu", "tanh", "sigmoid",
         "softmax", "max", "avg", "same", "valid", "cnov", "stem:", ":", "x", "s", "#c",
         "3x3", "5x5x3", "0", "-1", "0.5", "1e9", "99999999999", "7x", "x0", "x4", "s2", "p1",
         "p-3", "d2", "g2", "g0", "s0", "32x32x3", "1x1x1", ";", "\n", "\t", "ü", "{", "'",
         "}", "[", "]", "(", ")", ",", "=", "?", "block", "b", "b(", "b()", "repeat", "residual",
         "residual?", "project", "shortcut", "concat", "branch", "x$c", "$c", "{C/2}", "{c*2}",
         "{1/0}", "s$s", "nobias", "ceil", "global", "relu6", "lrn", "a0.1", "fc:", "c=", "x{C}"]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(WORDS), max_size=40))
def test_token_soup_only_raises_netspec_errors(words):
    try:
        net = netspec.parse(" ".join(words))
    except netspec.NetspecError as err:
        assert err.line is None or err.line >= 1
        err.render()
        return
    net.summary()
    net.to_dict()


LAYERS = st.one_of(
    st.builds("conv {}x{} s{} p{} d{} g{} x{}".format, *[st.integers(-1, 6)] * 2,
              *[st.integers(-1, 4)] * 4, st.integers(-1, 8)),
    st.builds("pool {} {} s{} p{}".format, st.sampled_from(["max", "avg", ""]),
              st.integers(-1, 5), st.integers(-1, 3), st.integers(-1, 3)),
    st.builds("fc {}".format, st.integers(-1, 20)),
    st.sampled_from(["bn", "relu", "flatten", "softmax", "dropout 0.3", "conv 3x3 same x2",
                     "pool avg 2 same", "conv 2x2 s2 valid x2"]),
)


@settings(max_examples=400, deadline=None)
@given(st.tuples(*[st.integers(-1, 12)] * 3), st.lists(LAYERS, max_size=8))
def test_well_formed_random_networks(dims, layers):
    spec = "input {}x{}x{}\n".format(*dims) + "\n".join(layers)
    try:
        net = netspec.parse(spec)
    except netspec.NetspecError as err:
        assert all(e.line is not None and e.column is not None for e in err.errors)
        return
    for layer in net.layers:
        assert all(d >= 1 for d in layer.output_shape)
        assert layer.params >= 0


BLOCKY = st.lists(st.sampled_from([
    "block b(c, s=1) {", "block b(c) [", "}", "]", "b(4)", "b(c=2, s=2)", "b()", "b(1, 2, 3)",
    "repeat 2 {", "repeat $c b(2)", "residual {", "residual? {", "} project {", "} shortcut [",
    "concat {", "branch {", "branch {}", "conv 3x3 p1 x$c", "conv 1x1 s$s x{C*2}", "bn", "relu",
    "pool 2", "pool avg global", "fc 3", "x: [", "input 8x8x3", "conv 3x3 x{C/3}", "\n", ";",
]), max_size=25)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BLOCKY)
def test_random_composition_only_raises_netspec_errors(parts):
    try:
        net = netspec.parse("input 8x8x3\n" + " ".join(parts))
    except netspec.NetspecError as err:
        err.render()
        return
    net.summary()
    net.to_dict()
