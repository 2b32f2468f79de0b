"""MkDocs hook: the reference pages, generated from the code at every build.

- ``reference/recipes.md``: every recipe section and every registered component with every config field
  (type, default, doc), read from the attrs config classes through the registries.
- ``reference/cli.md``: every ``gen`` command with its usage, help and options, read from the click
  command tree of the Typer app (``typer.main.get_command``).
- ``reference/api/*.md``: one mkdocstrings page per module of ``core/gen`` and ``plugins/*``, and the
  matching entries of the navigation (the ``API reference`` item of ``mkdocs.yml``).
- On those pages, every config class (an attrs class built with ``gen.field``) carries the table of its
  fields: name, type, default and doc, read from the ``gen.field`` declarations by ``gen.fields_of``
  (``config_fields_markdown``), which the griffe extension ``ConfigFieldTables`` (enabled in
  ``mkdocs.yml``) appends to the class's docstring.
- The marker ``<!-- gen:recipe-files -->`` in a page becomes the table of recipe files under
  ``recipes/`` with the comment that heads each file.

The references document the plugins shipped with ``gen`` (the entry points of the ``gen`` distribution),
so that a third-party plugin installed in the environment does not leak into the site.
Nothing is written to disk: the pages are handed to MkDocs as generated files.
"""

from __future__ import annotations

import inspect
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

try:  # the docs extra; the generators below work without it (the docs tests import this file)
    from griffe import Docstring as _Docstring
    from griffe import Extension as _GriffeExtension
except ImportError:  # pragma: no cover - a dev environment without the docs extra
    _Docstring, _GriffeExtension = None, object

REPO = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = (REPO / "core", REPO / "plugins")
RECIPES_DIR = REPO / "recipes"
API_NAV_TITLE = "API reference"
API_INDEX = "reference/api/index.md"
RECIPE_FILES_MARKER = "<!-- gen:recipe-files -->"

# The recipe sections that are not a component selection, in the order a recipe usually has them.
SECTIONS = ("objective", "sample", "train")


# -- plugins ------------------------------------------------------------------------------------------


def first_party_plugins() -> list[str]:
    """Names of the plugins the ``gen`` distribution declares (its ``gen`` entry points)."""
    dist = metadata.distribution("gen")
    return sorted(ep.name for ep in dist.entry_points if ep.group == "gen")


def _check_errors(host: Any) -> None:
    first_party = set(first_party_plugins())
    problems = [f"{e.plugin}: {e.error}" for e in host.errors if e.plugin in first_party]
    if problems:
        raise RuntimeError(
            f"a first-party plugin failed, the reference would be incomplete: {'; '.join(problems)}"
        )


def first_party_host():  # noqa: ANN201 - gen.plugins.PluginHost, imported lazily
    """A plugin host that loaded only the first-party plugins (whatever else is installed)."""
    from gen.plugins import PluginHost

    dist = metadata.distribution("gen")
    host = PluginHost(load_entry_points=False)
    for ep in sorted(dist.entry_points, key=lambda e: e.name):
        if ep.group == "gen":
            host.register(ep.load(), name=ep.name, version=dist.version)
    host.registries  # noqa: B018 - calls every register_<kind> hook, so that their failures show
    _check_errors(host)
    return host


def first_party_app():  # noqa: ANN201 - typer.Typer
    """The ``gen`` Typer app with the commands of the first-party plugins.

    ``gen.commands`` adds plugin commands when it is first imported, from the process-wide plugin host; in a
    fresh process (the MkDocs build) that host is replaced first by one holding only first-party plugins.
    """
    import sys

    from gen.plugins import get_host, reset_host

    if "gen.commands" not in sys.modules:
        reset_host(first_party_host())
    from gen.commands import app

    _check_errors(get_host())
    return app


# -- markdown helpers ---------------------------------------------------------------------------------


def _escape(text: str, *, pipes: bool = False) -> str:
    """Prose for markdown: ``<`` and ``>`` (and ``|`` in a table) escaped outside code spans."""
    parts = str(text).split("`")
    for i in range(0, len(parts), 2):  # even parts are outside code spans
        part = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts[i] = part.replace("|", "\\|") if pipes else part
    return "`".join(parts)


