"""The front end stands without torch: this folder's tests, `netspec check --no-shapes`
and diagrams all run in an interpreter where `import torch` fails."""
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parent.parent
BLOCK = "from tests.dsl.notorch import block_torch; block_torch()\n"


def run(code: str, *args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code, *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=300)


def test_the_blocker_makes_torch_unimportable():
    r = run("try:\n    import torch\nexcept ImportError as e:\n    print('blocked:', e)\n")
    assert r.stdout.startswith("blocked: No module named 'torch'"), r.stdout + r.stderr


def test_dsl_tests_run_without_torch():
    # the inner run leaves this test out; were it ever selected there, it stops instead of recursing
    assert os.environ.get("NETSPEC_BLOCK_TORCH") != "1", "the torch-free run must not start another"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/dsl",
                        "-k", "not test_dsl_tests_run_without_torch"],
                       cwd=REPO, capture_output=True, text=True, env=dict(os.environ, NETSPEC_BLOCK_TORCH="1"),
                       timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    passed = re.search(r"(\d+) passed", r.stdout)
    assert passed and int(passed.group(1)) >= 50, r.stdout[-2000:]


CLI = "import sys\nfrom netspec.cli import main\nrc = main(sys.argv[1:])\nassert 'torch' not in sys.modules\nsys.exit(rc)\n"


def test_check_without_shapes_needs_no_torch(tmp_path):
    r = run(CLI, "check", "--no-shapes", "gpt2", "--set", "n_layer=2")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "gpt2: model GPT2 ok: inputs idx; heads logits\n"
    bad = tmp_path / "bad.nn"
    bad.write_text("model M():\n    input x: float[B=1, 4]\n    Lienar(4, 4)\n    head y\n")
    r = run(CLI, "check", "--no-shapes", str(bad))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"{bad}:3:5: error: unknown layer 'Lienar' (did you mean 'Linear'?)",
                                     "        Lienar(4, 4)", "        ^~~~~~"]


def test_diagrams_need_no_torch(tmp_path):
    out = tmp_path / "gpt2.svg"
    r = run("import sys\nfrom netspec.dsl.frontend import elaborate\nfrom netspec.dsl.render import render\n"
            "render(elaborate('gpt2', overrides={'n_layer': 2}).graph, sys.argv[1])\n"
            "assert 'torch' not in sys.modules\n", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text().lstrip().startswith("<?xml") and "lm_head" in out.read_text()
