"""The one table of layers and tensor ops: DSL name -> what builds it, its argument
schema, its kind. Checking (arity, keywords, values), lowering (torch targets) and
rendering (colors, labels) all look names up here and nowhere else.

Targets are strings ("torch.nn.Linear", "netspec:center_crop") so this module stays
free of torch; `compiler.lower` resolves them. A schema is a signature string:
`"in_features:dim, out_features:dim, bias:bool=true"`; `*name` takes the remaining
positional arguments (view(B, T, C)). For functions the first parameter is the tensor
a chain step feeds in (`softmax(dim=-1)` on the flow is softmax(flow, dim=-1)).
"""
from __future__ import annotations

from dataclasses import dataclass, field


# ---- argument types: name -> (check, description) ----
def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _ints(v):
    return _is_int(v) or (isinstance(v, (tuple, list)) and all(_is_int(x) for x in v))


TYPES = {
    "any": (lambda v: True, "a value"),
    "tensor": (lambda v: True, "a tensor"),
    "dim": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "nat": (lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    "int": (_is_int, "an integer"),
    "ints": (_ints, "an integer or a tuple of integers"),
    "dims": (lambda v: (_is_int(v) and v > 0) or (isinstance(v, (tuple, list)) and all(_is_int(x) and x > 0 for x in v)),
             "a positive integer or a tuple of them"),
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "pos": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0, "a positive number"),
    "prob": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1,
             "a probability in [0, 1]"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str": (lambda v: isinstance(v, str), "a string"),
}


@dataclass(frozen=True)
class ArgSpec:
    name: str
    type: str
    default: object = None
    required: bool = True
    variadic: bool = False


_NO_DEFAULT = object()


def _literal(text: str):
    low = text.strip()
    table = {"true": True, "false": False, "none": None}
    if low in table:
        return table[low]
    if low.startswith(("'", '"')):
        return low[1:-1]
    if low.startswith("("):
        inner = [x for x in low[1:-1].split(",") if x.strip()]
        return tuple(_literal(x) for x in inner)
    try:
        return int(low)
    except ValueError:
        return float(low)


def parse_schema(sig: str) -> tuple[ArgSpec, ...]:
    out = []
    depth, cur, parts = 0, "", []
    for ch in sig:  # split on top-level commas only (defaults can be tuples)
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    for part in parts:
        part = part.strip()
        variadic = part.startswith("*")
        part = part.lstrip("*")
        default = _NO_DEFAULT
        if "=" in part:
            part, dflt = part.split("=", 1)
            default = _literal(dflt)
        name, _, typ = part.partition(":")
        typ = typ.strip() or "any"
        assert typ in TYPES, (sig, typ)
        out.append(ArgSpec(name.strip(), typ, None if default is _NO_DEFAULT else default,
                           required=default is _NO_DEFAULT and not variadic, variadic=variadic))
    return tuple(out)


@dataclass(frozen=True)
class LayerDef:
    name: str  # the DSL name
    kind: str  # "module" (owns parameters, has a path) | "function" (a tensor op)
    target: str  # "torch.nn.Linear", "torch.softmax", "netspec:center_crop", "method:view"
    schema: tuple[ArgSpec, ...]
    category: str  # for colors: linear conv norm activation dropout attention merge pool shape embedding recurrent op param
    inputs: int = 1  # modules: how many tensors forward() takes
    label: tuple[str, ...] = ()  # argument names shown in diagrams; () = positional ones
    factory: bool = False  # functions that create tensors: the compiler adds device=
    doc: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def is_module(self) -> bool:
        return self.kind == "module"


REGISTRY: dict[str, LayerDef] = {}
# Keyword arguments every module with weights accepts (handled by the compiler, not torch):
COMMON_MODULE_KWARGS = {
    "init": "how to initialize `weight`: normal(std), zeros, ones, kaiming, xavier, constant(v)",
    "bias_init": "how to initialize `bias`",
    "tie": "share `weight` with another layer of this block (GPT-2's lm_head = wte)",
    "frozen": "true: parameters are not trained",
}
# Keyword arguments every block instance accepts, beside the block's own parameters (which win
# on a clash of names): `enc: Encoder(d, frozen=true)`.
COMMON_BLOCK_KWARGS = {
    "frozen": "true: none of the block's parameters are trained (all its layers, nested blocks included)",
}


def _m(name, target, sig, category, inputs=1, label=(), doc="", **extra):
    REGISTRY[name] = LayerDef(name, "module", target, parse_schema(sig), category, inputs,
                              tuple(label), False, doc, extra)


def _f(name, target, sig, category="op", label=(), factory=False, doc="", **extra):
    REGISTRY[name] = LayerDef(name, "function", target, parse_schema(sig), category, 1,
                              tuple(label), factory, doc, extra)


_PAD = "padding:any=0"
# ---- linear / conv ----
_m("Linear", "torch.nn.Linear", "in_features:dim, out_features:dim, bias:bool=true", "linear")
_m("Bilinear", "torch.nn.Bilinear", "in1_features:dim, in2_features:dim, out_features:dim, bias:bool=true",
   "linear", inputs=2)
for _d in (1, 2, 3):
    _m(f"Conv{_d}d", f"torch.nn.Conv{_d}d",
       f"in_channels:dim, out_channels:dim, kernel_size:dims, stride:dims=1, {_PAD}, dilation:dims=1, "
       "groups:dim=1, bias:bool=true, padding_mode:str='zeros'", "conv",
       label=("in_channels", "out_channels", "kernel_size", "stride"))
    _m(f"ConvTranspose{_d}d", f"torch.nn.ConvTranspose{_d}d",
       "in_channels:dim, out_channels:dim, kernel_size:dims, stride:dims=1, padding:ints=0, "
       "output_padding:ints=0, groups:dim=1, bias:bool=true, dilation:dims=1", "conv",
       label=("in_channels", "out_channels", "kernel_size", "stride"))
    _m(f"BatchNorm{_d}d", f"torch.nn.BatchNorm{_d}d",
       "num_features:dim, eps:pos=1e-05, momentum:any=0.1, affine:bool=true, track_running_stats:bool=true", "norm",
       label=("num_features",))
    _m(f"MaxPool{_d}d", f"torch.nn.MaxPool{_d}d",
       "kernel_size:dims, stride:any=none, padding:ints=0, dilation:dims=1, return_indices:bool=false, "
       "ceil_mode:bool=false", "pool")
    _m(f"AvgPool{_d}d", f"torch.nn.AvgPool{_d}d",
       "kernel_size:dims, stride:any=none, padding:ints=0, ceil_mode:bool=false, count_include_pad:bool=true",
       "pool")
    _m(f"AdaptiveAvgPool{_d}d", f"torch.nn.AdaptiveAvgPool{_d}d", "output_size:any", "pool")
    _m(f"AdaptiveMaxPool{_d}d", f"torch.nn.AdaptiveMaxPool{_d}d", "output_size:any", "pool")
    _m(f"InstanceNorm{_d}d", f"torch.nn.InstanceNorm{_d}d",
       "num_features:dim, eps:pos=1e-05, momentum:any=0.1, affine:bool=false, track_running_stats:bool=false",
       "norm", label=("num_features",))
    _m(f"Dropout{_d}d", f"torch.nn.Dropout{_d}d", "p:prob=0.5, inplace:bool=false", "dropout")

# ---- norms ----
_m("LayerNorm", "torch.nn.LayerNorm", "normalized_shape:dims, eps:pos=1e-05, elementwise_affine:bool=true, "
   "bias:bool=true", "norm")
_m("GroupNorm", "torch.nn.GroupNorm", "num_groups:dim, num_channels:dim, eps:pos=1e-05, affine:bool=true", "norm")
_m("LayerNorm2d", "netspec:LayerNorm2d", "normalized_shape:dim, eps:pos=1e-05, elementwise_affine:bool=true, "
   "bias:bool=true", "norm", doc="LayerNorm over the channels of [B, C, H, W] (ConvNeXt's LayerNorm2d)")
_m("RMSNorm", "torch.nn.RMSNorm", "normalized_shape:dims, eps:any=none, elementwise_affine:bool=true", "norm")
_m("LocalResponseNorm", "torch.nn.LocalResponseNorm", "size:dim, alpha:float=0.0001, beta:float=0.75, k:float=1.0",
   "norm")
# ---- regularization ----
_m("Dropout", "torch.nn.Dropout", "p:prob=0.5, inplace:bool=false", "dropout")
_m("AlphaDropout", "torch.nn.AlphaDropout", "p:prob=0.5, inplace:bool=false", "dropout")
_m("StochasticDepth", "netspec:StochasticDepth", "p:prob, mode:str='row'", "dropout",
   choices={"mode": ("row", "batch")},
   doc="drops the whole input with probability p, per sample (row) or per batch, in training only "
       "(torchvision.ops.StochasticDepth)")
# ---- activations ----
_m("ReLU", "torch.nn.ReLU", "inplace:bool=false", "activation", label=())
_m("ReLU6", "torch.nn.ReLU6", "inplace:bool=false", "activation", label=())
_m("GELU", "torch.nn.GELU", "approximate:str='none'", "activation", label=())
_m("SiLU", "torch.nn.SiLU", "inplace:bool=false", "activation", label=())
_m("Mish", "torch.nn.Mish", "inplace:bool=false", "activation", label=())
_m("Hardswish", "torch.nn.Hardswish", "inplace:bool=false", "activation", label=())
_m("Hardsigmoid", "torch.nn.Hardsigmoid", "inplace:bool=false", "activation", label=())
_m("ELU", "torch.nn.ELU", "alpha:float=1.0, inplace:bool=false", "activation", label=())
_m("Tanh", "torch.nn.Tanh", "", "activation")
_m("Sigmoid", "torch.nn.Sigmoid", "", "activation")
_m("LeakyReLU", "torch.nn.LeakyReLU", "negative_slope:float=0.01, inplace:bool=false", "activation")
_m("Softmax", "torch.nn.Softmax", "dim:int=-1", "activation", force=("dim",))
_m("LogSoftmax", "torch.nn.LogSoftmax", "dim:int=-1", "activation", force=("dim",))
_m("Softplus", "torch.nn.Softplus", "beta:float=1.0, threshold:float=20.0", "activation")
# ---- shape / misc modules ----
_m("Flatten", "torch.nn.Flatten", "start_dim:int=1, end_dim:int=-1", "shape")
_m("Unflatten", "torch.nn.Unflatten", "dim:int, unflattened_size:ints", "shape")
_m("Upsample", "torch.nn.Upsample", "size:any=none, scale_factor:any=none, mode:str='nearest', "
   "align_corners:any=none", "shape", label=("scale_factor", "mode"))
_m("Identity", "torch.nn.Identity", "", "shape")
_m("Permute", "netspec:Permute", "*dims:ints", "shape", doc="x.permute(*dims) as a layer (torchvision.ops.Permute)")
_m("Embedding", "torch.nn.Embedding", "num_embeddings:dim, embedding_dim:dim, padding_idx:any=none, "
   "max_norm:any=none, scale_grad_by_freq:bool=false, sparse:bool=false", "embedding")
# ---- attention / recurrent ----
_m("MultiheadAttention", "torch.nn.MultiheadAttention",
   "embed_dim:dim, num_heads:dim, dropout:prob=0.0, bias:bool=true, add_bias_kv:bool=false, "
   "add_zero_attn:bool=false, kdim:any=none, vdim:any=none, batch_first:bool=true, is_causal:bool=false",
   "attention", inputs=3, force=("batch_first",), call_args=("is_causal",),
   doc="query, key, value -> attention output (the weights are dropped); is_causal=true masks the future")
_m("ScaledDotProductAttention", "netspec:ScaledDotProductAttention",
   "dropout:prob=0.0, is_causal:bool=false, scale:any=none", "attention", inputs=3,
   doc="F.scaled_dot_product_attention(q, k, v) with dropout only in training")
