"""Vocabulary padding: an lm built with `vocab_size` rounded up to a multiple of `pad_vocab`
(50257 -> 50304 at 64, as nanoGPT does: matmuls whose sizes are multiples of 64 run on the
fast kernels), while the padded ids stay invisible.

The padding is a build-time choice: `pad_overrides` turns the run's --set values into those
of the padded model (vocab_size is the spec's parameter; stdlib/gpt2.nn and the other lm
specs name it so) and the RunConfig keeps the real size as `vocab_limit`. The logits of a
token-logits head are cut to `vocab_limit` columns before the loss, the validation metrics
(`limit_logits`) and sampling, so no probability ever goes to an id past the real vocabulary.
"""
from __future__ import annotations

from typing import Any

import torch

from ..dsl.tasks import TASKS
from .config import ConfigError, RunConfig
from .data import Data, DataError

PARAM = "vocab_size"  # the model parameter pad_vocab rounds up


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def pad_overrides(name: str, params: dict[str, Any], overrides: dict[str, Any], cfg: RunConfig):
    """(overrides, cfg) of the padded model: vocab_size rounded up to cfg.pad_vocab and the
    real size kept as cfg.vocab_limit. `params`: the model's resolved parameters (ModelInfo.params)."""
    if not cfg.pad_vocab:
        return overrides, cfg
    real = params.get(PARAM)
    if isinstance(real, bool) or not isinstance(real, int):
        raise ConfigError(f"pad_vocab: {name} has no integer parameter '{PARAM}' to pad "
                          f"(its parameters: {', '.join(params) or 'none'})")
    return {**overrides, PARAM: round_up(real, cfg.pad_vocab)}, cfg.replace(vocab_limit=real)


def _token_heads(info) -> list[str]:
    return [h.name for h in info.heads if h.task in TASKS and TASKS[h.task].output == "token_logits"]


def limit_logits(outs: dict[str, torch.Tensor], info, limit: int | None, objs=None) -> dict[str, torch.Tensor]:
    """The head outputs with each token-logits head cut to its first `limit` ids. objs: the
    heads' objectives; a head whose training view gives its last layer's input is left alone."""
    if limit is None:
        return outs
    heads = {h for h in _token_heads(info) if objs is None or objs.get(h) is None or objs[h].layer is None}
    return {k: (v[..., :limit] if k in heads else v) for k, v in outs.items()}


def check_vocab_limit(info, data: Data, cfg: RunConfig) -> None:
    """A vocab_limit must leave room for every id of the data, and cut a head that has it."""
    if cfg.vocab_limit is None:
        return
    if not _token_heads(info):
        raise ConfigError(f"vocab_limit / pad_vocab: {info.name} has no lm head whose logits it could cut")
    token_heads = set(_token_heads(info))
    for h in info.heads:  # a sampled loss's classes are the layer's rows, padded ones included
        loss = (getattr(h, "args", None) or {}).get("loss", "softmax")
        if h.name in token_heads and loss != "softmax":
            raise ConfigError(f"pad_vocab: head '{h.name}' of {info.name} trains with loss={loss}; "
                              "a padded vocabulary works with the softmax loss")
    if data.vocab_size and cfg.vocab_limit < data.vocab_size:
        raise DataError(f"data '{data.name}' has a vocabulary of {data.vocab_size} but vocab_limit is "
                        f"{cfg.vocab_limit}: the model's real vocabulary ({PARAM}) must hold every id")
