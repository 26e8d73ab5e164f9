"""`netspec completion bash|zsh`: the scripts complete commands, options, choices and specs in
the real shells -- bash through its `complete -F` function with COMP_WORDS set as bash sets
them, zsh through a pseudo-terminal where TAB is pressed after `compinit`."""
from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import textwrap

import pytest

from netspec.cli import COMMANDS, main

ZSH_CAPTURE = textwrap.dedent("""
    # zsh -f capture.zsh FUNCDIR OUT LINE: what TAB offers at the end of LINE, one per line in OUT
    zmodload zsh/zpty
    dir=$1; out=$2; line=$3
    zpty z zsh -f -i
    zpty -w z "fpath=($dir \\$fpath); autoload -U compinit; compinit -u -D"
    zpty -w z "compadd () { local -a hits; builtin compadd -O hits \\"\\$@\\"; print -rl -- \\$hits >> $out.part; builtin compadd \\"\\$@\\" }"
    zpty -w z "$line"$'\\t'
    zpty -w z $'\\x15'"mv $out.part $out 2>/dev/null || : > $out"
    for i in {1..200}; do [[ -e $out ]] && break; sleep 0.1; done
    zpty -d z
""")


def script(shell: str, capsys) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    d = tmp_path_factory.mktemp("completion")
    for shell, name in (("bash", "netspec.bash"), ("zsh", "_netspec")):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["completion", shell]) == 0
        (d / name).write_text(buf.getvalue())
    (d / "capture.zsh").write_text(ZSH_CAPTURE)
    (d / "work").mkdir()
    (d / "work" / "mine.nn").write_text("")
    (d / "work" / "notes.txt").write_text("")
    (d / "work" / "runs").mkdir()
    return d


def bash_complete(d, line: str) -> list[str]:
    """COMPREPLY of the netspec completion for `line` (completing its last word)."""
    words = line.split(" ")
    program = (f"source {d / 'netspec.bash'}\n"
               f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
               f"COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}\n"
               "complete -p netspec >/dev/null\n"
               "_netspec netspec \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\"\n"
               "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                       cwd=d / "work", timeout=60)
    assert r.returncode == 0, r.stderr
    return sorted(x for x in r.stdout.splitlines() if x)


def zsh_complete(d, line: str) -> list[str]:
    if shutil.which("zsh") is None:
        pytest.fail("zsh is not installed: `make setup` installs it (apt-get install zsh)", pytrace=False)
    out = d / "out"
    out.unlink(missing_ok=True)
    subprocess.run(["zsh", "-f", str(d / "capture.zsh"), str(d), str(out), line], cwd=d / "work", timeout=60,
                   check=True)
    return sorted(set(x for x in out.read_text().splitlines() if x))


@pytest.mark.parametrize("complete", [bash_complete, zsh_complete], ids=["bash", "zsh"])
def test_commands_options_choices_and_specs(scripts, complete):
    assert complete(scripts, "netspec pre") == ["predict"]
    assert set(COMMANDS) <= set(complete(scripts, "netspec "))
    assert complete(scripts, "netspec --de") == ["--debug"]
    assert complete(scripts, "netspec train --fre") == ["--freeze"]
    assert complete(scripts, "netspec predict runs --to") == ["--tokens", "--top", "--top-k"]
    assert complete(scripts, "netspec train lenet --device ") == ["auto", "cpu", "cuda", "mps"]
    assert complete(scripts, "netspec completion ") == ["bash", "zsh"]
    assert complete(scripts, "netspec check res") == ["resnet"]
    specs = complete(scripts, "netspec check ")
    assert {"gpt2", "ResNet50", "mine.nn"} <= set(specs) and "notes.txt" not in specs
    assert "runs" in " ".join(complete(scripts, "netspec eval r"))
    assert complete(scripts, "netspec --debug train --resume r") in (["runs"], ["runs/"])


def test_scripts_are_generated_from_the_parsers(capsys):
    bash, zsh = script("bash", capsys), script("zsh", capsys)
    for name in COMMANDS:
        assert f"        {name})" in bash
        assert f"                {name}) _arguments \\" in zsh
    assert zsh.startswith("#compdef netspec\n")
    assert "'--strict[with --weights\\: false loads" not in zsh  # colons inside [descriptions] stay plain
    assert "'--strict[with --weights: false loads the tensors that fit and lists the rest (default true)]" in zsh
    r = subprocess.run(["bash", "-n"], input=bash, text=True, capture_output=True)
    assert r.returncode == 0, r.stderr


def test_unknown_shell_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["completion", "fish"])
    assert e.value.code == 2
    assert "netspec completion: error: argument shell: invalid choice: 'fish' (choose from 'bash', 'zsh')" in \
        capsys.readouterr().err
