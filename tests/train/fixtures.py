"""Hand-written stand-ins for built models, for the training runtime's tests and benches.

Each is a plain nn.Module carrying `.netspec = ModelInfo(...)` exactly as
`netspec.build` attaches it, so the trainer, data and CLI code can be
exercised before (and independently of) the compiler.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from netspec.compiler.info import HeadInfo, InputInfo, ModelInfo


def _info(name, inputs, heads, **params) -> ModelInfo:
    return ModelInfo(name=name, source="<fixture>", params=params, inputs=tuple(inputs), heads=tuple(heads))


def _img(name="x", c=1, h=16, w=16):
    return InputInfo(name, "float32", ("B", c, h, w), (2, c, h, w))


class MLP(nn.Module):
    """Flat [B, 64] -> 10 classes (digits at their native 8x8)."""

    def __init__(self, d_in=64, hidden=64, classes=10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, classes))
        self.netspec = _info("MLP", [InputInfo("x", "float32", ("B", d_in), (2, d_in))],
                             [HeadInfo("logits", "classify", shape=(2, classes))], hidden=hidden)

    def forward(self, x):
        return self.net(x)


class TinyConv(nn.Module):
    """[B, C, 16, 16] -> classes, with BatchNorm (buffers) and dropout (RNG)."""

    def __init__(self, c=1, size=16, classes=10, head_shape=True):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Dropout(0.1), nn.Linear(16, classes))
        self.netspec = _info("TinyConv", [_img(c=c, h=size, w=size)],
                             [HeadInfo("logits", "classify", shape=(2, classes) if head_shape else None)])

    def forward(self, x):
        return self.body(x)


class LeNet5(nn.Module):
    """The classic: [B, 1, 32, 32] -> 10, tanh-free modern variant (ReLU + max-pool)."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
                                        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, classes))
        self.netspec = _info("LeNet5", [_img(h=32, w=32)], [HeadInfo("logits", "classify", shape=(2, classes))],
                             num_classes=classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class Block(nn.Module):
    def __init__(self, d, n_head, dropout):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(dropout))
        self.n_head, self.dropout = n_head, dropout

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp(self.ln2(x))


class TinyLM(nn.Module):
    """A GPT: idx [B, T] int64 -> logits [B, T, vocab], head weight tied to the token embedding."""

    def __init__(self, vocab=256, block_size=32, n_embd=32, n_head=2, n_layer=1, dropout=0.1, name="TinyLM"):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, n_embd), nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: safetensors must cope with shared storage
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
        for b in self.blocks:
            nn.init.normal_(b.proj.weight, std=0.02 / math.sqrt(2 * n_layer))
        self.netspec = _info(name, [InputInfo("idx", "int64", ("B", "T"), (2, block_size))],
                             [HeadInfo("logits", "lm", shape=(2, block_size, vocab))],
                             vocab_size=vocab, block_size=block_size, n_embd=n_embd, n_head=n_head, n_layer=n_layer)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(T, device=idx.device)))
        for b in self.blocks:
            x = b(x)
        return self.lm_head(self.ln_f(x))


class TinySeg(nn.Module):
    """[B, 3, 16, 16] -> per-pixel logits [B, classes, 16, 16]."""

    def __init__(self, c=3, size=16, classes=5, width=16):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(c, width, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.down = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.out = nn.Conv2d(2 * width, classes, 1)
        self.netspec = _info("TinySeg", [_img(c=c, h=size, w=size)],
                             [HeadInfo("mask", "segment", shape=(2, classes, size, size))])

    def forward(self, x):
        e = self.enc(x)
        return self.out(torch.cat([e, self.up(self.down(e))], 1))


class AutoEncoder(nn.Module):
    """[B, 1, 8, 8] -> the same, through a 16-wide bottleneck."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU())
        self.dec = nn.Linear(16, 64)
        self.netspec = _info("AutoEncoder", [_img(h=8, w=8)], [HeadInfo("recon", "reconstruct", target="x")])

    def forward(self, x):
        return self.dec(self.enc(x)).view(-1, 1, 8, 8)


class TwoHead(nn.Module):
    """Classify + reconstruct from one trunk: forward returns a dict."""

    def __init__(self, size=16, classes=10):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
        self.cls = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes))
        self.rec = nn.Conv2d(8, 1, 3, padding=1)
        self.netspec = _info("TwoHead", [_img(h=size, w=size)],
                             [HeadInfo("logits", "classify", weight=1.0, shape=(2, classes)),
                              HeadInfo("recon", "reconstruct", weight=0.5, shape=(2, 1, size, size)),
                              HeadInfo("features", None)])

    def forward(self, x):
        t = self.trunk(x)
        return {"logits": self.cls(t), "recon": self.rec(t), "features": t}


class Regressor(nn.Module):
    """[B, 3, 16, 16] -> 3 floats (shape centre and radius)."""

    def __init__(self, size=16, k=3):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                                 nn.Linear(128, k))
        self.netspec = _info("Regressor", [_img(c=3, h=size, w=size)], [HeadInfo("box", "regress", shape=(2, k))])

    def forward(self, x):
        return self.net(x)


FIXTURES = {"mlp": MLP, "conv": TinyConv, "lenet": LeNet5, "lm": TinyLM, "seg": TinySeg, "ae": AutoEncoder,
            "twohead": TwoHead, "regress": Regressor}


def make(kind: str, seed: int = 0, **kw) -> nn.Module:
    """A fixture with deterministic initial weights."""
    torch.manual_seed(seed)
    return FIXTURES[kind](**kw)
