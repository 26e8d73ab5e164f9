"""netspec's standard library: reference architectures as `.nn` specs (see docs/STDLIB.md)."""
