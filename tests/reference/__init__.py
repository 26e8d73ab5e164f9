"""Hand-written PyTorch reference models that netspec's built models are checked against.

Plain `torch.nn` modules, written from the papers and the published module
structure of the reference implementations (torchvision, nanoGPT), so that
tests can compare parameter counts, state_dict keys, output shapes and
outputs under the same weights. `torchvision_ref` loads the outputs dumped
by torchvision itself (see `dump_torchvision.py`).
"""
