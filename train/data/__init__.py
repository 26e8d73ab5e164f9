"""Training data for netspec models: sources, splits, resumable loaders, model checks.

`load_data(source, info, cfg)` reads what the model takes and its heads need from its
`ModelInfo` (`want`), loads SOURCE in that shape (`sources`, with the readers in
`images`, `figures`, `text`) and checks that the two fit (`outputs`). `core` holds
what every source shares: `Want`, `Data`, `Split`, the resumable `Loader`.
"""
from __future__ import annotations

from ..heads import outputs_by_head
from .core import Data, DataError, Loader, Split, Want, eval_batches, split_indices
from .outputs import NEEDS, OUTPUTS, check_fit, check_model, probe_shapes
from .sources import SOURCES, default_source, load_data, parse_source
from .want import want_from_info

__all__ = ["Data", "DataError", "Loader", "Split", "Want", "eval_batches", "load_data", "parse_source",
           "default_source", "want_from_info", "check_fit", "check_model", "outputs_by_head", "probe_shapes",
           "split_indices", "SOURCES", "NEEDS", "OUTPUTS"]
