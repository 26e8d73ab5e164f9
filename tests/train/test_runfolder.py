"""A run folder is self-contained: the spec and every file it imports are copied in, so
`eval`, `sample` and `--resume` work after the sources are gone; unusable folders and
unwritable places are one-line errors."""
from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from netspec.cli import main as netspec_main
from netspec.dsl.library import stdlib_dir
from netspec.train.runfolder import load_run
from netspec.train.speccopy import plan

MAIN = """\
## A tiny GPT: the stdlib's transformer Block, a head from a user file.
import stdlib.gpt2 as g
from gpt2 import MLP
from "lib/head.nn" import LMHead

model TinyGPT(vocab_size=256, block_size=16, n_layer=1, n_head=2, n_embd=16):
    input idx: long[B=1, T=block_size]
    wte: Embedding(vocab_size, n_embd)
    wpe: Embedding(block_size, n_embd)(arange(T))
    x = wte + wpe
    h0: g.Block(n_embd, n_head, n_layer)
    residual:
        mlp: MLP(n_embd, n_layer)
    out: LMHead(n_embd, vocab_size)
    head logits: lm
"""
HEAD = """\
import norms

block LMHead(d, vocab):
    ln: norms.Norm(d)
    proj: Linear(d, vocab, bias=false)
"""
NORMS = """\
block Norm(d):
    LayerNorm(d)
"""


def cli(*argv) -> int:
    return netspec_main([str(a) for a in argv])


def write_project(root: Path) -> Path:
    (root / "lib").mkdir(parents=True)
    (root / "lm.nn").write_text(MAIN)
    (root / "lib" / "head.nn").write_text(HEAD)
    (root / "lib" / "norms.nn").write_text(NORMS)
    return root / "lm.nn"


def test_run_works_after_its_sources_are_gone(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    spec = write_project(tmp_path / "proj")
    (tmp_path / "corpus.txt").write_text("the quick brown fox jumps over the lazy dog. " * 60)
    run = tmp_path / "run"
    assert cli("train", spec, "--data", "text:corpus.txt", "--steps", 4, "--batch-size", 4, "--eval-every", 4,
               "--out", run) == 0
    # the copy: user files in their layout, the stdlib file beside them, stdlib.NAME pointed at the copy
    assert (run / "spec" / "lib" / "head.nn").read_text() == HEAD
    assert (run / "spec" / "lib" / "norms.nn").read_text() == NORMS
    assert (run / "stdlib" / "gpt2.nn").read_text() == (stdlib_dir() / "gpt2.nn").read_text()
    assert (run / "spec" / "lm.nn").read_text() == MAIN.replace("import stdlib.gpt2 as g",
                                                                'import "../stdlib/gpt2.nn" as g')
    meta = json.loads((run / "model.json").read_text())
    assert meta["spec"] == {"main": "spec/lm.nn", "search_path": ["stdlib"],
                            "files": ["spec/lm.nn", "stdlib/gpt2.nn", "spec/lib/head.nn", "spec/lib/norms.nn"]}

    shutil.move(tmp_path / "proj", tmp_path / "moved")  # the sources are gone
    model, _, _ = load_run(run)
    assert model.netspec.files and all(Path(f).is_relative_to(run.resolve()) for f in model.netspec.files)
    assert len(model.netspec.files) == 4  # lm.nn, gpt2.nn, head.nn, norms.nn: nothing read from outside

    capsys.readouterr()
    assert cli("eval", run, "--json") == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"loss", "perplexity"} and res["perplexity"] == pytest.approx(math.exp(res["loss"]))
    assert cli("sample", run, "--prompt", "the ", "--tokens", 8, "--seed", 0) == 0
    assert capsys.readouterr().out.startswith("the ")

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", ClosedPipe())  # `netspec sample ... | head -c 1`
    assert cli("sample", run, "--prompt", "the ", "--tokens", 8) == 0
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert cli("train", "--resume", run, "--steps", 6) == 0
    assert [int(r["step"]) for r in csv.DictReader(open(run / "metrics.csv"))][-1] == 6
    assert (run / "spec" / "lm.nn").read_text().startswith("## A tiny GPT")  # resuming keeps the copy as it was


def test_imports_from_netspec_path_are_copied_with_their_search_folder(tmp_path, monkeypatch, capsys):
    lib = tmp_path / "shared"
    (lib / "pkg").mkdir(parents=True)
    (lib / "pkg" / "blocks.nn").write_text("block Hidden(d_in, d):\n    fc: Linear(d_in, d)\n    ReLU()\n")
    (tmp_path / "proj").mkdir()
    spec = tmp_path / "proj" / "net.nn"
    spec.write_text("import pkg.blocks\n\nmodel Net(d=32):\n    input x: float[B=2, 64]\n"
                    "    hidden: blocks.Hidden(64, d)\n    fc: Linear(d, 10)\n    head logits: classify\n")
    monkeypatch.setenv("NETSPEC_PATH", str(lib))
    run = tmp_path / "run"
    assert cli("train", spec, "--data", "digits", "--steps", 2, "--batch-size", 8, "--out", run) == 0
    meta = json.loads((run / "model.json").read_text())
    assert meta["spec"] == {"main": "spec/proj/net.nn", "search_path": ["spec/shared"],
                            "files": ["spec/proj/net.nn", "spec/shared/pkg/blocks.nn"]}
    assert (run / "spec" / "shared" / "pkg" / "blocks.nn").is_file()
    monkeypatch.delenv("NETSPEC_PATH")
    shutil.rmtree(lib)
    spec.unlink()
    capsys.readouterr()
    assert cli("eval", run, "--json") == 0
    assert set(json.loads(capsys.readouterr().out)) == {"loss", "accuracy"}