# Recurrent layers take an optional initial state as a second input; they return the output
# sequence, or with return_state=true torch's whole result: (output, (h, c)) / (output, h).
_m("LSTM", "torch.nn.LSTM", "input_size:dim, hidden_size:dim, num_layers:dim=1, bias:bool=true, "
   "batch_first:bool=true, dropout:prob=0.0, bidirectional:bool=false, proj_size:nat=0, return_state:bool=false",
   "recurrent", force=("batch_first",), max_inputs=2, state_input=True, options=("return_state",),
   counts="num_layers", doc="x [, (h0, c0)] -> the output sequence; return_state=true: (output, (h, c))")
_m("GRU", "torch.nn.GRU", "input_size:dim, hidden_size:dim, num_layers:dim=1, bias:bool=true, "
   "batch_first:bool=true, dropout:prob=0.0, bidirectional:bool=false, return_state:bool=false", "recurrent",
   force=("batch_first",), max_inputs=2, state_input=True, options=("return_state",),
   counts="num_layers", doc="x [, h0] -> the output sequence; return_state=true: (output, h)")
# ---- learned tensors and running statistics, for writing layers from primitives ----
_m("Parameter", "netspec:Parameter", "*shape:dim", "param", inputs=0,
   doc="a learned tensor of this shape (init=zeros|ones|normal(std)...); its value is the tensor itself")
_m("RunningStat", "netspec:RunningStat", "*shape:dim, momentum:prob=0.1, init:any=none", "param", max_inputs=2,
   doc="training: lerp the buffer towards the first input, return the last input; eval: return the buffer")

# ---- tensor ops (functions; first parameter is the tensor a chain feeds in) ----
_f("matmul", "torch.matmul", "input:tensor, other:tensor", "merge")
_f("add", "torch.add", "input:tensor, other:any", "merge")
_f("mul", "torch.mul", "input:tensor, other:any", "merge")
_f("transpose", "torch.transpose", "input:tensor, dim0:int, dim1:int", "shape")
_f("permute", "method:permute", "input:tensor, *dims:int", "shape")
_f("reshape", "method:reshape", "input:tensor, *shape:any", "shape")
_f("view", "method:view", "input:tensor, *shape:any", "shape")
_f("contiguous", "method:contiguous", "input:tensor", "shape")
_f("flatten", "torch.flatten", "input:tensor, start_dim:int=0, end_dim:int=-1", "shape")
_f("unsqueeze", "torch.unsqueeze", "input:tensor, dim:int", "shape")
_f("squeeze", "torch.squeeze", "input:tensor, dim:any=none", "shape")
_f("expand", "method:expand", "input:tensor, *sizes:any", "shape")
_f("cat", "torch.cat", "*tensors:tensor, dim:int=0", "merge", pack=True)
_f("stack", "torch.stack", "*tensors:tensor, dim:int=0", "merge", pack=True)
_f("split", "torch.split", "tensor:tensor, split_size_or_sections:any, dim:int=0", "shape")
_f("chunk", "torch.chunk", "input:tensor, chunks:dim, dim:int=0", "shape")
_f("softmax", "torch.softmax", "input:tensor, dim:int", "activation")
_f("log_softmax", "torch.log_softmax", "input:tensor, dim:int", "activation")
_f("relu", "torch.relu", "input:tensor", "activation")
_f("gelu", "torch.nn.functional.gelu", "input:tensor, approximate:str='none'", "activation")
_f("silu", "torch.nn.functional.silu", "input:tensor", "activation")
_f("tanh", "torch.tanh", "input:tensor", "activation")
_f("sigmoid", "torch.sigmoid", "input:tensor", "activation")
_f("exp", "torch.exp", "input:tensor")
_f("sin", "torch.sin", "input:tensor")
_f("cos", "torch.cos", "input:tensor")
_f("log", "torch.log", "input:tensor")
_f("sqrt", "torch.sqrt", "input:tensor")
_f("rsqrt", "torch.rsqrt", "input:tensor")
_f("abs", "torch.abs", "input:tensor")
_f("mean", "torch.mean", "input:tensor, dim:any=none, keepdim:bool=false")
_f("sum", "torch.sum", "input:tensor, dim:any=none, keepdim:bool=false")
_f("amax", "torch.amax", "input:tensor, dim:any=(), keepdim:bool=false")
_f("var", "torch.var", "input:tensor, dim:any=none, correction:nat=1, keepdim:bool=false")
_f("std", "torch.std", "input:tensor, dim:any=none, correction:nat=1, keepdim:bool=false")
_f("clamp", "torch.clamp", "input:tensor, min:any=none, max:any=none")
_f("where", "torch.where", "condition:tensor, input:any, other:any", "merge")
_f("masked_fill", "torch.masked_fill", "input:tensor, mask:tensor, value:float", "op")
_f("tril", "torch.tril", "input:tensor, diagonal:int=0", "op")
_f("triu", "torch.triu", "input:tensor, diagonal:int=0", "op")
_f("pad", "torch.nn.functional.pad", "input:tensor, pad:ints, mode:str='constant', value:float=0.0", "shape")
_f("interpolate", "torch.nn.functional.interpolate", "input:tensor, size:any=none, scale_factor:any=none, "
   "mode:str='nearest', align_corners:any=none", "shape")
