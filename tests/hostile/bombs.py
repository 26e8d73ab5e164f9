"""Resource bombs: specs written to make a compiler hang, crash or eat the machine's memory.

Each must get netspec's own error at FILE:LINE:COL, quickly and in little memory (the
limits of dsl/limits.py are checked before the work they bound). `tests/hostile/test_bombs.py`
runs each through the CLI in a subprocess under an address-space limit; `bench/fuzz.py
--bombs` times them against a small valid spec.

    path = write_bomb("repeat_1e9", tmp_path)   # the file, generated (some are 50 MB)
"""
from __future__ import annotations

from pathlib import Path

HEAD = "model M():\n    input x: float[B=1, 4]\n"
TAIL = "    head y\n"


def _body(*lines: str) -> str:
    return HEAD + "".join(f"    {line}\n" for line in lines) + TAIL


def _param(expr: str) -> str:
    return f"model M(p={expr}):\n    input x: float[B=1, 4]\n" + TAIL


def _chain_of_blocks(n: int) -> str:
    defs = [f"block B{i}():\n    B{i + 1}()\n" for i in range(n)]
    return "".join(defs) + f"block B{n}():\n    ReLU()\n" + HEAD + "    B0()\n" + TAIL


def _nested_ifs(n: int) -> str:
    lines = [HEAD.rstrip("\n")]
    for i in range(n):
        lines.append("    " * (i + 1) + "if true:")
    lines.append("    " * (n + 1) + "ReLU()")
    return "\n".join(lines) + "\n" + TAIL