def _cell(text: str) -> str:
    """Text for a markdown table cell: one line, escaped."""
    return _escape(" ".join(str(text).split()), pipes=True)


def _code(text: str) -> str:
    text = str(text)
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def toml_value(value: Any) -> str:
    """A default value as a recipe author writes it in TOML (``None`` is "unset": TOML has no null)."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def toml_type(tp: Any) -> str:
    """A field type as a recipe author reads it: ``gen.type_name``, with Literal values in TOML quotes."""
    import types
    import typing

    from gen import type_name

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return " | ".join(toml_value(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(toml_type(a) for a in args)
    return type_name(tp)


def _default_text(field: attrs.Attribute) -> str:
    default = field.default
    if default is attrs.NOTHING:
        return "required"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        if default.takes_self:
            return "computed"
        return _code(toml_value(default.factory()))
    return _code(toml_value(default))


def _first_paragraph(doc: str | None) -> str:
    doc = inspect.cleandoc(doc or "")
    return doc.split("\n\n")[0].replace("\n", " ").strip()


def _fields_table(cls: type, *, section: str) -> list[str]:
    """The table of a config class's fields: key, type, default, doc (component selectors linked)."""
    attrs.resolve_types(cls)
    rows = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for f in attrs.fields(cls):
        if not f.init:
            continue
        doc = f.metadata.get("doc", "")
        kind = f.metadata.get("component")
        kinds = f.metadata.get("components")
        if kind is not None:
            type_text = f"[{kind}](#{kind}) name or table"
            doc = f'{doc} Select it by name (`{f.name} = "..."`) or as a table `[{section}.{f.name}]` with `name` and its options.'
        elif kinds is not None:
            type_text = f"list of [{kinds}](#{kinds}) names or tables"
            doc = f'{doc} Each item is a name (`"..."`) or a table with `name` and its options (`[[{section}.{f.name}]]`).'
        elif isinstance(f.type, type) and attrs.has(f.type):
            type_text = f"table ([`[{section}.{f.name}]`](#section-{section}-{f.name}))"
        else:
            type_text = _code(toml_type(f.type))
        rows.append(f"| `{f.name}` | {type_text} | {_default_text(f)} | {_cell(doc)} |")
    if len(rows) == 2:
        return ["This component has no options: its table holds only `name`."]
    return rows


# -- the recipe reference -----------------------------------------------------------------------------


