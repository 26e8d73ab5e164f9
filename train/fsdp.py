"""`strategy: fsdp`: parameters, gradients and optimizer state sharded across the ranks of a
torchrun job with PyTorch's FSDP2 (`torch.distributed.fsdp.fully_shard`), for models too big
to replicate on every device as DDP does.

The plan (`shard_plan`) shards every outermost block instance -- each is a
`torch.fx.GraphModule` submodule the compiler made for a block op (GPT-2's `transformer.h.N`,
ResNet's bottlenecks) -- and then the root, which keeps what is left (embeddings, the head,
weights tied between them). Each block's parameters are gathered just before its forward
and freed after it.

Run folders keep their format: checkpoints gather full state dicts (weights, and the
optimizer state in torch's own id-keyed layout) on every rank, offloaded to the CPU, and
rank 0 writes them; resuming loads them back into the shards. This needs collectives, so
every rank calls `full_state` / `load_full_state`, and validation runs on every rank.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import fx


def shard_plan(model: torch.nn.Module) -> list[str]:
    """The submodules to fully_shard, innermost first: every outermost block instance, then
    the root ('')."""
    names: list[str] = []
    for name, m in model.named_modules():
        if name and isinstance(m, fx.GraphModule) and not any(name.startswith(n + ".") for n in names):
            names.append(name)
    return names + [""]


def shard(model: torch.nn.Module) -> torch.nn.Module:
    """Shard `model` in place along shard_plan, after giving every rank rank 0's weights (as
    DDP's constructor does). Call under an initialised process group."""
    from torch.distributed.fsdp import fully_shard

    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0)
    for name in shard_plan(model):
        fully_shard(model.get_submodule(name) if name else model)
    return model


def _options():
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def _aliases(model: torch.nn.Module) -> dict[str, str]:
    """Tied parameters: every later name -> the first name of the same tensor."""
    first: dict[int, str] = {}
    out = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        out.update({name: first[id(p)]} if id(p) in first else {})
        first.setdefault(id(p), name)
    return out


def full_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights gathered whole on rank 0's CPU ({} on the other ranks) -- a collective: every
    rank calls it. Tied tensors appear under each name, as in model.state_dict()."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    weights = get_model_state_dict(model, options=_options())
    for name, first in _aliases(model).items():
        if first in weights:
            weights[name] = weights[first]
    return weights


def full_state(model: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """(weights, optimizer state) gathered whole on rank 0's CPU (empty elsewhere) -- a
    collective. The optimizer state is keyed by parameter index, as
    torch.optim.Optimizer.state_dict() is, so a run folder reads the same whatever the strategy."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    weights = full_weights(model)
    osd = get_optimizer_state_dict(model, opt, options=_options())
    if not osd:
        return weights, {}
    index: dict[str, int] = {}
    groups = []
    for g in osd["param_groups"]:
        ids = [index.setdefault(fqn, len(index)) for fqn in g["params"]]
        groups.append({**g, "params": ids})
    state = {index[fqn]: s for fqn, s in osd["state"].items()}
    return weights, {"state": state, "param_groups": groups}


def load_full_state(model: torch.nn.Module, opt: torch.optim.Optimizer | None, weights: dict[str, torch.Tensor],
                    optim_state: dict[str, Any] | None = None) -> None:
    """Load full weights (and an id-keyed optimizer state) into the shards -- every rank calls it."""
    from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

    aliases = _aliases(model)
    for name, first in aliases.items():  # the file keeps one name of a tie, not always the first
        if first not in weights and name in weights:
            weights[first] = weights[name]
    weights = {k: v for k, v in weights.items() if k not in aliases}
    set_model_state_dict(model, weights, options=_options())
    if opt is None or optim_state is None:
        return
    by_id = {id(p): n for n, p in model.named_parameters()}
    fqns = [by_id[id(p)] for g in opt.param_groups for p in g["params"]]
    osd = {"state": {fqns[i]: s for i, s in optim_state["state"].items()},
           "param_groups": [{**g, "params": [fqns[i] for i in g["params"]]} for g in optim_state["param_groups"]]}
    set_optimizer_state_dict(model, opt, osd, options=_options())


class Weights(torch.nn.Module):
    """Full weights held as a module, so checkpoint.weights_writer saves them as it saves a model
    (safetensors.save_model: tied tensors once, the others named in the metadata)."""

    def __init__(self, weights: dict[str, torch.Tensor]):
        super().__init__()
        self.weights = weights

    def state_dict(self, *args, **kwargs):
        return dict(self.weights)


def local(t: torch.Tensor) -> torch.Tensor:
    """A rank's own shard of a sharded tensor (DTensor), or the tensor itself."""
    return t.to_local() if hasattr(t, "to_local") else t