# name -> (spec text, or bytes for what is not UTF-8, or a function making a big one when it is written;
#          what the first error says)
BOMBS: dict[str, tuple[object, str]] = {
    "repeat_1e9": (_body("repeat 10**9:", "    ReLU()"),
                'repeat 1,000,000,000 times: over the limit of 10,000 loop iterations per model'),
    "repeat_2_31": (_body("repeat 2**31:", "    ReLU()"),
                'repeat 2,147,483,648 times: over the limit of 10,000 loop iterations'),
    "nested_repeats": (_body("repeat 1000:", "    repeat 1000:", "        repeat 1000:", "            ReLU()"),
                'repeat 1,000 times (after 10,000 others): over the limit of 10,000 loop iterations'),
    "for_range_1e9": (_body("for i in range(10**9):", "    ReLU()"),
                'range(1000000000) has 1,000,000,000 elements: over the limit of 10,000 elements per value'),
    "range_1e12": (_param("range(10**12)"),
                'range(1000000000000) has 1,000,000,000,000 elements: over the limit'),
    "string_times_1e10": (_param('"a" * 10**10'),
                "'a' * 10000000000 would have 10,000,000,000 elements: over the limit"),
    "list_times_1e10": (_param("[0] * 10**10"),
                '[0] * 10000000000 would have 10,000,000,000 elements: over the limit'),
    "string_format_width": (_param('"%0999999999d" % 1'),
                "'%' does not format strings in netspec"),
    "power_tower": (_param("2**2**2**2**2**2"),
                '2 ** 65536 is too large an integer: over the limit of 63 bits per integer'),
    "ten_to_ten_to_ten": (_param("10**10**10"),
                '10 ** 10000000000 is too large an integer: over the limit of 63 bits'),
    "round_huge_digits": (_param("round(5, -10**18)"),
                'the digits argument must be between -400 and 400'),
    "literal_5000_digits": (_param("9" * 5000),
                'too large: over the limit of 63 bits per integer'),
    "literal_20_digits_dim": (_body("Linear(4, 99999999999999999999)"),
                'integer 99999999999999999999 too large: over the limit of 63 bits per integer'),
    "dim_10_30": (_body("Linear(4, 10**30)"),
                '10 ** 30 is too large an integer: over the limit of 63 bits'),
    "dim_1e309": (_body("Linear(4, 1e309)"),
                'number too large: 1e309 is past the largest float'),
    "tuple_10_30": (_body("Conv1d(4, 4, (10**30,))"),
                '10 ** 30 is too large an integer'),
    "doubling_list": (_body("a = [0]", "for i in range(64):", "    a = [a, a]", "Linear(4, len(a))"),
                'this list has 12,287 elements: over the limit of 10,000 elements per value'),
    "growing_string": (_body('s = "ab"', "for i in range(64):", "    s = s + s"),
                'elements: over the limit of 10,000 elements per value'),
    "unary_1000_deep": (_param("-(" * 1000 + "1" + ")" * 1000),
                'nested too deeply: over the limit of 100 levels of nesting (raise it with --limit depth=N)'),
    "minus_1000_deep": (_param("-" * 1000 + "1"),
                'nested too deeply: over the limit of 100 levels'),
    "power_1000_tall": (_param("**".join(["2"] * 1000)),
                'nested too deeply: over the limit of 100 levels'),
    "brackets_1000_deep": (_param("[" * 1000 + "]" * 1000),
                'nested too deeply: over the limit of 100 levels'),
    "parens_1000_deep": (_param("(" * 1000 + "1" + ")" * 1000),
                'nested too deeply: over the limit of 100 levels'),
    "sum_5000_terms": (_body("y = x" + " + x" * 2400),
                'nested too deeply: over the limit of 100 levels'),
    "blocks_200_deep": (_chain_of_blocks(200),
                "block 'B31' is instantiated 32 blocks deep: over the limit of 32 levels of blocks inside blocks"),
    "ifs_200_deep": (_nested_ifs(200),
                'nested too deeply: over the limit of 100 levels'),
    "chain_100k_repeat": (_body("repeat 100000:", "    Linear(4, 4)"),
                'repeat 100,000 times: over the limit of 10,000 loop iterations'),
    "chain_100k_lines": (lambda: HEAD + "    ReLU()\n" * 100_000 + TAIL,
                "spec file too large: over the limit of 131,072 bytes per spec file "
                "(raise it with --limit file_size=N)"),
    "chain_blocks_of_blocks": ("block A():\n" + "    Linear(4, 4)\n" * 100 + HEAD
                               + "    repeat 1000:\n        A()\n" + TAIL),
    "line_200k_steps": (lambda: HEAD + "    " + "; ".join(["ReLU()"] * 200_000) + "\n" + TAIL,
                'spec file too large: over the limit of 131,072 bytes'),
    "one_50mb_line": (lambda: HEAD + "    y = " + "1 + " * (50 * 2**20 // 4) + "1\n" + TAIL,
                'spec file too large: over the limit of 131,072 bytes'),
    "assignments_50mb": (lambda: HEAD + "".join(f"    a{i} = {i}\n" for i in range(3_000_000)) + TAIL,
                'spec file too large: over the limit of 131,072 bytes'),
    "errors_5000_names": (lambda: HEAD + "".join(f"    Lienar{i}(4, 4)\n" for i in range(5000)) + TAIL,
                "unknown layer 'Lienar0' (did you mean 'Linear'?)"),
    "errors_50000_syntax": (lambda: HEAD + "    a = = 1\n" * 50_000 + TAIL,
                'spec file too large'),
    "errors_3000_values": (lambda: HEAD + "".join(f"    Linear(4, -{i})\n" for i in range(1, 3000)) + TAIL,
                "Linear: 'out_features' must be a positive integer, got -1"),
    "undecodable_byte": ((HEAD + "    # caf").encode() + b"\xe9\n" + TAIL.encode(),
                'invalid UTF-8 byte 0xe9: spec files are UTF-8 text'),
    "nul_bytes": (HEAD + "    ReLU()\x00\x00\n" + TAIL,
                "unexpected character '\\x00'"),
    "import_proc_environ": ('import "/proc/self/environ" as p\n' + HEAD + TAIL,
                'cannot import "/proc/self/environ": an import names a .nn spec file'),
    "import_passwd": ('from "/etc/passwd" import X\n' + HEAD + TAIL,
                'cannot import "/etc/passwd": an import names a .nn spec file'),
    "import_up_passwd": ('import "../../../../../../../../etc/passwd"\n' + HEAD + TAIL,
                'cannot import "../../../../../../../../etc/passwd": an import names a .nn spec file'),
    "import_dev_zero": ('import "/dev/zero"\n' + HEAD + TAIL,
                'cannot import "/dev/zero": an import names a .nn spec file'),
    "name_hole_code": (_body("layer{\"); import os; (\"}: ReLU()"),
                "a label must be a name or a non-negative integer, got 'layer); import os; ('"),
    "value_name_hole_code": (_body("x{\"); import os; (\"} = 3"),
                             "which is not a name (letters, digits and '_', not starting with a digit)"),
    "keyword_label": (_body("lambda: ReLU()"),
                "'lambda' is a Python keyword and cannot name a layer or group"),
}


def write_bomb(name: str, folder: Path) -> Path:
    """The bomb's file in `folder` (written on demand: some are tens of megabytes)."""
    content = BOMBS[name][0]
    content = content() if callable(content) else content
    path = Path(folder) / f"{name}.nn"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path
