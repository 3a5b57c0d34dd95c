"""Command-line flags generated from configuration dataclasses: one flag per field, named after it
(`d_model` → `--d-model`), its help the comment beside the field in the class's source, or the comment
lines just above it.

    add_dataclass_arguments(parser, ExperimentConfig())   # --dataset, --lookback, ..., --d-model, --lr
    cfg = config_from_args(base, parser.parse_args())      # base with the flags given set

A nested dataclass (ExperimentConfig.model, its .network, .train) adds its fields' flags, unprefixed, in
an argument group of its own; a flag's destination is its field's dotted path ("model.network.d_model").
bool fields get --x / --no-x, lists take several values, Literal types their choices. A flag left out
keeps the base's value.
"""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import io
import textwrap
import tokenize
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import fields, is_dataclass, replace
from typing import Any, Literal, TypeVar

T = TypeVar("T")


def add_dataclass_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    config: Any,
    *,
    exclude: Collection[str] = (),
    aliases: Mapping[str, str] | None = None,
    _prefix: str = "",
    _root: argparse.ArgumentParser | None = None,
) -> None:
    """One flag per field of the dataclass instance `config` (whose values are shown as defaults), nested
    dataclasses recursively. exclude: dotted paths to leave out; aliases: field name → an older flag
    name it also answers to (e.g. {"n_layers": "--layers"})."""
    aliases = aliases or {}
    hints = typing.get_type_hints(type(config))
    comments = field_comments(type(config))
    for f in fields(config):
        path, value = _prefix + f.name, getattr(config, f.name)
        if path in exclude:
            continue
        if is_dataclass(value):
            root = _root or parser  # argparse shows a group's arguments only if the group is the parser's own
            group = root.add_argument_group(path, comments.get(f.name))
            add_dataclass_arguments(group, value, exclude=exclude, aliases=aliases, _prefix=path + ".", _root=root)
            continue
        names = ["--" + f.name.replace("_", "-"), *([aliases[f.name]] if f.name in aliases else [])]
        kind = _strip_none(hints[f.name])
        help_text = comments.get(f.name, "")
        if value not in (None, "", []):
            help_text += f" (default: {' '.join(map(str, value)) if isinstance(value, list) else value})"
        kw: dict[str, Any] = {"dest": path, "default": None, "help": help_text.strip() or None}
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            if typing.get_origin(kind) is list:
                kw["nargs"] = "*"
                kind = typing.get_args(kind)[0]
            if typing.get_origin(kind) is Literal:
                kw["choices"] = list(typing.get_args(kind))
                kind = type(kw["choices"][0])
            if kind not in (int, float, str):
                raise TypeError(f"{type(config).__name__}.{f.name}: no flag for type {hints[f.name]}; exclude it")
            kw["type"] = kind
            kw["metavar"] = None if "choices" in kw else f.name.upper()
        parser.add_argument(*names, **kw)


def config_from_args(base: T, args: argparse.Namespace, _prefix: str = "") -> T:
    """`base` with every flag given (not None) set on its field; the dataclasses changed are rebuilt
    (dataclasses.replace), so their checks run on the new values."""
    changes = {}
    for f in fields(base):
        path, value = _prefix + f.name, getattr(base, f.name)
        if is_dataclass(value):
            new = config_from_args(value, args, path + ".")
            if new is not value:
                changes[f.name] = new
        elif getattr(args, path, None) is not None:
            changes[f.name] = getattr(args, path)
    return replace(base, **changes) if changes else base


@functools.cache
def field_comments(cls: type) -> dict[str, str]:
    """Field name → its comment in the class's source: the comment lines just above the field, then the
    one on its line, joined."""
    source = textwrap.dedent(inspect.getsource(cls))
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    comments = {t.start[0]: t.string.lstrip("#").strip() for t in tokens if t.type == tokenize.COMMENT}
    lines = source.splitlines()
    [node] = ast.parse(source).body
    out = {}
    for stmt in node.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        above, row = [], stmt.lineno - 1
        while row in comments and lines[row - 1].lstrip().startswith("#"):
            above.insert(0, comments[row])
            row -= 1
        beside = [comments[stmt.lineno]] if stmt.lineno in comments else []
        text = " ".join(above + beside)
        if text:
            out[stmt.target.id] = text
    return out


def _strip_none(hint: Any) -> Any:
    """`X | None` → X; any other type as it is."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint
