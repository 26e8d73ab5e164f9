"""The speed recipe (train/recipe.py): which settings a run uses on which device, that
channels_last changes the layout and not the numbers, and that a training step never reads
a tensor's value on the host except on logged steps (a GPU would wait for it)."""
from __future__ import annotations

import pytest
import torch

from netspec.train.config import ConfigError, RunConfig, from_dict
from netspec.train.recipe import RECIPE, recipe, recipe_line, to_device
from netspec.train.trainer import _Run, train
from tests.train.fixtures import make

CUDA = torch.device("cuda")  # a device object only: no CUDA call is made deciding the recipe
CPU = torch.device("cpu")


def test_cpu_run_uses_none_of_the_gpu_settings():
    assert recipe(CPU, make("conv"), RunConfig()) == {s.name: False for s in RECIPE}
    assert recipe_line(recipe(CPU, make("conv"), RunConfig())) == "recipe: plain fp32"


def test_cuda_run_turns_on_the_safe_settings_and_channels_last_for_convolutions():
    conv = recipe(CUDA, make("conv"), RunConfig())
    assert conv == {"tf32": True, "fused_adamw": True, "pinned": True, "channels_last": True, "bf16": False,
                    "fp16": False, "compile": False}
    assert recipe_line(conv) == "recipe: TF32 matmuls, fused AdamW, pinned memory, channels_last"
    assert recipe(CUDA, make("mlp"), RunConfig())["channels_last"] is False  # no Conv2d
    mixed = recipe(CUDA, make("mlp"), RunConfig(precision="bf16", compile=True))
    assert recipe_line(mixed) == "recipe: TF32 matmuls, fused AdamW, pinned memory, bf16 autocast, torch.compile"


def test_settings_turn_off_and_on_from_the_config():
    off = recipe(CUDA, make("conv"), RunConfig(tf32=False, channels_last="false", optimizer="sgd"))
    assert not off["tf32"] and not off["channels_last"] and not off["fused_adamw"] and off["pinned"]
    assert recipe(CPU, make("conv"), RunConfig(channels_last="true"))["channels_last"]
    assert recipe(CPU, make("mlp"), RunConfig(channels_last=True))["channels_last"]  # forced, even without Conv2d


def test_channels_last_reads_yaml_booleans_and_rejects_other_values():
    assert from_dict({"channels_last": False}).channels_last == "false"
    assert from_dict({"tf32": "off"}).tf32 is False
    with pytest.raises(ConfigError, match="^channels_last must be one of auto, true, false, got 'nhwc'$"):
        RunConfig(channels_last="nhwc")
    with pytest.raises(ConfigError, match="^strategy must be one of ddp, fsdp, got 'zero'$"):
        RunConfig(strategy="zero")


def test_to_device_puts_images_in_channels_last_and_leaves_labels():
    batch = {"x": torch.randn(2, 3, 4, 5), "y": torch.tensor([1, 2])}
    out = to_device(batch, CPU, {"channels_last": True})
    assert out["x"].is_contiguous(memory_format=torch.channels_last) and not out["x"].is_contiguous()
    torch.testing.assert_close(out["x"], batch["x"], rtol=0, atol=0)
    assert out["y"] is batch["y"] or torch.equal(out["y"], batch["y"])
    plain = to_device(batch, CPU, {})
    assert plain["x"].is_contiguous()


def _losses(channels_last: str) -> tuple[list[float], torch.nn.Module]:
    m = make("conv")
    losses = []
    cfg = RunConfig(steps=4, batch_size=16, log_every=1, eval_every=0, warmup_steps=1, device="cpu",
                    channels_last=channels_last, augment=False)
    train(m, cfg, "digits", None, progress=False, on_step=lambda step, row: losses.append(row["loss"]))
    return losses, m


def test_channels_last_on_cpu_trains_to_the_same_losses():
    plain, m0 = _losses("false")
    nhwc, m1 = _losses("true")
    conv = 4  # Conv2d(8, 16): with one input channel both layouts of the first look contiguous
    assert m1.body[conv].weight.is_contiguous(memory_format=torch.channels_last)
    assert not m0.body[conv].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(nhwc, plain, rtol=1e-5, atol=1e-5)
    for (k, a), (_, b) in zip(m0.named_parameters(), m1.named_parameters()):
        if k == "body.0.bias":  # BatchNorm follows: its gradient is 0 up to rounding, which Adam scales to
            continue  # steps of lr whatever the layout -- the one weight the layouts can move apart
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6, msg=k)


# --------------------------------------------------------------------------
# No host synchronisation inside a step


READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "__format__", "__repr__", "numpy")


def test_steps_between_logged_ones_read_no_tensor_on_the_host(monkeypatch):
    """On a GPU every read of a device value blocks the host until the queue drains. A CPU run
    counts those reads instead: steps that log nothing must make none."""
    reads: list[tuple[int, str]] = []
    state = {"step": 0, "looping": False}  # the step being run: the last finished one + 1
    for name in READS:
        orig = getattr(torch.Tensor, name)

        def counted(self, *a, _orig=orig, _name=name, **k):
            if state["looping"]:  # loading the data before the loop reads its statistics: not a step
                reads.append((state["step"] + 1, _name))
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    step = _Run.train_step

    def first_step(self, model):
        state["looping"] = True
        return step(self, model)

    monkeypatch.setattr(_Run, "train_step", first_step)

    def on_step(step, row):
        state["step"] = step

    # SGD: CPU AdamW (not fused) reads its step counters with .item() -- host tensors even on a GPU,
    # and the fused AdamW a CUDA run uses reads none
    cfg = RunConfig(steps=8, batch_size=16, log_every=4, eval_every=0, save_every=0, warmup_steps=2,
                    device="cpu", grad_accum=2, augment=False, optimizer="sgd")
    model = make("twohead")
    train(model, cfg, "digits", None, progress=False, on_step=on_step)
    assert state["step"] == 8
    quiet = [(s, n) for s, n in reads if s % cfg.log_every != 0]
    assert quiet == []
    assert any(s == 4 for s, _ in reads)  # the counter sees the logged step's reads: it can fail


def test_cli_flags_reach_the_run_config_and_the_recipe_line(tmp_path, capsys):
    from netspec.cli import main

    run = tmp_path / "run"
    assert main(["train", "lenet", "--steps", "1", "--batch-size", "4", "--device", "cpu", "--channels-last", "true",
                 "--tf32", "false", "--strategy", "ddp", "--out", str(run)]) == 0
    cfg = (run / "config.yaml").read_text()
    assert "tf32: false\n" in cfg and "channels_last: 'true'\n" in cfg and "strategy: ddp\n" in cfg
    assert "recipe: channels_last\n" in capsys.readouterr().out
    assert main(["train", "lenet", "--steps", "1", "--strategy", "fsdp", "--device", "cpu",
                 "--out", str(tmp_path / "f")]) == 1
    assert "strategy fsdp shards the model across the processes of torchrun" in capsys.readouterr().err
