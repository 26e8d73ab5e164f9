"""netspec's training: a built model and its heads' tasks -> a run folder.

The loop (`trainer`), run configs (`config`), tasks (`tasks`), data sources (`data`),
checkpoints, torchrun/DDP (`distributed`), run logs and plots, sampling, and the
`train` / `eval` / `sample` commands (`cli`). It depends on the compiler's public
surface only (`netspec.build`, `model.netspec`, `locate_failure`); nothing in
`netspec.compiler` or `netspec.dsl` imports it. Needs the extras of
`pip install 'netspec-nn[train]'`.
"""