_f("float", "method:float", "input:tensor", "shape")
_f("long", "method:long", "input:tensor", "shape")
_f("detach", "method:detach", "input:tensor", "op")
_f("lerp", "torch.lerp", "input:tensor, end:tensor, weight:any", "op")
_f("dropout", "torch.nn.functional.dropout", "input:tensor, p:prob=0.5, training:any=true", "dropout",
   doc="dropout(p, training=training): active only while the model trains")
_f("stochastic_depth", "netspec:stochastic_depth", "input:tensor, p:prob, mode:str='row', training:any=true",
   "dropout", choices={"mode": ("row", "batch")},
   doc="stochastic_depth(p, training=training): StochasticDepth as a function")
_f("size", "method:size", "input:tensor, dim:int", "shape", doc="a runtime size: size(x, 1)")
_f("numel", "method:numel", "input:tensor", "shape")
_f("center_crop", "netspec:center_crop", "input:tensor, like:tensor", "shape",
   doc="crop the trailing spatial dims of input to those of like (UNet's crop before concat)")
_f("causal_mask", "netspec:causal_mask", "input:tensor, value:float=-inf", "attention",
   doc="masked_fill(input, tril(ones(T, T)) == 0, value) for [..., T, T] attention scores")
_f("scaled_dot_product_attention", "torch.nn.functional.scaled_dot_product_attention",
   "query:tensor, key:tensor, value:tensor, attn_mask:any=none, is_causal:bool=false, scale:any=none",
   "attention", doc="fused attention without dropout (use ScaledDotProductAttention for dropout)")
# factories: the compiler places their results on the device of the model's first input
_f("arange", "torch.arange", "*args:any", "op", factory=True, doc="arange(T) or arange(start, end, step)")
_f("ones", "torch.ones", "*size:any", "op", factory=True)
_f("zeros", "torch.zeros", "*size:any", "op", factory=True)
_f("full", "torch.full", "size:any, fill_value:float", "op", factory=True)
_f("rand", "torch.rand", "*size:any", "op", factory=True, doc="uniform on [0, 1)")
_f("randn", "torch.randn", "*size:any", "op", factory=True, doc="standard normal")

# Functions that may also be written as methods: x.view(B, T, C), x.softmax(dim=-1).
METHODS = {name for name, d in REGISTRY.items() if d.kind == "function" and not d.factory}

CATEGORIES = ("input", "linear", "conv", "norm", "activation", "dropout", "attention", "merge", "pool",
              "shape", "embedding", "recurrent", "op", "param", "block", "head")


def lookup(name: str) -> LayerDef | None:
    return REGISTRY.get(name)
