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