def test_plan_keeps_the_layout_below_the_common_folder():
    stdlib = Path("/site/netspec/stdlib")
    files = [Path("/home/u/proj/main.nn"), Path("/home/u/proj/lib/a.nn"), Path("/opt/specs/pkg/b.nn"),
             stdlib / "resnet.nn"]
    roots = [Path("/opt/specs"), Path("/unused"), stdlib]
    where, search = plan(files, roots, stdlib)
    assert where == {files[0]: "spec/home/u/proj/main.nn", files[1]: "spec/home/u/proj/lib/a.nn",
                     files[2]: "spec/opt/specs/pkg/b.nn", files[3]: "stdlib/resnet.nn"}
    assert search == ("spec/opt/specs", "stdlib")
    where, search = plan(files[:2], roots, stdlib)
    assert where == {files[0]: "spec/main.nn", files[1]: "spec/lib/a.nn"} and search == ()


def test_a_stdlib_model_runs_from_its_copy(tmp_path):
    run = tmp_path / "run"
    assert cli("train", "lenet", "--set", "num_classes=10", "--data", "digits", "--steps", 1, "--batch-size", 4,
               "--out", run) == 0
    assert json.loads((run / "model.json").read_text())["spec"] == {
        "main": "stdlib/lenet.nn", "search_path": ["stdlib"], "files": ["stdlib/lenet.nn"]}
    model, _, _ = load_run(run)
    assert model.netspec.files == (str((run / "stdlib" / "lenet.nn").resolve()),)


def test_training_anew_into_a_run_folder_replaces_its_copy(tmp_path):
    mlp = "model M():\n    input x: float[B=2, 64]\n    fc: Linear(64, 10)\n    head logits: classify\n"
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "norms.nn").write_text(NORMS)
    first = tmp_path / "first.nn"
    first.write_text('from "lib/norms.nn" import Norm\n\n' + mlp.replace("    fc:", "    Norm(64)\n    fc:"))
    run = tmp_path / "run"
    args = ("--data", "digits", "--steps", 1, "--batch-size", 4, "--out", run)
    assert cli("train", first, *args) == 0
    assert (run / "spec" / "lib" / "norms.nn").is_file()
    (run / "spec" / "notes.nn").write_text("# mine\n")  # not the copy's: left alone
    second = tmp_path / "second.nn"
    second.write_text(mlp)
    assert cli("train", second, *args) == 1  # a run is there: replaced only on purpose
    assert cli("train", second, *args, "--overwrite") == 0
    assert sorted(p.name for p in (run / "spec").rglob("*.nn")) == ["notes.nn", "second.nn"]
    # a spec trained from a run's own copy into that run: read before the old copy goes
    assert cli("train", run / "spec" / "second.nn", *args, "--overwrite") == 0
    assert (run / "spec" / "second.nn").read_text() == mlp
    assert load_run(run)[0].netspec.name == "M"


# --------------------------------------------------------------------------
# errors


def test_unusable_run_folders_are_one_line_errors(tmp_path, capsys):
    spec = tmp_path / "mlp.nn"
    spec.write_text("model M():\n    input x: float[B=2, 64]\n    fc: Linear(64, 10)\n    head logits: classify\n")
    run = tmp_path / "run"
    assert cli("train", spec, "--data", "digits", "--steps", 1, "--batch-size", 4, "--out", run) == 0
    capsys.readouterr()

    (run / "model.json").write_text("{not json")
    assert cli("eval", run) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot read '{run / 'model.json'}': ")

    (run / "model.json").write_text(json.dumps({"model": "M", "spec": {"main": "spec/gone.nn"}}))
    assert cli("eval", run) == 1
    assert capsys.readouterr().err == f"error: '{run}' lost its spec copy: '{run / 'spec' / 'gone.nn'}' is missing\n"

    (run / "model.json").write_text(json.dumps({"model": "M", "spec": {"main": "../../elsewhere.nn"}}))
    assert cli("eval", run) == 1
    assert capsys.readouterr().err == ('error: model.json: "spec" is not a spec copy of the run: '
                                       "'../../elsewhere.nn' is outside the run folder\n")

    (run / "config.yaml").write_bytes(b"lr: \xff\xfe\n")
    assert cli("train", "--resume", run) == 1
    assert capsys.readouterr().err.startswith(f"error: {run / 'config.yaml'}: not a text file")

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert cli("train", spec, "--data", "digits", "--steps", 1, "--out", blocker / "run") == 1
    assert capsys.readouterr().err.startswith(f"error: cannot create run folder '{blocker / 'run'}': ")
    assert cli("train", spec, "--data", "digits", "--steps", 1, "--out", blocker) == 1
    assert capsys.readouterr().err == (f"error: cannot create run folder '{blocker}': "
                                       "a file of that name exists\n")


def test_config_values_of_the_wrong_type_are_config_errors(tmp_path, capsys):
    spec = tmp_path / "mlp.nn"
    spec.write_text("model M():\n    input x: float[B=2, 64]\n    fc: Linear(64, 10)\n    head logits: classify\n")
    for text, msg in [("data: 5\n", "data: expected a SOURCE such as digits or text:FILE, got 5"),
                      ("steps: 1.0e+400\n", "steps: cannot read inf as a number"),
                      ("compile: [1]\n", "compile: cannot read [1] as a bool"),
                      ("lr: [\n", "not valid YAML")]:
        (tmp_path / "run.yaml").write_text(text)
        assert cli("train", spec, "--config", tmp_path / "run.yaml") == 1, text
        assert msg in capsys.readouterr().err, text
