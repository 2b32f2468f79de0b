"""The docs stay true to the code: every hook is documented, the generated references cover every
registered component, config field and command, the plugin page's code runs, and the files the pages
include or name exist.

The full site is built by `mkdocs build --strict` (see the Makefile); most tests run the generators of
`docs/hooks/gen_reference.py` directly, which is fast. The tests of the API pages build the site once
(`built_site`, about 15 s) and read its HTML: what mkdocstrings renders is what they check.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import inspect
import os
import posixpath
import re
import subprocess
import sys
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
    from gen.sampling.config import SampleConfig
    from gen.train_config import TrainConfig

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


# -- the built API pages ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    """The site, built by `mkdocs build --strict` in a subprocess (the hook replaces the plugin host).

    Strict: a cross-reference that does not resolve, or any other warning, fails the build.
    ``GEN_BUILT_SITE`` names a site just built the same way instead (`make test` sets it to the one its
    ``docs`` step built strictly a moment before, saving a second build of half a minute).
    """
    pytest.importorskip("mkdocs")
    given = os.environ.get("GEN_BUILT_SITE")
    if given and (Path(given) / "index.html").is_file():
        return Path(given)
    site = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    problems = [line for line in done.stderr.splitlines() if not line.startswith("INFO")]
    assert done.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(problems[-30:])
    return site


def _text(fragment: str) -> str:
    """The text of an HTML fragment, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def _object_section(page: str, identifier: str) -> str:
    """The heading and docstring of one object on an API page: up to the next object's heading."""
    start = page.index(f'id="{identifier}"')
    end_of_heading = page.index("</h", start)
    following = page.find('class="doc doc-heading"', end_of_heading)
    return page[start : following if following != -1 else len(page)]


def _config_classes() -> dict[str, type]:
    """Every config class of core/ and plugins/ by its path: an attrs class with a `gen.field`."""
    spec = importlib.util.spec_from_file_location(
        "gen_reference_modules", DOCS / "hooks" / "gen_reference.py"
    )
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    found = {}
    for modules in hook.api_modules().values():
        for name in modules:
            module = importlib.import_module(name)
            for attr, obj in vars(module).items():
                if (
                    isinstance(obj, type)
                    and obj.__module__ == name
                    and not attr.startswith("_")
                    and attrs.has(obj)
                    and any("doc" in f.metadata for f in attrs.fields(obj))
                ):
                    found[f"{name}.{attr}"] = obj
    return found


def test_every_config_class_lists_every_field_on_its_api_page(built_site):
    """Name, type, default and doc of every field, as its `gen.field` declares them (one source)."""
    classes = _config_classes()
    assert {
        "gen.train_config.TrainConfig",
        "gen.sampling.config.SampleConfig",
        "gen.objective.ObjectiveConfig",
        "gen.recipe.Recipe",
        "gen_jit.config.JiTConfig",
        "gen_data.shards.WebDatasetConfig",
    } <= set(classes)
    row = re.compile(
        r"<tr>\s*<td><code>(\w+)</code></td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", re.S
    )
    problems = []
    for path, cls in classes.items():
        module = cls.__module__
        page = (built_site / "reference" / "api" / module / "index.html").read_text()
        rows = {name: cells for name, *cells in row.findall(_object_section(page, path))}
        for field in gen.fields_of(cls):
            if field.name not in rows:
                problems.append(f"{path}: no row for {field.name}")
                continue
            type_text, default_text, doc_text = (_text(cell) for cell in rows[field.name])
            if not type_text:
                problems.append(f"{path}.{field.name}: no type")
            declared = " ".join(field.doc.replace("`", "").split())  # code spans render as <code>
            if not declared or not doc_text.startswith(declared):
                problems.append(f"{path}.{field.name}: doc {doc_text!r}, declared {field.doc!r}")
            if not isinstance(field.default, attrs.Factory) and default_text != repr(field.default):  # type: ignore[arg-type]
                problems.append(f"{path}.{field.name}: default {default_text!r}, declared {field.default!r}")
        extra = set(rows) - {f.name for f in gen.fields_of(cls)}
        if extra:
            problems.append(f"{path}: rows for fields it does not have: {sorted(extra)}")
    assert problems == []


