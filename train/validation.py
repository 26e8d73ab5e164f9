"""The validation pass: a model's loss and metrics per head over (a capped part of) the validation split."""
from __future__ import annotations

import torch

from . import checkpoint as ckpt
from .config import RunConfig
from .data import Data, eval_batches, outputs_by_head
from .heads import trained_heads
from .precision import autocast
from .objectives import objectives as head_objectives
from .objectives import training_view
from .tasks import head_meters
from .vocabpad import limit_logits


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: Data, cfg: RunConfig | None = None, *, device=None,
             max_batches: int | None = None, batch_size: int | None = None, objectives=None) -> dict[str, float]:
    """Validation loss and metrics.

    Keys: `loss` (weighted total); `<head>/loss` and `<head>/<metric>` per trained
    head; and for convenience the plain metric names (`accuracy`, `perplexity`,
    `iou`, `pixel_accuracy`) taken from the first head that has them.
    max_batches: cap on batches (default cfg.eval_batches; 0: the whole split).
    Data without a validation split gives {}.
    objectives: the heads' objectives (objectives.py; default: built from the model and data).
    The noise of sampled output losses is drawn from cfg.seed, in a forked RNG: every pass scores
    the same way, and evaluating never changes what training draws next.
    """
    if data.val is None:
        return {}
    cfg = cfg or RunConfig()
    info = ckpt.unwrap(model).netspec
    device = torch.device(device or next(iter(model.parameters())).device)
    bs = batch_size or cfg.batch_size
    cap = cfg.eval_batches if max_batches is None else max_batches
    raw = ckpt.unwrap(model)
    objs = objectives if objectives is not None else head_objectives(raw, info, data.counts)
    view = training_view(raw, info, objs)
    meters = head_meters(info, objs)
    was = raw.training
    view.eval()  # the view shares raw's layers: this switches them
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(cfg.seed)
            for batch in eval_batches(data.val, bs, cap, cfg.seed):
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                with autocast(device, cfg.precision):
                    out = limit_logits(outputs_by_head(view(*data.model_inputs(batch)), info), info,
                                       cfg.vocab_limit, objs)
                for name, m in meters.items():
                    m.add(out[name], batch)
    finally:
        view.train(was)
        raw.train(was)
    res: dict[str, float] = {"loss": 0.0}
    for h in trained_heads(info):
        r = meters[h.name].result()
        res["loss"] += h.weight * r["loss"]
        for k, v in r.items():
            res[f"{h.name}/{k}"] = v
            if k != "loss":
                res.setdefault(k, v)
    return res