def recipes_markdown(host: Any = None) -> str:
    """The recipe reference: the sections of a recipe and every registered component's options.

    Args:
        host: A ``gen.plugins.PluginHost`` (default: one with only the first-party plugins).
    """
    from gen.recipe import Recipe

    host = host if host is not None else first_party_host()
    registries = host.registries
    recipe_fields = {f.name: f for f in attrs.fields(Recipe)}
    out = [
        "# Recipe reference",
        "",
        '!!! info "Generated"',
        "    This page is generated from the config classes at every build of the docs "
        "(`docs/hooks/gen_reference.py`); `gen components` prints the same in a terminal, including "
        "the components of any third-party plugin you installed.",
        "",
        "A recipe is a TOML file with the sections below. `[backbone]` and `[data]` are required and "
        "select a registered component by `name`; every other key of such a section goes to that "
        "component's options. `[objective]`, `[sample]` and `[train]` are optional: every key has a "
        "default. A value of *unset* means the key is absent (TOML has no null). Lists are written as "
        "TOML arrays.",
        "",
        "```toml",
        "# optional: inherit another recipe (its path is relative to this file)",
        'extends = "base.toml"',
        "",
        "[backbone]",
        'name = "jit"                   # a registered backbone; other keys are its options',
        "",
        "[data]",
        'name = "shapes"                # a registered dataset',
        "",
        "[objective]                    # optional",
        "[sample]                       # optional",
        "[train]                        # optional, but set steps or epochs",
        "```",
        "",
        "Any key can be overridden on the command line: `gen train RECIPE train.steps=100 "
        'backbone.preset="L/16"`.',
        "",
        "## Sections",
        "",
        "| section | what it holds |",
        "| --- | --- |",
        f"| [`[backbone]`](#backbone) | {_cell(recipe_fields['backbone'].metadata['doc'])} `name` selects a [backbone](#backbone). |",
        f"| [`[data]`](#dataset) | {_cell(recipe_fields['data'].metadata['doc'])} `name` selects a [dataset](#dataset). |",
    ]
    for name in SECTIONS:
        out.append(f"| [`[{name}]`](#section-{name}) | {_cell(recipe_fields[name].metadata['doc'])} |")
    out.append("")
    for name in SECTIONS:
        cls = recipe_fields[name].type
        if isinstance(cls, str):
            attrs.resolve_types(Recipe)
            cls = {f.name: f for f in attrs.fields(Recipe)}[name].type
        out += _section_markdown(cls, name)
    out += ["## Components", ""]
    out.append(
        "Each kind of component has a registry that plugins fill. The section that selects a component "
        "sets `name`; its other keys are the component's options listed here."
    )
    out.append("")
    where = {
        "backbone": "`[backbone]`",
        "prediction": "`objective.prediction`",
        "schedule": "`[objective.schedule]`",
        "sampler": "`[sample.sampler]`",
        "dataset": "`[data]`",
        "logger": "`train.loggers`",
        "loss_term": "`[[loss_terms]]`",
    }
    for kind, registry in registries.items():
        out += [f"### {kind} {{#{kind}}}", ""]
        if kind in where:
            out += [f"Selected by {where[kind]}.", ""]
        out += ["| name | plugin | description |", "| --- | --- | --- |"]
        for c in registry:
            out.append(f"| [`{c.name}`](#{kind}-{_anchor(c.name)}) | `{c.plugin}` | {_cell(c.description)} |")
        out.append("")
        for c in registry:
            out += [f"#### `{c.name}` {{#{kind}-{_anchor(c.name)}}}", ""]
            out += [f"{_escape(c.description)} *Plugin `{c.plugin}`.*".strip(), ""]
            if c.config is None:
                out += ["No options: select it with its name alone.", ""]
            else:
                out += _fields_table(c.config, section=where.get(kind, kind).strip("`[]"))
                out.append("")
    return "\n".join(out).rstrip() + "\n"


def _anchor(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower())


def _section_markdown(cls: type, name: str, prefix: str = "") -> list[str]:
    section = f"{prefix}{name}"
    out = [f"### `[{section}]` {{#section-{section.replace('.', '-')}}}", ""]
    doc = _first_paragraph(cls.__doc__)
    if doc:
        out += [doc, ""]
    out += _fields_table(cls, section=section)
    out.append("")
    attrs.resolve_types(cls)
    for f in attrs.fields(cls):
        if isinstance(f.type, type) and attrs.has(f.type) and f.metadata.get("component") is None:
            out += _section_markdown(f.type, f.name, prefix=f"{section}.")
    return out


# -- the CLI reference --------------------------------------------------------------------------------


def _context(command: Any, name: str, parent: Any) -> Any:
    # Typer may vendor click, so the context class is taken from the command, not from `click`.
    return command.context_class(command, info_name=name, parent=parent)


def _is_group(command: Any) -> bool:
    return hasattr(command, "list_commands") and hasattr(command, "get_command")


def _param_type(param: Any) -> str:
    if getattr(param, "is_flag", False):
        return "bool"
    bare = getattr(param, "bare_type", None)  # Typer's parameters
    if callable(bare):
        return str(bare())
    kind = getattr(param, "type", None)
    return getattr(kind, "name", str(kind))


def _param_rows(command: Any, ctx: Any) -> list[str]:
    rows = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            name = _code(param.metavar or param.name)
            kind = "argument"
        else:
            name = ", ".join(_code(o) for o in (*param.opts, *param.secondary_opts))
            kind = "flag" if getattr(param, "is_flag", False) else "option"
        if param.nargs == -1 or getattr(param, "multiple", False):
            kind += ", repeatable"
        if param.required:
            default = "required"
        elif param.default is None or callable(param.default) or param.default in ((), []):
            default = ""
        else:
            default = _code(param.default)
        help_text = getattr(param, "help", None) or ""
        rows.append(f"| {name} | {kind} | `{_param_type(param)}` | {default} | {_cell(help_text)} |")
    return rows


