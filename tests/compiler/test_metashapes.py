"""The fast shape rules of compiler/metashapes.py give the shapes torch's own modules give."""
import itertools

import pytest
import torch
from torch import nn

from netspec.compiler.metashapes import rule_for


def _shapes(value):
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    return tuple(_shapes(v) for v in value)


@pytest.mark.parametrize("cls, batch_first, bidirectional, layers, proj, batched",
                         [(c, bf, bi, n, p, b) for c, bf, bi, n, p, b in itertools.product(
                             (nn.LSTM, nn.GRU, nn.RNN), (True, False), (True, False), (1, 3), (0, 5), (True, False))
                          if not (p and c is not nn.LSTM)])
def test_recurrent_layers(cls, batch_first, bidirectional, layers, proj, batched):
    kw = {"proj_size": proj} if proj else {}
    m = cls(6, 8, num_layers=layers, batch_first=batch_first, bidirectional=bidirectional, **kw)
    x = torch.randn((2, 7, 6) if batched else (7, 6))
    want = _shapes(m(x))
    got = _shapes(rule_for(m)(m, x.to("meta")))
    assert got == want


def test_recurrent_layers_refuse_a_wrong_input_size():
    m = nn.LSTM(6, 8, batch_first=True)
    with pytest.raises(ValueError):
        rule_for(m)(m, torch.empty(2, 7, 5, device="meta"))
