"""Output-size arithmetic, derived by hand and checked against PyTorch's layers."""

import math

import pytest
from hypothesis import given, settings, strategies as st

import netspec
from netspec import conv_output_size, pool_output_size, same_padding

torch = pytest.importorskip("torch")


def test_lenet_sizes_by_hand():
    # 32x32 input, 5x5 valid conv: 32 - 5 + 1 = 28; pool 2 s2: (28 - 2)/2 + 1 = 14
    assert conv_output_size(32, 5) == 28
    assert pool_output_size(28, 2) == 14
    assert conv_output_size(14, 5) == 10
    assert pool_output_size(10, 2, s=2) == 5


def test_strided_padded_dilated_by_hand():
    # floor((224 + 2*3 - 7)/2) + 1 = floor(223/2) + 1 = 112
    assert conv_output_size(224, 7, p=3, s=2) == 112
    # dilation 2 makes a 3-kernel span 2*(3-1)+1 = 5: floor((10 - 5)/1) + 1 = 6
    assert conv_output_size(10, 3, d=2) == 6
    # floor((7 + 2 - 3)/3) + 1 = 3
    assert conv_output_size(7, 3, p=1, s=3) == 3


def test_same_and_valid():
    assert conv_output_size(17, 3, p="same", s=1) == 17
    assert conv_output_size(17, 3, p="same", s=2) == math.ceil(17 / 2)
    assert conv_output_size(17, 3, p="valid") == 15
    # an even kernel at stride 1 needs 3 pixels of padding: the odd one goes after
    assert same_padding(5, 4) == (1, 2)
    # 224 at stride 2 with a 3-kernel: out 112, total (112-1)*2 + 3 - 224 = 1
    assert same_padding(224, 3, 2) == (0, 1)


def test_ceil_mode_by_hand():
    # ceil((13 - 3)/2) + 1 = 6, floor gives the same; 14: floor(11/2)+1 = 6, ceil 7
    assert pool_output_size(14, 3, s=2) == 6
    assert pool_output_size(14, 3, s=2, ceil_mode=True) == 7


@pytest.mark.parametrize("args", [(0, 3), (5, 0), (5, 3, -1), (5, 3, 0, 0), (5, 3, 0, 1, 0),
                                  (2, 5), (5, 3, "full"), (5.0, 3)])
def test_bad_arguments_raise_netspec_errors(args):
    with pytest.raises(netspec.ShapeError):
        conv_output_size(*args)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 40), f=st.integers(1, 7), s=st.integers(1, 4), d=st.integers(1, 3),
       p=st.integers(0, 3))
def test_conv_matches_torch(n, f, s, d, p):
    _agree(torch.nn.Conv2d(1, 1, f, stride=s, padding=p, dilation=d), n,
           lambda: conv_output_size(n, f, p, s, d))


def _agree(layer, n, size):
    """netspec's size equals torch's output width, or both refuse the layer."""
    try:
        expected = layer(torch.zeros(1, 1, n, n)).shape[-1]
    except RuntimeError:
        with pytest.raises(netspec.ShapeError):
            size()
        return
    assert size() == expected


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 40), f=st.integers(1, 7), s=st.integers(1, 4), p=st.integers(0, 3),
       ceil=st.booleans())
def test_pool_matches_torch(n, f, s, p, ceil):
    if p > f // 2:
        return  # torch refuses such padding; netspec's checker does too (see test_check)
    _agree(torch.nn.MaxPool2d(f, stride=s, padding=p, ceil_mode=ceil), n,
           lambda: pool_output_size(n, f, p, s, ceil))


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 40), f=st.sampled_from([1, 3, 5, 7]), d=st.integers(1, 3))
def test_same_at_stride_one_matches_torch(n, f, d):
    conv = torch.nn.Conv2d(1, 1, f, padding="same", dilation=d)
    assert conv_output_size(n, f, "same", 1, d) == conv(torch.zeros(1, 1, n, n)).shape[-1] == n
