"""The package's layers (stargan_tf/__init__.py): no import cycles, no upward imports, short
functions, and one owner of the model directory's layout. Parses the source; imports nothing."""

import ast
import pathlib
import re

import pytest

import stargan_tf

PACKAGE = pathlib.Path(stargan_tf.__file__).parent
MAX_FUNCTION_LINES = 60


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name, path, modules):
    """The package modules `name` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1]
                    + ([base] if base else [])
                )
            # `from pkg import module` imports the module; `from module import name` the module.
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_the_layer_rule_is_the_docstrings():
    for layer in stargan_tf.LAYERS:
        for prefix in layer:
            assert prefix.replace("stargan_tf.", "") in stargan_tf.__doc__, prefix


def test_every_module_has_a_layer():
    assert [m for m in _modules() if stargan_tf.layer_of(m) is None] == []


def test_no_upward_imports():
    upward = [
        f"{m} (layer {stargan_tf.layer_of(m)}) imports {t} (layer {stargan_tf.layer_of(t)})"
        for m, targets in _graph().items()
        for t in sorted(targets)
        if stargan_tf.layer_of(t) > stargan_tf.layer_of(m)
    ]
    assert upward == []


def test_no_import_cycles():
    graph = _graph()
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_length_leaves_the_docstring_out():
    source = 'def f():\n    """Doc.\n\n    More.\n    """\n    return 1\n'
    assert _code_lines(ast.parse(source).body[0]) == 2


def test_the_checker_sees_a_cycle_and_an_upward_edge(tmp_path, monkeypatch):
    # The graph above is only as good as its parser: a planted cycle and an upward edge show up.
    modules = {"stargan_tf.layers.a": tmp_path / "a.py", "stargan_tf.training.b": tmp_path / "b.py"}
    modules["stargan_tf.layers.a"].write_text("def f():\n    from stargan_tf.training import b\n")
    modules["stargan_tf.training.b"].write_text("from stargan_tf.layers.a import f\n")
    assert _imports("stargan_tf.layers.a", modules["stargan_tf.layers.a"], modules) == {
        "stargan_tf.training.b"
    }
    assert _imports("stargan_tf.training.b", modules["stargan_tf.training.b"], modules) == {
        "stargan_tf.layers.a"
    }
    assert stargan_tf.layer_of("stargan_tf.training.b") > stargan_tf.layer_of("stargan_tf.layers.a")


def _code_lines(function):
    """Lines of a function from its `def` to its end, its docstring left out (documentation is
    not length)."""
    body = function.body
    lines = function.end_lineno - function.lineno + 1
    if (
        len(body) > 1
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        lines -= body[0].end_lineno - body[0].lineno + 1
    return lines


@pytest.mark.parametrize("root", ["stargan_tf", "tools"])
def test_functions_are_short(root):
    base = PACKAGE if root == "stargan_tf" else PACKAGE.parent / "tools"
    long = []
    for path in sorted(base.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = _code_lines(node)
                if lines > MAX_FUNCTION_LINES:
                    long.append(
                        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} "
                        f"({lines} lines)"
                    )
    assert long == []


def test_the_model_directory_layout_has_one_owner():
    # The checkpoint names and the config file are spelled in stargan_tf/model_dir.py only.
    spelled = [
        f"{p.relative_to(PACKAGE.parent)}:{i}"
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.name != "model_dir.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"ckpt-|\"checkpoints\"|rsplit\(\"-\"", line)
    ]
    assert spelled == []


def _tests_table():
    text = (PACKAGE.parent / "tests" / "conftest.py").read_text()
    doc = ast.get_docstring(ast.parse(text))
    return doc[doc.index("module (stargan_tf/...)") : doc.index("Helpers:")]


def test_every_module_has_its_tests_named():
    # tests/conftest.py's table: a newcomer finds the tests of any module from its name.
    table = _tests_table()
    unlisted = []
    for name, path in _modules().items():
        parts = name.split(".")[1:] or ["__init__"]
        stem = "__init__" if path.name == "__init__.py" and len(parts) > 1 else parts[-1]
        package = parts[0] if len(parts) > 1 else None
        if not (
            re.search(rf"(?<![\w.]){re.escape(stem)}(?![\w.])", table)
            or (package and f"{package}/*" in table)
        ):
            unlisted.append(name)
    assert unlisted == []


def test_the_tests_table_names_real_test_files():
    table = _tests_table()
    named = set()
    for line in table.splitlines()[1:]:
        columns = re.split(r"\s{2,}", line.strip())
        if len(columns) == 2 and not columns[1].startswith("("):
            named.update(re.findall(r"[a-z_]+", columns[1].split("(")[0]))
    missing = [n for n in sorted(named) if not (PACKAGE.parent / "tests" / f"test_{n}.py").exists()]
    assert named and missing == []


def test_every_exported_name_resolves():
    # The public names of stargan_tf/__init__.py survive the moves behind them.
    for name in stargan_tf.__all__:
        assert getattr(stargan_tf, name) is not None, name
    assert stargan_tf.load_networks.__module__ == "stargan_tf.model_dir"
