"""Text generation from a language-model head (`netspec sample`)."""
from __future__ import annotations

import torch

from ..dsl.errors import NetspecError
from ..dsl.tasks import TASKS
from . import checkpoint as ckpt
from .heads import outputs_by_head, task_of, trained_heads


def sampling_heads(info) -> list:
    """The heads text can be sampled from: those whose task outputs next-token logits."""
    return [h for h in trained_heads(info) if h.task in TASKS and task_of(h).output == "token_logits"]


@torch.no_grad()
def generate(model: torch.nn.Module, ids: list[int], n_tokens: int, *, block_size: int, temperature: float = 1.0,
             top_k: int | None = None, head: str | None = None, vocab_size: int | None = None) -> list[int]:
    """Continue `ids` by n_tokens sampled from the lm head (`head`, default the first), the
    context cropped to block_size.

    A model whose T is fixed gets its input right-padded to block_size: causal attention
    never looks ahead, so the logits at the last real position are unaffected.
    vocab_size: sample only ids below it (a byte-level run on a model with a larger vocabulary).
    """
    raw = ckpt.unwrap(model)
    info = raw.netspec
    if head is None:
        heads = sampling_heads(info)
        if not heads:
            raise NetspecError(f"{info.name} has no lm head to sample from")
        head = heads[0].name
    fixed = isinstance(info.inputs[0].dims[-1], int)
    device = next(iter(raw.parameters())).device
    was = raw.training
    raw.eval()
    seq = list(ids)
    try:
        for _ in range(n_tokens):
            ctx = seq[-block_size:]
            x = torch.tensor(ctx + ([0] * (block_size - len(ctx)) if fixed else []), device=device)[None]
            logits = outputs_by_head(raw(x), info)[head][0, len(ctx) - 1].float()
            if vocab_size is not None:
                logits = logits[:vocab_size]
            logits = logits / max(temperature, 1e-6)
            if top_k is not None and top_k < logits.numel():
                kth = torch.topk(logits, top_k).values[-1]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            seq.append(int(torch.multinomial(torch.softmax(logits, -1), 1)))
    finally:
        raw.train(was)
    return seq
