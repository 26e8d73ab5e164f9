"""The compiler's front door: spec -> checked, shape-inferred torch.fx.GraphModule.

    model = compiler.build("stdlib/gpt2.nn", n_layer=4)      # a path, or spec text
    logits = model(idx)                                       # forward(*inputs)

`analyze()` does everything but allocate real weights (the model is built on the
meta device), which is what `check`, `summary` and `render` use: GPT-2 XL's 1.5B
parameters are counted in seconds without the memory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import fx

from ..dsl.debug import dump_ast, dump_ir, level
from ..dsl.errors import Diagnostic, NetspecError
from ..dsl.frontend import Checked, elaborate
from ..dsl.loader import search_path
from ..dsl.ir import BlockGraph

from .info import HeadInfo, InputInfo, ModelInfo
from .instances import GraphCache, count_params, instantiate
from .metashapes import no_init
from .shapes import TensorMeta, default_input_shapes, propagate


@dataclass
class Analysis:
    checked: Checked
    shapes: dict[str, TensorMeta]  # full op path -> output shape at the analysis input sizes
    input_shapes: dict[str, tuple]
    info: ModelInfo
    counts: tuple[int, int]  # (parameters, trainable) from shape inference's shared modules
    _module: fx.GraphModule | None = field(default=None, repr=False)

    @property
    def num_params(self) -> int:
        """A tied Parameter once, as torch counts it."""
        return self._counts()[0]

    @property
    def trainable_params(self) -> int:
        return self._counts()[1]

    def _counts(self) -> tuple[int, int]:
        # once the whole model is made, it is what counts: compiler.finetune.freeze may have changed it
        return self.counts if self._module is None else count_params(self.graph, self._module)

    @property
    def graph(self) -> BlockGraph:
        return self.checked.graph

    @property
    def module(self) -> fx.GraphModule:
        """The whole model on the meta device, a layer at every path (made on first use:
        shape inference needs only one module per distinct block)."""
        if self._module is None:
            with torch.device("meta"), no_init():
                self._module = instantiate(self.graph, GraphCache(meta=True))
            self._module.eval()
        return self._module


def _dump_code(gm: fx.GraphModule) -> None:
    import sys
    seen = set()
    for name, m in [("", gm)] + list(gm.named_modules()):
        if isinstance(m, fx.GraphModule) and id(m.graph) not in seen:
            seen.add(id(m.graph))
            print(f"# fx code of {type(m).__name__} (at '{name or '<top>'}')\n{m.code.strip()}\n", file=sys.stderr)


def _model_info(checked: Checked, input_shapes, out, params, extra_paths=()) -> ModelInfo:
    g = checked.graph
    inputs = tuple(InputInfo(op.id, op.dtype, tuple(d if isinstance(d, int) else d[0] for d in (op.dims or ())),
                             tuple(input_shapes[op.id])) for op in g.inputs)
    results = out if isinstance(out, dict) else {g.outputs[0].name: out} if len(g.outputs) == 1 else \
        dict(zip([o.name for o in g.outputs], out))
    heads = []
    for o in g.outputs:
        args = dict(o.task_args)
        weight = float(args.pop("weight", 1.0))
        target = args.pop("target", None)
        r = results.get(o.name)
        heads.append(HeadInfo(o.name, o.task, weight, target,
                              tuple(r.shape) if isinstance(r, torch.Tensor) else None, args))
    # one file may be reached by two spellings ("a/../b.nn"): list it once
    files = tuple(dict.fromkeys(str(Path(f).resolve()) for f in checked.program.namespaces if not f.startswith("<")))
    roots = tuple(str(Path(p).resolve()) for p in search_path(checked.file, extra_paths)[1:])
    return ModelInfo(g.name, checked.file, dict(params), inputs, tuple(heads), files, roots)


def analyze(source, model: str | None = None, overrides: dict | None = None, *,
            input_shapes: dict | None = None, extra_paths=(), file: str | None = None,
            checked: Checked | None = None) -> Analysis:
    """Parse, check, lower on the meta device and infer every shape. Raises NetspecError.
    `file` names spec text in messages (default "<string>"); `checked`: the front end's
    result for these arguments, when the caller has it already."""
    if checked is None:
        checked = elaborate(source, model, overrides, extra_paths=extra_paths, file=file)
    debug = level()
    if debug >= 3:
        dump_ast(checked.program.main)
    if debug >= 1:
        dump_ir(checked.graph)
    shapes_in = default_input_shapes(checked.graph, input_shapes)
    with torch.device("meta"), no_init():  # one module per distinct block, shared by its instances
        gm = instantiate(checked.graph, GraphCache(meta=True, share=True))
    gm.eval()  # batch statistics of a 1-sample batch are undefined; shapes are the same in both modes
    table, out = propagate(gm, checked.graph, shapes_in)
    if debug >= 2:
        _dump_code(gm)
    info = _model_info(checked, shapes_in, out, checked.graph.params, extra_paths)
    return Analysis(checked, table, shapes_in, info, count_params(checked.graph, gm))


def optimizer(optimize: bool = True):
    """The GraphCache optimize hook: the passes of compiler.passes, or None for the literal graph."""
    if not optimize:
        return None
    from .passes import optimize as run_passes
    return run_passes


def _available_bytes() -> int | None:
    """Memory this process may still take: the smaller of the address-space limit and what
    the machine has free (RAM and swap); None when neither can be read."""
    found = []
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            found.append(soft)
    except (ImportError, OSError, ValueError):
        pass
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        found.append((int(info["MemAvailable"].split()[0]) + int(info.get("SwapFree", "0 kB").split()[0])) * 1024)
    except (OSError, KeyError, ValueError):
        pass
    return min(found) if found else None


def _check_memory(analysis: Analysis) -> None:
    """Real weights that cannot fit are refused before any is allocated (torch would take
    the memory lazily and the kernel would kill the process while initializing them)."""
    need = sum(t.numel() * t.element_size() for t in list(analysis.module.parameters()) +
               list(analysis.module.buffers()))
    have = _available_bytes()
    if have is not None and need > have:
        g = analysis.graph
        raise NetspecError([Diagnostic("error", f"the weights of {g.kind} '{g.name}' take {need / 2**30:,.1f} GiB; "
                                       f"this process can have {have / 2**30:,.1f} GiB more", g.span)])


def build(source, model: str | None = None, *, device=None, dtype=None, input_shapes: dict | None = None,
          extra_paths=(), optimize: bool = True, **params) -> fx.GraphModule:
    """Compile a spec (a path or its text) to a torch.fx.GraphModule with fresh weights.

    Args:
        source: path of a `.nn` file, or spec text.
        model: which model of the file (default: its `default model`, or its only one).
        device, dtype: where and in what precision to allocate the weights.
        input_shapes: {input name: shape} used for the shape check (default: the spec's).
        optimize: apply the optimization passes (compiler.passes: fused attention, ...);
            False gives the literal graph, one node per op of the spec.
        **params: overrides of the model's parameters, as `--set` gives them.
    Returns:
        a GraphModule; `model.netspec` is its ModelInfo. forward(*inputs) returns a tensor
        for one head, else a dict head name -> tensor.
    Raises:
        dsl.errors.NetspecError carrying every problem, each with its spec location.
    """
    analysis = analyze(source, model, params, input_shapes=input_shapes, extra_paths=extra_paths)
    if torch.device(device or "cpu").type == "cpu":
        _check_memory(analysis)
    with torch.device(device or "cpu"):
        gm = instantiate(analysis.graph, GraphCache(optimizer(optimize)))
    if optimize and level() >= 1:
        from .passes import print_rewrites
        print_rewrites(gm)
    if dtype is not None:
        gm = gm.to(dtype)
    gm.netspec = analysis.info
    gm._netspec_graph = analysis.graph  # lets runtime failures be traced back to spec lines
    return gm
