"""Whether a model's heads fit the data: the output rules of `netspec.dsl.tasks.OUTPUTS`
and the batch fields tasks need, each checked against a loaded `Data`.

Two checks run before training. `check_fit` compares each head's output shape, as
the spec inferred it (or a probe measured it), with the data's facts -- classes,
vocabulary -- and that every field a task needs is provided. `check_model` runs two
validation samples through the model and checks every head's real output against
the batch. Both say which data, head and model disagree, in one line.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ...dsl.tasks import TASKS
from ..heads import outputs_by_head, target_index, task_of, trained_heads
from .core import INPUT_KINDS, Data, DataError, flat_ok

Shape = tuple[int, ...]
Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Field:
    what: str  # what the data must provide, for messages
    hint: str  # a source that provides it


# batch field a task needs (a Task's `needs`) -> what it is
NEEDS: dict[str, Field] = {
    "y": Field("class labels", ""),
    "mask": Field("segmentation masks", " (try --data shapes)"),
    "target": Field("regression targets", " (try --data shapes: x, y, radius)"),
}

__all__ = ["INPUT_KINDS", "NEEDS", "OUTPUTS", "OutputRule", "check_fit", "check_model", "probe_shapes"]


@dataclass(frozen=True)
class OutputRule:
    inputs: tuple[str, ...]  # input kinds (INPUT_KINDS) a head with this output can learn from
    # (shape) -> the `Want` fields the output's shape fixes (classes, target_dim); None: none
    sizes: Callable[[Shape], dict] | None
    # (shape, data, where) -> what does not fit the data's classes / vocabulary / targets, or None
    fits: Callable[[Shape, Data, str], str | None]
    # (real output shape, batch, data) -> the layout the output must have, or None when it has it
    layout: Callable[[Shape, Batch, Data], str | None]


def _class_count(shape: Shape, data: Data, where: str) -> str | None:
    if len(shape) == 2 and shape[-1] != data.num_classes:
        return f"data '{data.name}' has {data.num_classes} classes but {where} outputs {shape[-1]}"
    return None


def _pixel_class_count(shape: Shape, data: Data, where: str) -> str | None:
    if len(shape) == 4 and shape[1] != data.num_classes:
        return f"data '{data.name}' has {data.num_classes} classes (with background) but {where} outputs {shape[1]}"
    return None


def _vocabulary(shape: Shape, data: Data, where: str) -> str | None:
    if data.vocab_size and shape and shape[-1] < data.vocab_size:
        return f"data '{data.name}' has a vocabulary of {data.vocab_size} but {where} outputs {shape[-1]}"
    return None


def _target_count(shape: Shape, data: Data, where: str) -> str | None:
    k = data.target_dim or 1
    if shape and shape[1:] not in ((k,),) + (((),) if k == 1 else ()):
        return f"data '{data.name}' has {k} regression targets but {where} outputs {list(shape)}"
    return None


def _no_count(shape: Shape, data: Data, where: str) -> None:
    return None


def _batch_size(batch: Batch) -> int:
    return batch["x"].shape[0]


def _class_layout(o: Shape, batch: Batch, data: Data) -> str | None:
    return None if len(o) == 2 and o[0] == _batch_size(batch) else "logits [B, classes]"


def _any_layout(o: Shape, batch: Batch, data: Data) -> None:
    return None


def _pixel_layout(o: Shape, batch: Batch, data: Data) -> str | None:
    m = tuple(batch["mask"].shape)
    ok = len(o) == 4 and o[0] == m[0] and o[2:] == m[1:]
    return None if ok else f"[B, classes, {m[1]}, {m[2]}]"


def _token_layout(o: Shape, batch: Batch, data: Data) -> str | None:
    x = tuple(batch["x"].shape)
    return None if len(o) == 3 and o[:2] == x else f"logits [B, T, vocab] for input {list(x)}"


def _input_layout(o: Shape, batch: Batch, data: Data) -> str | None:
    x = tuple(batch["x"].shape)
    return None if o == x else f"the shape of input '{data.want.input}' {list(x)}"


def _values_layout(o: Shape, batch: Batch, data: Data) -> str | None:
    return None if len(o) in (1, 2) and o[0] == _batch_size(batch) else "[B, K] (or [B])"


# output rule (a Task's `output`, described in dsl.tasks.OUTPUTS) -> how it is checked
OUTPUTS: dict[str, OutputRule] = {
    "class_logits": OutputRule(("image", "video", "flat", "ids"),
                               lambda s: {"classes": int(s[-1])} if len(s) == 2 else {}, _class_count, _class_layout),
    "token_logits": OutputRule(("tokens",), None, _vocabulary, _token_layout),
    "pixel_logits": OutputRule(("image",), lambda s: {"classes": int(s[1])} if len(s) == 4 else {},
                               _pixel_class_count, _pixel_layout),
    "like_target": OutputRule(("image", "flat", "tokens"), None, _no_count, _input_layout),
    "values": OutputRule(("image", "flat"), lambda s: {"target_dim": int(s[-1]) if len(s) >= 2 else 1},
                         _target_count, _values_layout),
    # a generator's sample: its input is noise the trainer draws, the data feeds its critic, and
    # netspec.train.pair checks the sample against the critic's input
    "sample": OutputRule(("flat",), None, _no_count, _any_layout),
}


def _where(head, info) -> str:
    return f"head '{head.name}' of {info.name}"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def check_fit(data: Data, info, head_shapes: dict[str, Shape]) -> None:
    """Every field the heads need is in the data, and each head's (inferred or probed)
    output shape fits the data's classes and vocabulary. Raises DataError."""
    heads = trained_heads(info)
    for key, field in NEEDS.items():
        head = next((h for h in heads if key in task_of(h).needs), None)
        if head is not None and key not in data.provides:
            raise DataError(f"data '{data.name}' has no {field.what}, but head '{head.name}' of {info.name} is "
                            f"{_article(head.task)} {head.task} head{field.hint}")
    for h in heads:
        # the loss reads batch field "x": the head's target input must be the one fed with it
        field = data.inputs[target_index(h, info)] if len(data.inputs) == len(info.inputs) else "x"
        if task_of(h).arg("target") is not None and field != "x":
            inp = info.inputs[target_index(h, info)].name
            raise DataError(f"{_where(h, info)} reads input '{inp}', but data '{data.name}' feeds it "
                            f"{'the source' if field == 'src' else field}; name the input it predicts with "
                            f"target=")
        shape = head_shapes.get(h.name, h.shape)
        if shape:
            problem = OUTPUTS[task_of(h).output].fits(tuple(shape), data, _where(h, info))
            if problem:
                raise DataError(problem)
    if data.want.kind == "flat" and data.kind == "image" and hasattr(data.train, "images"):
        native = tuple(data.train.images.shape[1:])
        if not flat_ok(data.want, native):
            raise DataError(f"data '{data.name}' has {'x'.join(map(str, native))} images, which do not fit "
                            f"input '{data.want.input}' of {info.name} taking [B, {data.want.flat_dim}]")


