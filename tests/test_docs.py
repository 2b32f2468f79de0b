"""The docs stay true to the code: every hook is documented, the generated references cover every
registered component, config field and command, the plugin page's code runs, and the files the pages
include or name exist.

The full site is built by `mkdocs build --strict` (see the Makefile); these tests run the generators of
`docs/hooks/gen_reference.py` directly, which is fast.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import attrs
import pytest

import gen
from gen import hookspecs

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PLUGIN_PAGE = DOCS / "plugins.md"
EXAMPLE = REPO / "examples" / "gen-example-plugin"


@pytest.fixture(scope="module")
def hook():
    """The MkDocs hook module (docs/hooks/gen_reference.py), imported from its path."""
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "hooks" / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def host(hook):
    return hook.first_party_host()


@pytest.fixture(scope="module")
def recipes_md(hook, host):
    return hook.recipes_markdown(host)


def hook_specs() -> dict[str, inspect.Signature]:
    """Every hook specification of gen.hookspecs (pluggy marks them with ``gen_spec``)."""
    return {
        name: inspect.signature(fn)
        for name, fn in vars(hookspecs).items()
        if callable(fn) and hasattr(fn, "gen_spec")
    }


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


# -- the plugin page ----------------------------------------------------------------------------------


def test_there_are_hooks_to_document():
    assert {"register_backbones", "register_samplers", "register_commands"} <= set(hook_specs())


def test_every_hook_is_documented_with_its_signature():
    page = PLUGIN_PAGE.read_text()
    headings = set(re.findall(r"^### `(\w+\(.*?\))`", page, flags=re.M))
    missing = [f"{name}{sig}" for name, sig in hook_specs().items() if f"{name}{sig}" not in headings]
    assert missing == [], f"docs/plugins.md needs a section `### \\`HOOK(ARGS)\\`` for: {missing}"


def test_the_page_documents_no_hook_that_does_not_exist():
    page = PLUGIN_PAGE.read_text()
    documented = set(re.findall(r"^### `(register_\w+)\(", page, flags=re.M))
    assert documented <= set(hook_specs())


def test_python_examples_on_the_plugin_page_run():
    blocks = [b for b in python_blocks(PLUGIN_PAGE.read_text()) if "--8<--" not in b]
    assert len(blocks) >= 3
    namespace: dict = {"__name__": "docs_plugins"}
    for block in blocks:
        exec(compile(block, str(PLUGIN_PAGE), "exec"), namespace)  # noqa: S102 - our own docs
    # The examples define hook implementations that match their specifications.
    specs = hook_specs()
    for name in ("register_predictions", "register_datasets"):
        assert inspect.signature(namespace[name]) == specs[name]


def snippet_includes(markdown: str) -> list[str]:
    """The files a page includes with pymdownx.snippets: `--8<-- "spec"` lines and `--8<--` blocks."""
    specs = re.findall(r'^--8<-- "([^"]+)"$', markdown, flags=re.M)
    for block in re.findall(r"^--8<--\n(.*?)^--8<--$", markdown, flags=re.S | re.M):
        specs += [line.strip() for line in block.splitlines() if line.strip()]
    return specs


def test_included_snippets_exist():
    """Every included file exists and holds the section markers a page asks for."""
    specs = {page.name: snippet_includes(page.read_text()) for page in sorted(DOCS.rglob("*.md"))}
    assert len(specs["plugins.md"]) >= 10
    missing = []
    for page, includes in specs.items():
        for spec in includes:
            path, _, section = spec.partition(":")
            file = REPO / path
            if not file.is_file():
                missing.append(f"{page}: {path}")
            elif section and not section.replace(":", "").isdigit():
                text = file.read_text()
                if f"[start:{section}]" not in text or f"[end:{section}]" not in text:
                    missing.append(f"{page}: {spec}")
    assert missing == []


# -- the recipe reference -----------------------------------------------------------------------------


def test_recipe_reference_lists_every_first_party_component_and_field(hook, host, recipes_md):
    first_party = set(hook.first_party_plugins())
    assert first_party >= {"gen_jit", "gen_dit", "gen_flow", "gen_data"}
    missing = []
    for kind in gen.KINDS:
        components = [c for c in host.registries[kind] if c.plugin in first_party]
        assert components, f"no first-party {kind}"
        for c in components:
            heading = f"#### `{c.name}` {{#{kind}-"
            if heading not in recipes_md:
                missing.append(f"{kind} {c.name}")
                continue
            section = recipes_md.split(heading, 1)[1].split("\n#### ", 1)[0]
            for f in gen.fields_of(c.config) if c.config else []:
                if f"| `{f.name}` |" not in section:
                    missing.append(f"{kind} {c.name}: field {f.name}")
    assert missing == []


def test_recipe_reference_lists_every_section_field(recipes_md):
    from gen.objective import ObjectiveConfig
    from gen.sampling import SampleConfig
    from gen.training.config import TrainConfig

    for name, cls in (("objective", ObjectiveConfig), ("sample", SampleConfig), ("train", TrainConfig)):
        section = recipes_md.split(f"### `[{name}]`", 1)[1].split("\n### ", 1)[0]
        for f in attrs.fields(cls):
            assert f"| `{f.name}` |" in section, f"[{name}] {f.name}"


def test_recipe_reference_shows_types_defaults_and_docs(recipes_md):
    row = next(line for line in recipes_md.splitlines() if line.startswith("| `global_batch` |"))
    assert row == "| `global_batch` | `int` | `256` | Images per optimizer step across all processes. |"
    row = next(line for line in recipes_md.splitlines() if line.startswith("| `cfg_interval` |"))
    assert "`tuple[float, float]`" in row and "`[0.0, 1.0]`" in row


def test_recipe_reference_leaves_out_third_party_plugins(hook, recipes_md):
    third_party = [
        c.name
        for kind in gen.KINDS
        for c in gen.get_registry(kind)
        if c.plugin not in hook.first_party_plugins()
    ]
    for name in third_party:
        # A component is listed as a heading and as a linked table row (a config field may share its
        # name: the example's schedule `mode` and wandb's option `mode`).
        assert f"#### `{name}` {{#" not in recipes_md and f"[`{name}`](#" not in recipes_md


def test_toml_values(hook):
    assert [hook.toml_value(v) for v in (None, True, 3, 0.5, "x", (1, 2.0), ())] == [
        "unset",
        "true",
        "3",
        "0.5",
        '"x"',
        "[1, 2.0]",
        "[]",
    ]


# -- the CLI reference --------------------------------------------------------------------------------


def test_cli_reference_lists_every_command_and_option(hook):
    from gen.commands import app

    markdown = hook.cli_markdown(app)
    paths = hook.command_paths(app)
    expected = {
        "gen",
        "gen train",
        "gen sample",
        "gen plugins",
        "gen components",
        "gen recipe show",
        "gen recipe check",
        "gen data pack",
        "gen convert jit",
    }
    assert expected <= set(paths)
    for path in paths:
        assert f"`{path}` {{#" in markdown, f"no section for {path}"
    train = markdown.split("### `gen train`", 1)[1].split("\n### ", 1)[0]
    for option in ("`--run-dir`", "`--resume`", "`recipe`", "`overrides`"):
        assert option in train


def test_cli_reference_escapes_angle_brackets(hook):
    from gen.commands import app

    markdown = hook.cli_markdown(app)
    assert "runs/&lt;recipe name&gt;" in markdown


# -- recipe files -------------------------------------------------------------------------------------


def test_recipe_files_table_lists_every_recipe(hook):
    table = hook.recipe_files_markdown()
    recipes = sorted((REPO / "recipes").rglob("*.toml"))
    assert recipes
    for path in recipes:
        assert f"`{path.relative_to(REPO).as_posix()}`" in table


def test_recipe_files_named_in_the_docs_exist():
    missing = []
    for page in sorted(DOCS.rglob("*.md")):
        for path in sorted(
            set(re.findall(r"\b(?:examples/gen-example-plugin/)?recipes/[\w./-]*\w\.toml", page.read_text()))
        ):
            if not ((REPO / path).is_file() or (EXAMPLE / path).is_file()):
                missing.append(f"{page.relative_to(DOCS)}: {path}")
    assert missing == []


# -- the API reference --------------------------------------------------------------------------------


def test_api_reference_has_a_page_per_module(hook):
    packages = hook.api_modules()
    assert {"gen", "gen_jit", "gen_dit", "gen_flow", "gen_data"} <= set(packages)
    modules = {m for ms in packages.values() for m in ms}
    assert {"gen", "gen.recipe", "gen.training.engine", "gen_jit.model"} <= modules
    assert hook.api_page("gen.recipe") == "# `gen.recipe`\n\n::: gen.recipe\n"


def test_no_sphinx_roles_in_docstrings():
    """MkDocs prints ``:func:`x``` literally: docstrings use Markdown code spans (`x`) instead."""
    role = re.compile(r":(?:py:)?(?:func|class|meth|attr|data|mod|obj|exc|const|ref):`")
    found = [
        f"{path.relative_to(REPO)}:{i}"
        for root in ("core", "plugins", "examples")
        for path in sorted((REPO / root).rglob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if role.search(line)
    ]
    assert found == [], (
        f"Sphinx roles render literally on the MkDocs site; write `name` instead: {found[:10]}"
    )
