"""Text generation from a language-model head (`netspec sample`, and `netspec predict` on lm runs)."""
from __future__ import annotations

import math

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


MAX_TOKENS = 1_000_000  # tokens one `sample` generates at most: a slip past it would run for days


def complete_text(model: torch.nn.Module, prompt: str, *, vocab: list[str] | None, seq_len: int | None,
                  tokens: int, temperature: float, top_k: int | None, seed: int | None,
                  vocab_limit: int | None = None) -> str:
    """`prompt` and its continuation by `tokens` tokens from the model's (first) lm head, in the
    run's vocabulary (None: bytes) and never past vocab_limit (a padded model's real vocabulary). Raises NetspecError for a model without an lm head or a bad
    prompt / setting."""
    from .data import Data, want_from_info

    info = ckpt.unwrap(model).netspec
    heads = sampling_heads(info)
    if not heads:
        raise NetspecError(f"{info.name} has no lm head to sample from")
    if not 0 <= tokens <= MAX_TOKENS:
        raise NetspecError(f"--tokens must be between 0 and {MAX_TOKENS:,}, got {tokens}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise NetspecError(f"--temperature must be a positive number, got {temperature}")
    if top_k is not None and top_k < 1:
        raise NetspecError(f"--top-k must be at least 1, got {top_k}")
    if seed is not None and not 0 <= seed < 2**63:
        raise NetspecError(f"--seed must be between 0 and 2**63-1, got {seed}")
    codec = Data(name="", kind="tokens", train=None, val=None, want=None, vocab=vocab)
    ids = codec.encode(prompt)
    if not ids:
        raise NetspecError("--prompt must not be empty")
    block = want_from_info(info, seq_len).seq_len
    if seed is not None:
        torch.manual_seed(seed)
    out = generate(model, ids, tokens, block_size=block, temperature=temperature, top_k=top_k,
                   head=heads[0].name, vocab_size=min(len(vocab) if vocab is not None else 256,
                                                      vocab_limit or math.inf))
    return codec.decode(out)
