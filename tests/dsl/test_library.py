"""The standard library of specs (dsl/library.py): found with importlib.resources, named
on the command line by file stem or model name, a file in the current folder first."""
from pathlib import Path

import pytest

from netspec.dsl.errors import NetspecError
from netspec.dsl.frontend import elaborate
from netspec.dsl.library import reference, resolve, resolve_source, stdlib_dir, stdlib_files, stdlib_models

FILES = ["alexnet", "gpt2", "lenet", "resnet", "unet"]


def test_stdlib_is_a_package_with_its_specs():
    assert (stdlib_dir() / "__init__.py").exists()
    assert list(stdlib_files()) == FILES


@pytest.mark.parametrize("name", FILES)
def test_file_opens_with_a_doc_block(name):
    lines = stdlib_files()[name].read_text().splitlines()
    assert lines[0].startswith("## "), f"{name}.nn must open with a `##` doc block"
    blank = lines.index("")
    assert all(line.startswith("##") for line in lines[:blank])


def test_stdlib_models_in_file_order():
    models = [(m.name, m.file.stem, m.default) for m in stdlib_models()]
    assert models == [("AlexNet", "alexnet", True), ("GPT2", "gpt2", True), ("LeNet5", "lenet", True),
                      ("ResNet", "resnet", False), ("ResNet18", "resnet", False), ("ResNet34", "resnet", False),
                      ("ResNet50", "resnet", True), ("ResNet101", "resnet", False), ("ResNet152", "resnet", False),
                      ("UNet", "unet", True)]
    assert all(m.doc for m in stdlib_models() if m.name != "ResNet")


def test_reference_is_the_paper_of_the_doc_block():
    assert reference(stdlib_files()["resnet"]) == \
        'He, Zhang, Ren & Sun 2015, "Deep residual learning for image recognition"'
    assert reference(stdlib_files()["gpt2"]).startswith("Radford et al. 2019")


@pytest.mark.parametrize("name, file, model", [
    ("gpt2", "gpt2", None), ("gpt2.nn", "gpt2", None), ("stdlib/gpt2.nn", "gpt2", None),
    ("ResNet50", "resnet", "ResNet50"), ("resnet50", "resnet", "ResNet50"), ("UNet", "unet", "UNet"),
])
def test_names_resolve_to_stdlib_files_and_models(name, file, model, tmp_path):
    path, m = resolve(name, cwd=tmp_path)
    assert (path, m) == (stdlib_files()[file], model)


def test_a_file_in_the_current_folder_wins(tmp_path):
    (tmp_path / "gpt2.nn").write_text("model Mine():\n    input x: float[B=1, 2]\n    head y\n")
    assert resolve("gpt2", cwd=tmp_path) == (Path("gpt2.nn"), None)
    assert resolve("gpt2.nn", cwd=tmp_path) == (Path("gpt2.nn"), None)


@pytest.mark.parametrize("name, message", [
    ("gpt3", "'gpt3' is neither a spec file nor a standard-library model (did you mean 'gpt2'?); "
             "`netspec models` lists them"),
    ("resnt.nn", "no such spec file 'resnt.nn' (did you mean 'resnet'?)"),
    ("nope/x.nn", "no such spec file 'nope/x.nn'"),
])
def test_unknown_names_are_located_errors(name, message, tmp_path):
    with pytest.raises(NetspecError) as e:
        resolve(name, cwd=tmp_path)
    assert str(e.value) == message


def test_text_stays_text():
    text = "model M():\n    input x: float[B=1, 2]\n    head y\n"
    assert resolve_source(text) == (text, None)
    path, model = resolve_source("ResNet18")
    assert (path.name, model) == ("resnet.nn", "ResNet18")


def test_a_model_name_elaborates_that_model():
    c = elaborate("ResNet18", overrides={"num_classes": 10})
    assert (c.graph.name, c.file) == ("ResNet18", str(stdlib_files()["resnet"]))
    assert c.graph.params["layers"] == [2, 2, 2, 2] and c.graph.params["num_classes"] == 10
    assert [op.path for op in c.graph.ops() if op.kind == "block"][:2] == ["layer1.0", "layer1.1"]