def _probe_input(inp, batch: int = 2) -> torch.Tensor:
    shape = list(inp.shape) if inp.shape else [d if isinstance(d, int) else 1 for d in inp.dims]
    shape[0] = batch
    return torch.zeros(shape, dtype=getattr(torch, str(inp.dtype).replace("torch.", ""), torch.float32))


def _device_of(model: torch.nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def needs_probe(info) -> bool:
    """Whether a trained head's output shape, which the data is made for, is unknown."""
    return any(h.shape is None and h.task in TASKS and OUTPUTS[task_of(h).output].sizes is not None
               for h in trained_heads(info))


@torch.no_grad()
def probe_shapes(model: torch.nn.Module, info) -> dict[str, Shape]:
    """Output shape per head at the model's default input shape (batch 2)."""
    was = model.training
    model.eval()
    try:
        dev = _device_of(model)
        out = model(*[_probe_input(i).to(dev) for i in info.inputs])
    except Exception as e:  # noqa: BLE001 - report any failure as a readable data/model mismatch
        raise DataError(f"{info.name} failed on a zero input of its default shape: {e}")
    finally:
        model.train(was)
    return {k: tuple(v.shape) for k, v in outputs_by_head(out, info).items()}


@torch.no_grad()
def check_model(model: torch.nn.Module, data: Data, info) -> None:
    """Run two validation samples through the model and check every head's output against the data.
    A failure inside the model is reported at the spec line of the op that failed."""
    split = data.val if data.val is not None else data.train
    batch = split.batch(list(range(min(2, len(split) or 2))), 0)
    xs = [t.to(_device_of(model)) for t in data.model_inputs(batch)]
    was = model.training
    model.eval()
    try:
        out = outputs_by_head(model(*xs), info)
    except Exception as e:  # noqa: BLE001 - any failure on real data is reported, located when possible
        raise _located_failure(model, xs, data, info, e) from None
    finally:
        model.train(was)
    for h in info.heads:
        if h.name not in out:
            raise DataError(f"{info.name} returned no output for head '{h.name}' (got {', '.join(out)})")
    for h in trained_heads(info):
        o, rule, where = tuple(out[h.name].shape), OUTPUTS[task_of(h).output], _where(h, info)
        layout = rule.layout(o, batch, data)
        if layout is not None:
            raise DataError(f"{where} outputs {list(o)}; {h.task} heads must give {layout}")
        problem = rule.fits(o, data, where)
        if problem:
            raise DataError(problem)


def _located_failure(model, xs: list[torch.Tensor], data: Data, info, error: Exception) -> Exception:
    from ...compiler import locate_failure

    fed = ", ".join(f"'{i.name}' {list(x.shape)}" for i, x in zip(info.inputs, xs))
    located = locate_failure(model, *xs)
    if located is not None:  # the spec line of the op that failed on this data
        located.diagnostics[0].notes.append((None, f"while running data '{data.name}' (input "
                                             f"{fed}) through {info.name}"))
        return located
    x = xs[0]
    fed = f"'{data.want.input}' {list(x.shape)} {str(x.dtype).replace('torch.', '')}" if len(xs) == 1 else fed
    return DataError(f"{info.name} failed on data '{data.name}' (input {fed}): {error}")