def cli_markdown(app: Any = None) -> str:
    """The CLI reference: every command of the click tree of the ``gen`` Typer app."""
    import typer

    app = app if app is not None else first_party_app()
    root = typer.main.get_command(app)
    out = [
        "# CLI reference",
        "",
        '!!! info "Generated"',
        "    This page is generated from the `gen` command tree at every build of the docs "
        "(`docs/hooks/gen_reference.py`). `gen COMMAND --help` prints the same in a terminal. Plugins "
        "add commands through the `register_commands` hook; those of the first-party plugins are "
        "listed here.",
        "",
        "Every user error is printed as one line `error: ...` on stderr with exit code 2; "
        "`gen --debug COMMAND ...` (or `GEN_DEBUG=1`) shows the traceback instead.",
        "",
    ]

    def walk(command: Any, path: list[str], parent: Any) -> None:
        ctx = _context(command, path[-1], parent)
        full = " ".join(path)
        level = "#" * min(len(path) + 1, 4)
        out.extend([f"{level} `{full}` {{#{_anchor(full)}}}", ""])
        pieces = " ".join(command.collect_usage_pieces(ctx))
        out.extend(["```text", f"{full} {pieces}".rstrip(), "```", ""])
        help_text = inspect.cleandoc(command.help or "").replace("\b\n", "")
        if help_text:
            out.extend([_escape(help_text), ""])
        rows = _param_rows(command, ctx)
        if rows:
            out.extend(
                ["| parameter | kind | type | default | description |", "| --- | --- | --- | --- | --- |"]
            )
            out.extend(rows)
            out.append("")
        if _is_group(command):
            names = command.list_commands(ctx)
            subs = [(n, command.get_command(ctx, n)) for n in names]
            subs = [(n, c) for n, c in subs if c is not None and not c.hidden]
            if subs:
                out.extend(["| command | what it does |", "| --- | --- |"])
                for n, c in subs:
                    sub_path = f"{full} {n}"
                    out.append(
                        f"| [`{sub_path}`](#{_anchor(sub_path)}) | {_cell(c.get_short_help_str(200))} |"
                    )
                out.append("")
            for _, c in subs:
                walk(c, [*path, c.name or ""], ctx)

    walk(root, ["gen"], None)
    return "\n".join(out).rstrip() + "\n"


def command_paths(app: Any) -> list[str]:
    """Every command of the app as ``gen a b`` (for tests)."""
    import typer

    root = typer.main.get_command(app)
    paths = []

    def walk(command: Any, path: list[str], parent: Any) -> None:
        ctx = _context(command, path[-1], parent)
        paths.append(" ".join(path))
        if _is_group(command):
            for n in command.list_commands(ctx):
                c = command.get_command(ctx, n)
                if c is not None and not c.hidden:
                    walk(c, [*path, n], ctx)

    walk(root, ["gen"], None)
    return paths


# -- the recipe files ---------------------------------------------------------------------------------


def recipe_files_markdown(root: Path = RECIPES_DIR) -> str:
    """A table of the recipe files with the comment lines that head each one."""
    files = sorted(root.rglob("*.toml")) if root.is_dir() else []
    if not files:
        return "*No recipe files were found under `recipes/`.*\n"
    rows = ["| recipe | what it is |", "| --- | --- |"]
    for path in files:
        header = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            text = line.lstrip("#").strip()
            if not text:  # the first paragraph of the heading comment is enough
                break
            header.append(text)
        text = " ".join(h for h in header if h)
        rel = path.relative_to(root.parent).as_posix()
        # The first comment line often repeats the file name: drop it.
        for lead in (f"{rel} —", f"{rel} -", f"{rel}:", rel):
            if text.startswith(lead):
                text = text[len(lead) :].strip()
                break
        rows.append(f"| `{rel}` | {_cell(text)} |")
    return "\n".join(rows) + "\n"


# -- the API reference --------------------------------------------------------------------------------


