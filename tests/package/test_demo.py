"""`make demo` (`python -m netspec.demo`) runs end to end, and again over its own earlier output."""
from __future__ import annotations

import json

from netspec.cli import main as netspec_main
from netspec.demo import main as demo


def test_the_demo_runs_over_an_earlier_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    # what an earlier `make demo` left: a run in each of the demo's run folders
    assert netspec_main(["train", "lenet", "--data", "digits", "--steps", "1", "--out", str(out / "lenet")]) == 0
    assert netspec_main(["train", "gpt2", "--set", "n_layer=1", "n_head=2", "n_embd=16", "block_size=16",
                         "vocab_size=256", "--data", "pycode", "--steps", "1", "--out", str(out / "gpt2")]) == 0
    capsys.readouterr()
    assert demo(["--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "LeNet-5 validation accuracy:" in printed and "demo finished in" in printed
    for name in ("lenet", "resnet", "unet", "gpt2", "alexnet"):
        assert (out / f"{name}.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    config = json.loads((out / "gpt2" / "model.json").read_text())
    assert config["overrides"]["n_embd"] == 128  # the demo's own model replaced the earlier run's
    assert (out / "lenet" / "last" / "model.safetensors").is_file()
