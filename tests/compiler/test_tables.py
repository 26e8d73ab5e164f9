"""The dsl's vocabularies name real torch things (the dsl itself cannot import torch to check)."""
import torch

from netspec.dsl.tables import DTYPE_NAMES, INITS, MODULE_ATTRIBUTES


def test_inits_name_torch_nn_init_functions():
    for name, row in INITS.items():
        assert row.fn is None or callable(getattr(torch.nn.init, row.fn)), name


def test_dtype_names_are_torch_dtypes():
    assert all(isinstance(getattr(torch, name), torch.dtype) for name in DTYPE_NAMES)


def test_module_attributes_cover_every_attribute_a_compiled_module_has():
    """A layer named like one of these would collide with it (`float:` and Module.float)."""
    import torch._dynamo  # noqa: F401 - it adds attributes to every nn.Module once imported

    import netspec

    model = netspec.build("lenet")
    names = {n for n in dir(model) if not (n.startswith("__") and n.endswith("__"))}
    names -= set(model._modules)  # the spec's own layers
    assert names <= MODULE_ATTRIBUTES, sorted(names - MODULE_ATTRIBUTES)