def test_the_train_section_shows_types_and_defaults(built_site):
    page = (built_site / "reference" / "api" / "gen.train_config" / "index.html").read_text()
    section = _text(_object_section(page, "gen.train_config.TrainConfig"))
    assert "global_batch int 256 Images per optimizer step across all processes." in section
    assert "init_from str | None None Start from the weights of this run directory" in section


def test_api_pages_cross_reference_other_api_objects(built_site):
    """Docstrings name public objects as links (mkdocs-autorefs) that land on the object's entry."""
    api = built_site / "reference" / "api"
    link = re.compile(r'<a class="autorefs autorefs-internal"[^>]*href="([^"]*)"')
    checked, pages_read = 0, {}
    for page_path in sorted(api.rglob("index.html")):
        page = page_path.read_text()
        for href in link.findall(page):
            url, _, anchor = html.unescape(href).partition("#")
            assert anchor, f"{page_path}: a cross-reference without an anchor: {href}"
            rel_dir = page_path.parent.relative_to(built_site).as_posix()
            target = (
                built_site / posixpath.normpath(posixpath.join(rel_dir, url)) / "index.html"
                if url
                else page_path
            )
            if target not in pages_read:
                pages_read[target] = target.read_text()
            assert f'id="{anchor}"' in pages_read[target], f"{page_path}: {href} lands nowhere"
            checked += 1
    assert checked > 100
    # A docstring reference (`[gen.build][]` in gen.RecipeError's docstring) is a link to gen.build's
    # entry; a signature's annotation (ModelSampler's `recipe: Recipe`) links to the Recipe class.
    public = (api / "gen" / "index.html").read_text()
    assert re.search(
        r'<a class="autorefs autorefs-internal"[^>]*href="#gen\.build"',
        _object_section(public, "gen.RecipeError"),
    )
    sampler = (api / "gen.sampling.model" / "index.html").read_text()
    assert 'href="../gen.recipe/#gen.recipe.Recipe"' in _object_section(
        sampler, "gen.sampling.model.ModelSampler"
    )


# -- code blocks fit the page -------------------------------------------------------------------------

# The columns a code block shows without scrolling sideways in a 1280 px window, as
# docs/stylesheets/extra.css lays the page out (Material for MkDocs 9: 1 rem = 20 px below a 2000 px
# window; checked in Chromium at 1280 px with DejaVu Sans Mono: lines of 90 columns fit, one of 92
# scrolls, 739 px in a 733 px box):
#   1280 px - 15 px of a classic vertical scrollbar                      = 1265 px of layout
#   .md-grid max-width 72rem (1440 px) does not bind                     = 1265 px
#   - 2 sidebars of 12.1rem (242 px), both shown from 1220 px on         =  781 px
#   - the article's margins, 1.2rem each side                            =  733 px
#   code at 0.8em of .md-typeset's 0.8rem = 12.8 px; pre padding 1.1765em each side (15 px)
#                                                                        =  703 px of text
#   a monospace column is 0.6em (Roboto Mono; DejaVu Sans Mono and Menlo 0.602em) = 7.7 px
#   703 / 7.7 = 91 columns; 90 leaves a column for a wider fallback font.
# Python blocks are formatted to 88 columns (docs/ruff.toml). Program output (`text`) and the output in
# `console` sessions wrap instead (extra.css), as a terminal wraps them; commands in a session must fit.
CODE_COLUMNS = 90
CODE_CSS = {
    ".md-grid": "max-width: 72rem",
    ".md-typeset pre > code": "font-size: 0.8em",
}
WRAPPED_LANGUAGES = ("text", "console")
NOT_CHECKED: set[str] = set()  # pages exempt from the budget: none
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
# pymdownx.snippets notation (mkdocs.yml: `base_path: [.]`, so a path is relative to the repo root):
# `--8<-- "spec"` on its own line, or a `--8<--` block of specs, one a line; a spec is a path with an
# optional `:section` (the lines between `--8<-- [start:section]` and `--8<-- [end:section]`) or line
# ranges (`:3:8`, `:3:8,12:`). Section markers never show on the page.
_SNIPPET_INLINE = re.compile(r"""^(?P<space>[ \t]*)-+8<-+[ \t]+(?P<quote>["'])(?P<spec>.+?)(?P=quote)$""")
_SNIPPET_BLOCK = re.compile(r"^[ \t]*-+8<-+$")
_SNIPPET_SECTION = re.compile(
    r"-+8<-+[ \t]+\[[ \t]*(?P<type>start|end)[ \t]*:[ \t]*(?P<name>[a-z][-_0-9a-z]*)[ \t]*\]", re.I
)
_SNIPPET_SPEC = re.compile(
    r"(?i)^(?P<path>.*?)"
    r"(?::(?P<section>[a-z][-_0-9a-z]*)|(?P<lines>(?::-?\d*){1,2}(?:,-?\d*(?::-?\d*)?)*))?$"
)


