"""The package's import graph (every import, at module level or inside a function): no module
imports another in a circle, and none imports from a layer above its own."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stgan_cli"
# The layers, lowest first: a module imports from its own layer or a lower one.  Data sits above
# composite (the glasses set is made by compositing onto detected faces); evaluation above training
# (it scores what training made, and reuses the critic's versions).
LAYERS = [
    {"errors"}, {"files"}, {"core"}, {"model"}, {"composite"}, {"data"}, {"training"}, {"evaluation"},
    {"api", "demo"}, {"stgan_cli", "app"}, {"commands"}, {"cli"}, {"__main__"},
]
# Modules whose layer is not their package's: export and its check run the graphs against PyTorch on
# generated rooms (data); only `stgan export` calls them.
PLACED = {"stgan_cli.model.export": "data", "stgan_cli.model.parity": "data"}


def import_graph() -> dict[str, set[str]]:
    files = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    edges: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else node.module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges[mod] |= {t for t in targets if t in files and t != mod}
    return edges


def circles(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read_from_the_package():
    edges = import_graph()
    assert "stgan_cli.model.modelstore" in edges["stgan_cli.commands.models"]
    assert "stgan_cli.core.geometry" in edges["stgan_cli.core.metrics"]


def layer(module: str) -> int:
    parts = module.split(".")
    name = PLACED.get(module, parts[1] if len(parts) > 1 else parts[0])
    return next(i for i, names in enumerate(LAYERS) if name in names)


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_no_import_from_a_layer_above():
    upward = [f"{m} -> {t}" for m, targets in import_graph().items() for t in targets if layer(t) > layer(m)]
    assert upward == []


def test_every_package_has_a_layer():
    for module in import_graph():
        layer(module)  # StopIteration for a package the list does not place


def test_the_hub_imports_nothing_of_the_model_store():
    assert not {"stgan_cli.model.modelstore"} & import_graph()["stgan_cli.model.hub"]


def test_circles_are_found_on_a_made_up_graph():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(edges) == [{"a", "b", "c"}]


def test_layers_rank_the_packages():
    assert layer("stgan_cli.errors") < layer("stgan_cli.core.frames") < layer("stgan_cli.model.nets") \
        < layer("stgan_cli.composite.pipeline") < layer("stgan_cli.commands.composite") < layer("stgan_cli.cli")
    assert layer("stgan_cli.model.export") == layer("stgan_cli.data.synth_indoor")


def test_no_module_over_350_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 350}
    assert long == {"data/synth_indoor.py": long.get("data/synth_indoor.py")}  # the room generator, one piece


def test_the_commands_parse_and_call_one_library_step():
    """composite() and evaluate(): options, then the library; their bodies (past the signature and
    the docstring) stay short."""
    for module, name in (("composite", "composite"), ("evaluate", "evaluate")):
        tree = ast.parse((PACKAGE / "commands" / f"{module}.py").read_text(encoding="utf-8"))
        fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
        body = fn.body[1:] if isinstance(fn.body[0], ast.Expr) else fn.body
        assert body[-1].end_lineno - body[0].lineno + 1 <= 40, name
