"""nanoGPT-style GPT-2 reference model (`GPTConfig`, `GPT`).

Module names are exactly nanoGPT's, so its checkpoints (and HuggingFace
GPT-2 checkpoints after `compiler.weights` converts them) load unchanged:

    transformer.wte            Embedding(vocab_size, n_embd)
    transformer.wpe            Embedding(block_size, n_embd)
    transformer.drop           Dropout
    transformer.h.{i}.ln_1     LayerNorm
    transformer.h.{i}.attn.c_attn         Linear(n_embd, 3 n_embd)   q, k, v in that order
    transformer.h.{i}.attn.c_proj         Linear(n_embd, n_embd)
    transformer.h.{i}.attn.attn_dropout   Dropout on attention probabilities
    transformer.h.{i}.attn.resid_dropout  Dropout
    transformer.h.{i}.ln_2     LayerNorm
    transformer.h.{i}.mlp.c_fc     Linear(n_embd, 4 n_embd)
    transformer.h.{i}.mlp.gelu     GELU(approximate='tanh')
    transformer.h.{i}.mlp.c_proj   Linear(4 n_embd, n_embd)
    transformer.h.{i}.mlp.dropout  Dropout
    transformer.ln_f           LayerNorm
    lm_head                    Linear(n_embd, vocab_size, bias=False), weight tied to wte

Differences from nanoGPT, on purpose: `forward(idx)` returns the logits of
every position, shape [B, T, vocab_size], and no loss; the GELU is the tanh
approximation (transformers' `gelu_new`, which GPT-2 was trained with) so
logits match HuggingFace's GPT-2 exactly; `vocab_size` defaults to GPT-2's
50257 (nanoGPT pads to 50304 for speed).

Parameter counts (tied head counted once): small 124,439,808, medium
354,823,168, large 774,030,080, xl 1,557,611,200 (see `GPT_CONFIGS`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GPTConfig:
    vocab_size: int = 50257
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm, as in GPT-2


GPT_CONFIGS = {
    "gpt2": GPTConfig(n_layer=12, n_head=12, n_embd=768),
    "gpt2-medium": GPTConfig(n_layer=24, n_head=16, n_embd=1024),
    "gpt2-large": GPTConfig(n_layer=36, n_head=20, n_embd=1280),
    "gpt2-xl": GPTConfig(n_layer=48, n_head=25, n_embd=1600),
}


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must be divisible by n_head"
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        # Kept as modules (not functional) so the module tree and repr match
        # nanoGPT; attn_dropout is applied to the attention probabilities.
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        hs = C // self.n_head
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~causal, float("-inf"))
        att = self.attn_dropout(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig | None = None, **overrides):
        super().__init__()
        config = replace(config or GPTConfig(), **overrides)
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # One Parameter under two names: state_dict() lists both keys,
        # parameters() yields it once.
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        # GPT-2 paper: scale the residual projections by 1/sqrt(number of
        # residual additions) so the residual stream's variance does not
        # grow with depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}")
        pos = torch.arange(T, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def gpt2(name: str = "gpt2", **overrides) -> GPT:
    """A GPT of one of GPT-2's published sizes ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")."""
    return GPT(GPT_CONFIGS[name], **overrides)
