"""Generation from a trained head (`netspec sample`, and `netspec predict` on lm runs): text
continued by an lm head, a target decoded by a seq2seq head (`translate`)."""
from __future__ import annotations

import math

import torch

from ..dsl.errors import NetspecError
from ..dsl.tasks import TASKS
from . import checkpoint as ckpt
from .heads import outputs_by_head, target_index, task_of, trained_heads


def sampling_heads(info) -> list:
    """The heads text can be sampled from: those whose task outputs next-token logits."""
    return [h for h in trained_heads(info) if h.task in TASKS and task_of(h).output == "token_logits"]


def _greedy_or_sampled(logits: torch.Tensor, temperature: float, top_k: int | None, greedy: bool) -> int:
    if greedy:
        return int(logits.argmax())
    logits = logits / max(temperature, 1e-6)
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return int(torch.multinomial(torch.softmax(logits, -1), 1))


@torch.no_grad()
def generate(model: torch.nn.Module, ids: list[int], n_tokens: int, *, block_size: int, temperature: float = 1.0,
             top_k: int | None = None, head: str | None = None, vocab_size: int | None = None,
             greedy: bool = False) -> list[int]:
    """Continue `ids` by n_tokens sampled from the lm head (`head`, default the first), the
    context cropped to block_size.

    A model whose T is fixed gets its input right-padded to block_size: causal attention
    never looks ahead, so the logits at the last real position are unaffected.
    vocab_size: sample only ids below it (a byte-level run on a model with a larger vocabulary).
    greedy: take the likeliest token each time instead of sampling.
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
            seq.append(_greedy_or_sampled(logits, temperature, top_k, greedy))
    finally:
        raw.train(was)
    return seq


MAX_TOKENS = 1_000_000  # tokens one `sample` generates at most: a slip past it would run for days


def check_settings(tokens: int, temperature: float, top_k: int | None, seed: int | None) -> None:
    """The sampling flags, checked before a run is opened."""
    if not 0 <= tokens <= MAX_TOKENS:
        raise NetspecError(f"--tokens must be between 0 and {MAX_TOKENS:,}, got {tokens}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise NetspecError(f"--temperature must be a positive number, got {temperature}")
    if top_k is not None and top_k < 1:
        raise NetspecError(f"--top-k must be at least 1, got {top_k}")
    if seed is not None and not 0 <= seed < 2**63:
        raise NetspecError(f"--seed must be between 0 and 2**63-1, got {seed}")


def complete_text(model: torch.nn.Module, prompt: str, *, vocab: list[str] | None, seq_len: int | None,
                  tokens: int, temperature: float, top_k: int | None, seed: int | None, greedy: bool = False,
                  head: str | None = None, vocab_limit: int | None = None) -> str:
    """`prompt` and its continuation by `tokens` tokens from the model's lm head `head` (default:
    its first), in the run's vocabulary (None: bytes) and never past vocab_limit (a padded
    model's real vocabulary); `greedy`: the likeliest token each time. Raises NetspecError for a
    model without an lm head or a bad prompt / setting."""
    from .data import Data, want_from_info

    info = ckpt.unwrap(model).netspec
    heads = [h for h in sampling_heads(info) if h.task == "lm" and head in (None, h.name)]
    if not heads:
        raise NetspecError(f"{info.name} has no lm head to sample from")
    check_settings(tokens, temperature, top_k, seed)
    codec = Data(name="", kind="tokens", train=None, val=None, want=None, vocab=vocab)
    ids = codec.encode(prompt)
    if not ids:
        raise NetspecError("--prompt must not be empty")
    block = want_from_info(info, seq_len).seq_len
    if seed is not None:
        torch.manual_seed(seed)
    out = generate(model, ids, tokens, block_size=block, temperature=temperature, top_k=top_k,
                   head=heads[0].name, vocab_size=min(len(vocab) if vocab is not None else 256,
                                                      vocab_limit or math.inf), greedy=greedy)
    return codec.decode(out)
@torch.no_grad()
def translate(model: torch.nn.Module, src: list[int], *, head: str, specials: dict[str, int], max_tokens: int,
              temperature: float = 1.0, top_k: int | None = None, greedy: bool = False,
              vocab_size: int | None = None) -> list[int]:
    """Decode a seq2seq head's target for the source ids `src`, one token at a time from <bos>
    until <eos> or max_tokens: greedily (the likeliest token) or by sampling. The source is padded
    to the model's source length, as in training; the decoder input to its target length when that
    is fixed (causal attention never looks ahead). A target has at most T - 2 tokens, as in training.
    Only tokens a target can hold are drawn: never <pad> or <bos>, nor ids from vocab_size up (a
    model whose output is wider than the run's vocabulary).
    Returns the target ids, without <bos>/<eos>."""
    raw = ckpt.unwrap(model)
    info = raw.netspec
    h = next(x for x in info.heads if x.name == head)
    t_at = target_index(h, info)
    s_at = next(i for i in range(len(info.inputs)) if i != t_at)
    S, T = info.inputs[s_at].shape[1], info.inputs[t_at].shape[1]
    if len(src) > S:
        raise NetspecError(f"the prompt is {len(src)} tokens, but {info.name} reads sources of at most {S}")
    device = next(iter(raw.parameters())).device
    src_t = torch.tensor(src + [specials["pad"]] * (S - len(src)), device=device)[None]
    fixed = isinstance(info.inputs[t_at].dims[-1], int)
    was = raw.training
    raw.eval()
    seq = [specials["bos"]]
    try:
        while len(seq) - 1 < max_tokens and len(seq) < T - 1:  # targets of training fit T with <bos>, <eos>
            tgt = torch.tensor(seq + ([specials["pad"]] * (T - len(seq)) if fixed else []), device=device)[None]
            inputs = [src_t, tgt] if s_at < t_at else [tgt, src_t]
            logits = outputs_by_head(raw(*inputs), info)[head][0, len(seq) - 1].float()
            if vocab_size is not None:
                logits = logits[:vocab_size]
            logits[[specials["pad"], specials["bos"]]] = float("-inf")
            nxt = _greedy_or_sampled(logits, temperature, top_k, greedy)
            if nxt == specials["eos"]:
                break
            seq.append(nxt)
    finally:
        raw.train(was)
    return seq[1:]