def api_modules() -> dict[str, list[str]]:
    """Package -> its modules (dotted names), for every package under core/ and plugins/."""
    packages: dict[str, list[str]] = {}
    for root in SOURCE_ROOTS:
        for init in sorted(root.glob("*/__init__.py")):
            package = init.parent
            modules = []
            for path in sorted(package.rglob("*.py")):
                rel = path.relative_to(root).with_suffix("")
                parts = list(rel.parts)
                if parts[-1] == "__main__":
                    continue
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                modules.append(".".join(parts))
            packages[package.name] = sorted(modules, key=lambda m: (m != package.name, m))
    return packages


def is_config_class(obj: Any) -> bool:
    """Whether ``obj`` is a config class: an attrs class with a field declared by ``gen.field``."""
    return isinstance(obj, type) and attrs.has(obj) and any("doc" in f.metadata for f in attrs.fields(obj))


def _object_ref(tp: type) -> str:
    """A cross-reference (mkdocs-autorefs) to a class of the API pages."""
    return f"[`{tp.__name__}`][{tp.__module__}.{tp.__qualname__}]"


def _python_type(field: Any, metadata: Any) -> str:
    kind, kinds = metadata.get("component"), metadata.get("components")
    if kind is not None:
        return f"[`{kind}`][{kind}] name or [`ComponentSpec`][gen.ComponentSpec]"
    if kinds is not None:
        return f"`tuple` of [`{kinds}`][{kinds}] names or [`ComponentSpec`][gen.ComponentSpec]s"
    if isinstance(field.type, type) and attrs.has(field.type):
        return _object_ref(field.type)
    from gen import type_name

    return _code(type_name(field.type))


def _python_default(default: Any) -> str:
    if default is attrs.NOTHING:
        return "required"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        if default.takes_self:
            return "computed"
        if isinstance(default.factory, type) and attrs.has(default.factory):
            return _code(f"{default.factory.__name__}()")
        return _code(repr(default.factory()))
    return _code(repr(default))


def config_fields_markdown(cls: type) -> str:
    """The table of a config class's fields for its API entry: name, type, default and doc.

    One source of truth: the ``gen.field`` declarations, read through ``gen.fields_of``.
    """
    from gen import fields_of

    declared = attrs.fields_dict(cls)
    rows = [
        "**Fields.** Each is a keyword argument of the class and a key of its table in a recipe "
        "(declared with [`gen.field`][gen.field]; the [recipe reference][recipe-reference] gives the "
        "same in TOML terms).",
        "",
        "| field | type | default | description |",
        "| --- | --- | --- | --- |",
    ]
    for info in fields_of(cls):
        metadata = declared[info.name].metadata
        doc = info.doc
        if not metadata.get("recipe", True):
            doc = f"{doc} Not a recipe key.".strip()
        type_text = _python_type(info, metadata)
        rows.append(f"| `{info.name}` | {type_text} | {_python_default(info.default)} | {_cell(doc)} |")
    return "\n".join(rows) + "\n"


class ConfigFieldTables(_GriffeExtension):  # type: ignore[misc,valid-type]
    """Griffe extension: appends ``config_fields_markdown`` to the docstring of every config class.

    Griffe reads the source statically and sees an attrs field only as an assignment; the class is
    imported to read its declared fields.
    """

    def on_class(self, *, cls: Any, **kwargs: Any) -> None:  # noqa: ARG002 - griffe's hook signature
        import importlib

        module = importlib.import_module(cls.module.path)
        obj: Any = module
        for part in cls.path[len(cls.module.path) + 1 :].split("."):
            obj = getattr(obj, part, None)
        if not is_config_class(obj) or getattr(cls, "_gen_fields_table", False):
            return
        table = config_fields_markdown(obj)
        if cls.docstring is None:
            cls.docstring = _Docstring(table, parent=cls)
        else:
            cls.docstring.value = f"{cls.docstring.value}\n\n{table}"
        cls._gen_fields_table = True


def module_path(module: str) -> Path:
    """The source file of a module or package of ``api_modules``."""
    for root in SOURCE_ROOTS:
        base = root.joinpath(*module.split("."))
        for path in (base / "__init__.py", base.with_suffix(".py")):
            if path.is_file():
                return path
    raise FileNotFoundError(f"no source file for {module}")


