"""The layers of a block: constructed from their registry entry, initialized as the spec
says (dsl.tables.init_call is the one table of init calls, shared with compiler.eject), or, on the
meta device, copied from an earlier instance without running their constructors.
"""
from __future__ import annotations

import torch
from torch import nn

from ..dsl.ir import InitSpec, Op
from ..dsl.registry import REGISTRY
from ..dsl.tables import init_call

from .lower import resolve_target


def make_layer(op: Op) -> nn.Module:
    """Construct the torch module of a `module` op (on the current default device)."""
    args, kwargs = list(op.ctor_args), dict(op.ctor_kwargs)
    if op.target == "Parameter":
        return nn.Parameter(torch.empty(*args))
    return resolve_target(REGISTRY[op.target].target)(*args, **kwargs)


def apply_init(module, spec: InitSpec, name: str) -> None:
    t = module if isinstance(module, nn.Parameter) else getattr(module, name, None)
    if t is None:
        # bias_init with bias=false is fine (specs pass bias=bias through); a missing weight is not
        if spec.name == "default" or name == "bias":
            return
        raise ValueError(f"{type(module).__name__} has no `{name}` to initialize")
    call = init_call(spec)
    if call is not None:
        fn, args, kwargs = call
        with torch.no_grad():
            getattr(nn.init, fn)(t, *args, **kwargs)


_UNCOPYABLE = (nn.RNNBase,)  # keep views of their parameters (_flat_weights): constructed anew


def _meta_like(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(t.shape, dtype=t.dtype, device="meta")  # empty_like goes through Python refs on meta


def copy_on_meta(layer):
    """A new layer like `layer` with new (meta) parameters and buffers, without running its
    constructor; None for a layer that holds other layers or views of its parameters."""
    if isinstance(layer, nn.Parameter):
        return nn.Parameter(_meta_like(layer), requires_grad=layer.requires_grad)
    if layer._modules or isinstance(layer, _UNCOPYABLE):
        return None
    new = object.__new__(type(layer))
    for k, v in layer.__dict__.items():
        new.__dict__[k] = v.copy() if isinstance(v, (dict, set, list)) else v
    new.__dict__["_parameters"] = {k: None if p is None else nn.Parameter(_meta_like(p), requires_grad=p.requires_grad)
                       for k, p in layer._parameters.items()}
    new.__dict__["_buffers"] = {k: None if b is None else _meta_like(b) for k, b in layer._buffers.items()}
    return new
