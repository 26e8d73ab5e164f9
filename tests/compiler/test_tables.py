"""The dsl's vocabularies name real torch things (the dsl itself cannot import torch to check)."""
import torch

from netspec.dsl.tables import DTYPE_NAMES, INITS


def test_inits_name_torch_nn_init_functions():
    for name, row in INITS.items():
        assert row.fn is None or callable(getattr(torch.nn.init, row.fn)), name


def test_dtype_names_are_torch_dtypes():
    assert all(isinstance(getattr(torch, name), torch.dtype) for name in DTYPE_NAMES)
