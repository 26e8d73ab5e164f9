"""Dump torchvision's own AlexNet and ResNets for parity tests (runs in .venv-ref).

torchvision from PyPI does not import beside the CPU torch 2.13.0 that the
project's .venv uses, so this script runs in a separate venv (.venv-ref:
torch 2.14.1, torchvision 0.29.1) and leaves plain files that the tests
read from the main venv. For each model, `<out>/<name>.safetensors` holds:

    state.<key>       the state_dict of torchvision's model (weights=None, seeded)
    input             the fixed input
    output.eval       model(input) in eval mode
    output.train      model(input) in train mode (ResNets only; AlexNet's dropout is random)
    post_train.<key>  ResNets: every BatchNorm buffer after that one train-mode forward

and `<out>/<name>.json` the key order of the state_dict, the versions, the
input shape and the parameter count. `<out>/stamp` is written last, after
every model, so a half-done dump is never taken for a finished one.

Usage: .venv-ref/bin/python tests/reference/dump_torchvision.py [--out .cache/ref] [names...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torchvision
from safetensors.torch import save_file

FORMAT = 2

# Small inputs: 2 cores. AlexNet needs >= 63x63; 224 keeps its adaptive
# pool a real average. ResNets take any size >= 32; at 64 the last stage is
# 2x2, so train-mode BN still sees 8 values per channel.
MODELS = {
    "alexnet": (2, 3, 224, 224),
    "resnet18": (2, 3, 64, 64),
    "resnet34": (2, 3, 64, 64),
    "resnet50": (2, 3, 64, 64),
    "resnet101": (2, 3, 64, 64),
    "resnet152": (2, 3, 64, 64),
}
SEED = 1234


def calibrate_batchnorm(model: torch.nn.Module, shape: tuple[int, ...]) -> None:
    """Give every BatchNorm a non-trivial affine and running statistics that fit its inputs.

    A fresh init has weight 1, bias 0, mean 0, var 1 everywhere, which would
    let a wrong affine or eps placement pass, and whose eval-mode outputs
    grow block by block to ~1e10 in resnet152, where a relative comparison
    means little. One train-mode pass with momentum 1 on other random data
    sets the statistics to that batch's, as a trained network's roughly are.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not bns:
        return
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for m in bns:
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1)
            m.momentum = 1.0
        model.train()
        model(torch.randn(shape, generator=g))
        for m in bns:
            m.momentum = 0.1


def dump(name: str, out: Path) -> None:
    t0 = time.perf_counter()
    torch.manual_seed(SEED)
    model = getattr(torchvision.models, name)(weights=None)
    calibrate_batchnorm(model, MODELS[name])
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    x = torch.randn(MODELS[name], generator=torch.Generator().manual_seed(SEED))

    tensors = {f"state.{k}": v for k, v in state.items()}
    tensors["input"] = x
    model.eval()
    with torch.no_grad():
        tensors["output.eval"] = model(x)
    modes = ["eval"]
    if name.startswith("resnet"):
        model.train()
        with torch.no_grad():
            tensors["output.train"] = model(x)
        modes.append("train")
        for k, v in model.state_dict().items():
            if k.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked"):
                tensors[f"post_train.{k}"] = v.detach().clone().contiguous()
    save_file(tensors, str(out / f"{name}.safetensors"))
    meta = {
        "format": FORMAT,
        "name": name,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "seed": SEED,
        "input_shape": list(MODELS[name]),
        "modes": modes,
        "num_params": sum(p.numel() for p in model.parameters()),
        "state_keys": list(state),
    }
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"dumped {name}: {meta['num_params']:,} params, {time.perf_counter() - t0:.1f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".cache/ref", type=Path)
    ap.add_argument("names", nargs="*", default=list(MODELS))
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; known: {list(MODELS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stamp").unlink(missing_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name in args.names:
        dump(name, args.out)
    if set(args.names) == set(MODELS):
        (args.out / "stamp").write_text(f"format {FORMAT}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
