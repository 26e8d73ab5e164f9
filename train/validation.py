"""The validation pass: a model's loss and metrics per head over (a capped part of) the validation split."""
from __future__ import annotations

import torch

from . import checkpoint as ckpt
from .config import RunConfig
from .data import Data, eval_batches, outputs_by_head
from .heads import trained_heads
from .precision import autocast
from .tasks import head_meters
from .vocabpad import limit_logits


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: Data, cfg: RunConfig | None = None, *, device=None,
             max_batches: int | None = None, batch_size: int | None = None) -> dict[str, float]:
    """Validation loss and metrics.

    Keys: `loss` (weighted total); `<head>/loss` and `<head>/<metric>` per trained
    head; and for convenience the plain metric names (`accuracy`, `perplexity`,
    `iou`, `pixel_accuracy`) taken from the first head that has them.
    max_batches: cap on batches (default cfg.eval_batches; 0: the whole split).
    Data without a validation split gives {}.
    """
    if data.val is None:
        return {}
    cfg = cfg or RunConfig()
    info = ckpt.unwrap(model).netspec
    device = torch.device(device or next(iter(model.parameters())).device)
    bs = batch_size or cfg.batch_size
    cap = cfg.eval_batches if max_batches is None else max_batches
    meters = head_meters(info)
    was = model.training
    model.eval()
    try:
        for batch in eval_batches(data.val, bs, cap, cfg.seed):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with autocast(device, cfg.precision):
                out = limit_logits(outputs_by_head(model(batch["x"]), info), info, cfg.vocab_limit)
            for name, m in meters.items():
                m.add(out[name], batch)
    finally:
        model.train(was)
    res: dict[str, float] = {"loss": 0.0}
    for h in trained_heads(info):
        r = meters[h.name].result()
        res["loss"] += h.weight * r["loss"]
        for k, v in r.items():
            res[f"{h.name}/{k}"] = v
            if k != "loss":
                res.setdefault(k, v)
    return res
