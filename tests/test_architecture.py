"""The dependency rules of DESIGN.md: the core imports no plugin; a plugin uses only the public `gen` API."""

from __future__ import annotations

import ast
from pathlib import Path

import gen

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIRS = sorted(p for p in (REPO / "plugins").iterdir() if (p / "__init__.py").is_file())
PLUGINS = {p.name for p in PLUGIN_DIRS}


def imported_modules(tree: ast.AST) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every import in a module."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module, [a.name for a in node.names]))
    return out


def test_there_are_plugins_to_check():
    assert {"gen_jit", "gen_dit", "gen_flow", "gen_data"} <= PLUGINS


def test_core_imports_no_plugin():
    bad = []
    for path in sorted((REPO / "core").rglob("*.py")):
        for line, module, _ in imported_modules(ast.parse(path.read_text())):
            if module.split(".")[0] in PLUGINS:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert bad == []


def test_plugins_use_only_the_public_api():
    public = set(gen.__all__)
    bad = []
    for plugin in PLUGIN_DIRS:
        for path in sorted(plugin.rglob("*.py")):
            tree = ast.parse(path.read_text())
            where = path.relative_to(REPO)
            for line, module, names in imported_modules(tree):
                top = module.split(".")[0]
                if top == "gen" and module != "gen":
                    bad.append(f"{where}:{line} imports {module} (use `import gen` and gen.__all__)")
                elif module == "gen":
                    bad.extend(
                        f"{where}:{line} imports gen.{n}, not public" for n in names if n not in public
                    )
                elif top in PLUGINS and top != plugin.name:
                    bad.append(f"{where}:{line} imports another plugin, {module}")
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "gen"
                    and node.attr not in public
                ):
                    bad.append(f"{where}:{node.lineno} uses gen.{node.attr}, not public")
    assert bad == []


def test_the_rule_checker_would_catch_a_violation(tmp_path):
    tree = ast.parse("from gen.recipe import load_recipe\nimport gen_jit\n")
    assert [m for _, m, _ in imported_modules(tree)] == ["gen.recipe", "gen_jit"]


# -- the layers of the core ---------------------------------------------------------------------------

CORE = REPO / "core" / "gen"

#: The core's layers, bottom first: a module imports only modules of its own layer or below (and never
#: one that imports it back). docs/architecture.md shows the same table.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "foundations",
        [
            "errors",
            "version",
            "lazy",
            "hookspecs",
            "protocols",
            "seeds",
            "precision",
            "images",
            "progress",
            "condition",
            "process",
            "distributed",
            "tensor_files",
            "files",
            "power_ema",
            "threads",
            "layers",
            "forward_ad",
            "plots",
            "loss_term",
            "hidden_states",
        ],
    ),
    ("configuration", ["config"]),
    ("registries", ["registry"]),
    ("plugin host", ["plugins"]),
    ("components", ["components"]),
    (
        "objective and sampling",
        [
            "sampling.step_counter",
            "sampling.grids",
            "sampling.noise",
            "sampling.guidance",
            "sampling.config",
            "objective",
            "term_specs",
            "sampling.driver",
            "latent_space",
            "train_config",
        ],
    ),
    ("recipes", ["recipe"]),
    (
        "runs on disk",
        ["runs", "runs.checkpoint", "runs.ema_snapshots", "runs.lock", "runs.model_folder", "runs.run_dir"],
    ),
    (
        "sampling trained models",
        [
            "sampling",
            "sampling.guides",
            "sampling.settings",
            "sampling.labels",
            "sampling.inversion",
            "sampling.model",
            "sampling.files",
        ],
    ),
    ("exporting", ["export", "export.*"]),
    ("metrics", ["metrics", "metrics.*"]),
    ("evaluation", ["evaluation", "evaluation.*"]),
    ("training", ["training", "training.*"]),
    ("reports", ["report", "report.*"]),
    ("commands", ["commands", "commands.*", "__main__"]),
    ("public API", ["__init__"]),
]


def core_modules() -> dict[str, Path]:
    """Dotted names relative to ``gen`` (``training.engine``; ``__init__`` for the package itself)."""
    out = {}
    for path in sorted(CORE.rglob("*.py")):
        parts = list(path.relative_to(CORE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> core modules it imports, at any depth of the file (top level and inside functions).

    ``from gen import x`` is an edge to ``gen.x`` when that is a module, else to the package (``__init__``).
    """

    def rel(mod: str) -> str | None:
        if mod != "gen" and not mod.startswith("gen."):
            return None
        return mod.removeprefix("gen").removeprefix(".") or "__init__"

    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found = [rel(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                base = rel(node.module)
                if base is None:
                    continue
                # `from gen.x import y`: y may itself be a module (gen.x.y), else a name of gen.x.
                found = [
                    sub if (sub := f"{base}.{a.name}".removeprefix("__init__.")) in modules else base
                    for a in node.names
                ]
            else:
                continue
            targets.update(t for t in found if t is not None)
        unknown = targets - set(modules)
        assert not unknown, f"{path}: imports unknown core modules {sorted(unknown)}"
        edges[name] = targets - {name}
    return edges


def layer_of(module: str) -> int:
    for i, (_, members) in enumerate(LAYERS):
        for m in members:
            if module == m or (m.endswith(".*") and module.startswith(m[:-1])):
                return i
    raise AssertionError(
        f"core module gen.{module} is in no layer of LAYERS; add it (and to docs/architecture.md)"
    )


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_core_imports_form_a_dag_including_function_level_imports():
    cycle = find_cycle(import_edges(core_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(f"gen.{m}" for m in cycle)


def test_every_core_import_goes_down_the_layers():
    modules = core_modules()
    upward = []
    for source, targets in import_edges(modules).items():
        for target in targets:
            # A package's __init__ may import its own submodules (re-exports).
            own_package = target.startswith(source + ".")
            if layer_of(target) > layer_of(source) and not own_package:
                upward.append(
                    f"gen.{source} ({LAYERS[layer_of(source)][0]}) imports gen.{target} "
                    f"({LAYERS[layer_of(target)][0]})"
                )
    assert upward == []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_function_level_imports_are_edges_too(tmp_path):
    (tmp_path / "low.py").write_text("def f():\n    from gen.high import g\n")
    (tmp_path / "high.py").write_text("import gen.low\n")
    edges = import_edges({"low": tmp_path / "low.py", "high": tmp_path / "high.py"})
    assert edges == {"low": {"high"}, "high": {"low"}} and find_cycle(edges) is not None


def test_no_core_module_is_long():
    long = [
        f"{p.relative_to(REPO)}: {n}"
        for p in CORE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    ]
    assert long == []


def test_no_core_function_is_long():
    """A function's body (after its signature and docstring) fits in 80 lines; a command's signature
    holds its options and is not counted."""
    long = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) else node.body
                if body and (n := node.end_lineno - body[0].lineno + 1) > 80:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {n} lines")
    assert long == []
