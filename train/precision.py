"""Mixed precision: the autocast context a run's `precision` (fp32 | bf16 | fp16) asks for."""
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
