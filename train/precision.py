"""Mixed precision: the autocast context a run's `precision` (fp32 | bf16 | fp16) asks for, and
what a precision does on a device where it is unusual (said once when training starts)."""
from __future__ import annotations

from contextlib import nullcontext

import torch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # fp32: no autocast


def autocast(device: torch.device, precision: str):
    """torch.autocast on `device` in the precision's dtype; a no-op context for fp32."""
    dtype = AMP_DTYPES.get(precision)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def precision_note(device: torch.device, precision: str) -> str | None:
    """One line saying what `precision` does on `device` when that is not what a user may
    expect (fp16 off CUDA: no loss scaling, and rarely faster), else None."""
    if precision == "fp16" and device.type != "cuda":
        return (f"note: --precision fp16 on {device.type}: matmuls and convolutions run in float16 under "
                "autocast, without loss scaling (GradScaler needs CUDA), so small gradients can underflow; "
                "it is usually slower than fp32 there (bf16 is the CPU's half precision)")
    return None