def fenced_blocks(markdown: str) -> list[tuple[str, list[tuple[int, str]]]]:
    """The fenced code blocks of a page: (language, [(line number, line)]), the fence's indent removed."""
    lines, out, i = markdown.splitlines(), [], 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        i += 1
        if not opening:
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = opening["info"].strip().strip("{}").strip().lstrip(".").split(" ")[0]
        body = []
        while i < len(lines):
            closing = _FENCE.match(lines[i])
            if (
                closing
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            line = lines[i]
            body.append((i + 1, line[len(indent) :] if line.startswith(indent) else line.lstrip()))
            i += 1
        i += 1
        out.append((language, body))
    return out


def lines_to_fit(language: str, body: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The lines of a block that must fit: all, but in a wrapped block only a session's commands."""
    if language not in WRAPPED_LANGUAGES:
        return body
    if language == "text":
        return []
    commands, continued = [], False
    for number, line in body:
        if line.startswith("$ ") or continued:
            commands.append((number, line))
            continued = line.rstrip().endswith("\\")
    return commands


def expand_snippets(text: str, name: str) -> list[tuple[str, str]]:
    """A page's lines with the files it includes (pymdownx.snippets) expanded in place, each line with
    its origin, `file:line`: a line the page shows can be traced to the file that holds it."""
    return _expand(list(enumerate(text.split("\n"), 1)), name, in_section=False, seen=())


def _expand(
    lines: list[tuple[int, str]], name: str, in_section: bool, seen: tuple[str, ...]
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    block = False
    for number, line in lines:
        inline = _SNIPPET_INLINE.match(line)
        if _SNIPPET_BLOCK.match(line):
            block = not block
        elif block:
            spec = line.strip()
            if inline:  # pymdownx ignores an inline snippet inside a block
                continue
            if not spec:
                out.append((f"{name}:{number}", ""))
            elif not spec.startswith(";"):
                space = line[: len(line) - len(line.lstrip())].expandtabs(4)
                out += [(origin, space + text) for origin, text in _included(spec, seen)]
        elif inline:
            space = inline["space"].expandtabs(4)
            out += [(origin, space + text) for origin, text in _included(inline["spec"], seen)]
        elif in_section or not _SNIPPET_SECTION.search(line):
            out.append((f"{name}:{number}", line))
    return out


def _included(spec: str, seen: tuple[str, ...]) -> list[tuple[str, str]]:
    """The lines one snippet spec includes, as pymdownx.snippets selects them: a section without its
    markers, or line ranges, or the whole file less its section markers; nested snippets expanded."""
    m = _SNIPPET_SPEC.match(spec.strip())
    path = m["path"].strip()
    file = REPO / path
    assert file.is_file(), f"included file {path} does not exist"
    if path in seen:  # pymdownx skips a file that includes itself
        return []
    text = file.read_text()
    lines = list(enumerate(text.split("\n") if text else [], 1))
    if m["section"]:
        selected, found = [], False
        for number, line in lines:
            marker = _SNIPPET_SECTION.search(line)
            if marker and marker["name"] == m["section"]:
                if marker["type"] == "end":
                    break
                found = True
            elif found and not marker:
                selected.append((number, line))
        assert found, f"no section {m['section']} in {path}"
        lines = selected
    elif m["lines"]:
        total, selected = len(lines), []
        for span in m["lines"][1:].split(","):
            first, _, last = span.partition(":")
            start = int(first) if first else None
            start = start if start is None or start < 0 else max(0, start - 1)
            end = int(last) if last else None
            start = min(max(total + start, 0), total) if start and start < 0 else start
            end = min(max(total + 1 + end, 0), total) if end and end < 0 else end
            selected += lines[start:end]
        lines = selected
    return _expand(lines, path, in_section=bool(m["section"]), seen=(*seen, path))


def test_snippets_are_expanded_as_pymdownx_expands_them():
    """expand_snippets gives what MkDocs shows: the text of pymdownx.snippets' own expansion."""
    markdown = pytest.importorskip("markdown")
    pytest.importorskip("pymdownx.snippets")
    config = (REPO / "mkdocs.yml").read_text()
    assert re.search(r"pymdownx\.snippets:\n\s+base_path: \[\.\]\n", config)
    pages = {
        page.relative_to(REPO).as_posix(): page.read_text()
        for page in [*sorted(DOCS.rglob("*.md")), REPO / "README.md"]
    }
    pages["page.md"] = _SNIPPET_PAGE
    including = set()
    for name, text in pages.items():
        md = markdown.Markdown(
            extensions=["pymdownx.snippets"],
            extension_configs={"pymdownx.snippets": {"base_path": [str(REPO)], "check_paths": True}},
        )
        ours = expand_snippets(text, name)
        assert [line for _, line in ours] == md.preprocessors["snippet"].run(text.split("\n")), name
        if any(not origin.startswith(f"{name}:") for origin, _ in ours):
            including.add(name)
    assert {"docs/plugins.md", "page.md"} <= including


_SOLVERS = "examples/gen-example-plugin/src/gen_example/solvers.py"
_RECIPE = "examples/gen-example-plugin/recipes/example.toml"
# A section through an inline snippet, and a line range through an indented block of snippets.
_SNIPPET_PAGE = f'```python\n--8<-- "{_SOLVERS}:midpoint"\n```\n  --8<--\n  {_RECIPE}:2:3\n  --8<--\n'


def test_snippets_are_expanded_with_their_origins():
    """Each line of an included file keeps its file and line number; section markers are dropped."""
    solvers, recipe = _SOLVERS, _RECIPE
    expanded = expand_snippets(_SNIPPET_PAGE, "page.md")
    lines = (REPO / solvers).read_text().split("\n")
    start = lines.index("# --8<-- [start:midpoint]") + 1
    end = lines.index("# --8<-- [end:midpoint]") + 1
    midpoint = [(f"{solvers}:{n}", lines[n - 1]) for n in range(start + 1, end)]
    toml = (REPO / recipe).read_text().split("\n")
    assert expanded == [
        ("page.md:1", "```python"),
        *midpoint,
        ("page.md:3", "```"),
        (f"{recipe}:2", "  " + toml[1]),
        (f"{recipe}:3", "  " + toml[2]),
        ("page.md:7", ""),
    ]
    assert midpoint[0][1].startswith("def midpoint(")


def test_fenced_blocks_are_found():
    blocks = fenced_blocks("text\n\n```console\n$ a \\\n    b\noutput\n```\n\n  ~~~python\n  x = 1\n  ~~~\n")
    assert blocks == [("console", [(4, "$ a \\"), (5, "    b"), (6, "output")]), ("python", [(10, "x = 1")])]
    assert lines_to_fit(*blocks[0]) == [(4, "$ a \\"), (5, "    b")]


def test_code_blocks_fit_a_1280_px_window():
    css = re.sub(r"\s+", " ", (DOCS / "stylesheets" / "extra.css").read_text())
    for selector, rule in CODE_CSS.items():
        assert re.search(re.escape(selector) + r" \{[^}]*" + re.escape(rule), css), (selector, rule)
    for language in WRAPPED_LANGUAGES:
        assert f".language-{language} pre > code" in css
    config = (REPO / "mkdocs.yml").read_text()
    assert "stylesheets/extra.css" in config and "pygments_lang_class: true" in config
    pages = [*sorted(DOCS.rglob("*.md")), REPO / "README.md"]
    too_long = []
    for page in pages:
        name = page.relative_to(REPO).as_posix()
        if name in NOT_CHECKED:
            continue
        # The page as MkDocs renders it: with the files it includes (their lines are checked where a
        # page includes them, and reported at their own file and line).
        expanded = expand_snippets(page.read_text(), name)
        for language, body in fenced_blocks("\n".join(line for _, line in expanded)):
            for number, line in lines_to_fit(language, body):
                if len(line) > CODE_COLUMNS:
                    origin = expanded[number - 1][0]
                    where = origin if origin.startswith(f"{name}:") else f"{origin} (in {name})"
                    too_long.append(f"{where}: {len(line)} columns")
    assert too_long == [], f"code lines over {CODE_COLUMNS} columns scroll sideways at 1280 px"