def module_summary(module: str) -> str:
    """The first line of a module's docstring, read without importing it."""
    import ast

    doc = ast.get_docstring(ast.parse(module_path(module).read_text(encoding="utf-8"))) or ""
    return _first_paragraph(doc).split(". ")[0].rstrip(".")


def api_page(module: str, submodules: list[str] | tuple[str, ...] = ()) -> str:
    """A module's API page; a package's page ends with the table of its modules, linked."""
    page = f"# `{module}`\n\n::: {module}\n"
    if submodules:
        rows = ["## Modules", "", "| module | what it holds |", "| --- | --- |"]
        rows += [f"| [`{m}`]({m}.md) | {_cell(module_summary(m))} |" for m in submodules]
        page += "\n" + "\n".join(rows) + "\n"
    return page


def submodules_of(package: str, modules: list[str]) -> list[str]:
    """The modules and packages directly below ``package``."""
    depth = package.count(".") + 1
    return [m for m in modules if m.startswith(f"{package}.") and m.count(".") == depth]


def api_index(packages: dict[str, list[str]]) -> str:
    out = [
        "# API reference",
        "",
        "Generated from the docstrings of every module (mkdocstrings). A plugin may use only what "
        "[`gen`](gen.md) exports (`gen.__all__`); the other modules are documented for contributors.",
        "",
    ]
    for package, modules in packages.items():
        out.append(f"## `{package}`")
        out.append("")
        for m in modules:
            out.append(f"- [`{m}`]({m}.md)")
        out.append("")
    return "\n".join(out)


def _api_nav(packages: dict[str, list[str]]) -> list[Any]:
    nav: list[Any] = [{"Overview": API_INDEX}]
    for package, modules in packages.items():
        nav.append({package: [{m: f"reference/api/{m}.md"} for m in modules]})
    return nav


# -- MkDocs events ------------------------------------------------------------------------------------


def _replace_api_nav(items: Any, api_nav: list[Any]) -> bool:
    if not isinstance(items, list):
        return False
    for item in items:
        if isinstance(item, dict):
            for key, value in item.items():
                if key == API_NAV_TITLE and value == API_INDEX:
                    item[key] = api_nav
                    return True
                if _replace_api_nav(value, api_nav):
                    return True
    return False


def on_config(config: Any) -> Any:
    # Included files (pymdownx.snippets) are found from the repository root, wherever mkdocs runs.
    snippets = config.get("mdx_configs", {}).get("pymdownx.snippets")
    if snippets is not None:
        snippets["base_path"] = [str(REPO)]
    nav = config.get("nav")
    if nav is not None and not _replace_api_nav(nav, _api_nav(api_modules())):
        raise RuntimeError(f"mkdocs.yml: the nav needs an item `{API_NAV_TITLE}: {API_INDEX}` to expand")
    return config


def generated_pages() -> dict[str, str]:
    """Every generated page: docs-relative path -> markdown."""
    packages = api_modules()
    pages = {
        "reference/recipes.md": recipes_markdown(),
        "reference/cli.md": cli_markdown(),
        API_INDEX: api_index(packages),
    }
    for modules in packages.values():
        for m in modules:
            pages[f"reference/api/{m}.md"] = api_page(m, submodules_of(m, modules))
    return pages


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for uri, content in generated_pages().items():
        if files.get_file_from_path(uri) is not None:
            raise RuntimeError(f"docs/{uri} is generated; remove the hand-written file")
        files.append(File.generated(config, uri, content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:  # noqa: ARG001
    if RECIPE_FILES_MARKER in markdown:
        markdown = markdown.replace(RECIPE_FILES_MARKER, recipe_files_markdown())
    return markdown


__all__ = [
    "ConfigFieldTables",
    "api_modules",
    "cli_markdown",
    "command_paths",
    "config_fields_markdown",
    "first_party_app",
    "first_party_host",
    "first_party_plugins",
    "generated_pages",
    "is_config_class",
    "recipe_files_markdown",
    "recipes_markdown",
    "toml_type",
    "toml_value",
]
