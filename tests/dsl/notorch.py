"""Make torch unimportable in this interpreter, as on a machine without it."""
import importlib.abc
import sys


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named '{name}' (blocked: this must run without torch)", name=name)
        return None


def block_torch() -> None:
    if "torch" in sys.modules:
        raise RuntimeError("torch is imported already: cannot run without it")
    sys.meta_path.insert(0, _NoTorch())
