"""The workloads bench/gpu.py measures: each model written three ways (netspec, plain PyTorch,
a library's), the batches they train on, their FLOPs, and the one training step every side
runs. A side is a function (config, device) -> Built; SIDES names them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Workload:
    key: str
    title: str  # at the GPU size
    cpu_title: str  # at the CPU size
    unit: str  # what one step consumes: "tok" or "img"
    cuda: dict  # model config and batch on a GPU
    cpu: dict | None  # the same on a CPU; None: GPU only
    sides: tuple  # names in SIDES; "plain" is the reference the ratios divide by


GPT2_SMALL = dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50304, batch=16)
WORKLOADS = (
    Workload("gpt2", "GPT-2 124M", "GPT-2, 4 layers", "tok", GPT2_SMALL,
             dict(n_layer=4, n_head=4, n_embd=128, block_size=128, vocab_size=4096, batch=8),
             ("netspec", "plain", "transformers")),
    Workload("gpt2-xl", "GPT-2 XL", "", "tok", dict(GPT2_SMALL, n_layer=48, n_head=25, n_embd=1600, batch=4), None,
             ("netspec", "plain")),
    Workload("resnet", "ResNet-50", "ResNet-18", "img", dict(model="ResNet50", batch=128, size=224),
             dict(model="ResNet18", batch=8, size=64), ("netspec", "plain", "torchvision")),
)


class Skip(Exception):
    """A side this machine cannot run (a package is missing); the message says why."""


# ---- the models: (model, forward returning logits, flops per step, items per step, batch maker) ----
@dataclass
class Built:
    model: torch.nn.Module
    forward: object
    flops: float
    items: int
    batch: object  # () -> (inputs, targets)
    extra: dict = field(default_factory=dict)


def _gpt_batch(cfg, device):
    g = torch.Generator(device="cpu").manual_seed(0)
    shape = (cfg["batch"], cfg["block_size"])
    x = torch.randint(0, cfg["vocab_size"], shape, generator=g).to(device)
    y = torch.randint(0, cfg["vocab_size"], shape, generator=g).to(device)
    return lambda: (x, y)


def _gpt_flops(model, cfg) -> float:
    """nanoGPT's estimate: 6 N + 12 L H Q T per token (N without the position embeddings)."""
    n = sum(p.numel() for p in model.parameters()) - cfg["block_size"] * cfg["n_embd"]
    L, H, Q, T = cfg["n_layer"], cfg["n_head"], cfg["n_embd"] // cfg["n_head"], cfg["block_size"]
    return (6 * n + 12 * L * H * Q * T) * cfg["batch"] * T


def _gpt_params(cfg):
    return {k: cfg[k] for k in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size")}


def build_netspec_gpt(cfg, device):
    import netspec
    model = netspec.build("gpt2", device=device, **_gpt_params(cfg))
    return Built(model, model, _gpt_flops(model, cfg), cfg["batch"] * cfg["block_size"], _gpt_batch(cfg, device))


def build_plain_gpt(cfg, device):
    from bench.plain_gpt2 import GPT, GPTConfig
    with torch.device(device):
        model = GPT(GPTConfig(**_gpt_params(cfg)))
    return Built(model, model, _gpt_flops(model, cfg), cfg["batch"] * cfg["block_size"], _gpt_batch(cfg, device))


def build_transformers_gpt(cfg, device):
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError as e:
        raise Skip(f"transformers is not installed ({e.name})") from None
    conf = GPT2Config(vocab_size=cfg["vocab_size"], n_positions=cfg["block_size"], n_embd=cfg["n_embd"],
                      n_layer=cfg["n_layer"], n_head=cfg["n_head"], resid_pdrop=0.0, embd_pdrop=0.0,
                      attn_pdrop=0.0, activation_function="gelu_new", attn_implementation="sdpa",
                      bos_token_id=cfg["vocab_size"] - 1, eos_token_id=cfg["vocab_size"] - 1)
    with torch.device(device):
        model = GPT2LMHeadModel(conf)
    return Built(model, lambda x: model(x).logits, _gpt_flops(model, cfg), cfg["batch"] * cfg["block_size"],
                 _gpt_batch(cfg, device))


def _image_batch(cfg, device, classes=1000):
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(cfg["batch"], 3, cfg["size"], cfg["size"], generator=g).to(device)
    y = torch.randint(0, classes, (cfg["batch"],), generator=g).to(device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return lambda: (x, y)


def _resnet_flops(cfg) -> float:
    """6 x forward multiply-accumulates per image (2 FLOPs each, backward twice forward)."""
    from netspec.compiler.builder import analyze
    from netspec.compiler.summary import summarize
    s = summarize(analyze("resnet", cfg["model"], input_shapes={"x": (1, 3, cfg["size"], cfg["size"])}))
    return 6 * s["macs"] * cfg["batch"]


def _image_model(model, cfg, device):
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return Built(model, model, _resnet_flops(cfg), cfg["batch"], _image_batch(cfg, device))


def build_netspec_resnet(cfg, device):
    import netspec
    return _image_model(netspec.build("resnet", cfg["model"], device=device), cfg, device)


def build_plain_resnet(cfg, device):
    from tests.reference import resnet as reference
    with torch.device(device):
        model = getattr(reference, cfg["model"].lower())()
    return _image_model(model, cfg, device)


def build_torchvision_resnet(cfg, device):
    try:
        import torchvision
    except ImportError:
        raise Skip("torchvision is not installed (pip install torchvision: the build matching this torch)") from None
    with torch.device(device):
        model = getattr(torchvision.models, cfg["model"].lower())()
    return _image_model(model, cfg, device)


SIDES = {
    ("gpt2", "netspec"): build_netspec_gpt, ("gpt2", "plain"): build_plain_gpt,
    ("gpt2", "transformers"): build_transformers_gpt,
    ("resnet", "netspec"): build_netspec_resnet, ("resnet", "plain"): build_plain_resnet,
    ("resnet", "torchvision"): build_torchvision_resnet,
}


def builder(workload: Workload, side: str):
    return SIDES[(workload.key.split("-")[0], side)]


# ---- one training step, the same for every side ----
def make_step(built: Built, device: torch.device, compiled: bool):
    model = built.model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=device.type == "cuda")
    forward = torch.compile(built.forward) if compiled else built.forward

    def step():
        x, y = built.batch()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = forward(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return step
