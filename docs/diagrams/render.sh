#!/usr/bin/env bash
# Re-renders the diagrams of the docs (run from the repository root after `make setup`):
#   bash docs/diagrams/render.sh
set -euo pipefail
n=.venv/bin/netspec
out=docs/diagrams
$n render lenet -o $out/lenet5.svg
$n render alexnet -o $out/alexnet.svg
$n render ResNet18 -o $out/resnet18.svg
$n render ResNet50 -o $out/resnet50.svg --depth 1 --params
$n render unet -o $out/unet.svg --params
$n render gpt2 -o $out/gpt2.svg --depth 3 --params
$n render specs/gpt_outline.nn -o $out/gpt_outline.svg --depth 3
$n render specs/transformer.nn -o $out/transformer.svg --depth 2
