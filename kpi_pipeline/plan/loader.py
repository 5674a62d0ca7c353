"""Load a plan YAML file into validated models, with errors that name file, path and line."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from kpi_pipeline.plan.base import IDENTIFIER_PATTERN, PLAN_ID_PATTERN
from kpi_pipeline.plan.checks import Path, check_plan, format_path
from kpi_pipeline.plan.models import Plan

# Limits against hostile or broken plan files: a real plan is a few KB, a few hundred values and
# fewer than ten levels deep. Each limit turns into a located error, quickly, in bounded memory.
MAX_PLAN_BYTES = 1_000_000  # checked before parsing
MAX_DEPTH = 64  # levels of nested lists and mappings, also through aliases
MAX_VALUES = 100_000  # values (nodes) in the plan, counting each expansion of an alias
MAX_NUMBER_CHARS = 100  # longer numbers are refused before conversion (`1:2:3...` is quadratic)

# Where a wheel installs the example plans (kpi_pipeline/plan_config/, see setup.py): far from
# any data, so their relative source paths are read from the current folder instead.
_INSTALLED_EXAMPLE_PLANS = FsPath(__file__).resolve().parents[1] / "plan_config"

_CORE = "tag:yaml.org,2002:"
# The only tags a plan may write explicitly, by kind of node: standard YAML types.
_ALLOWED_TAGS: dict[type[yaml.Node], frozenset[str]] = {
    yaml.ScalarNode: frozenset(
        _CORE + name for name in ("str", "int", "float", "bool", "null", "timestamp")
    ),
    yaml.SequenceNode: frozenset({_CORE + "seq"}),
    yaml.MappingNode: frozenset({_CORE + "map"}),
}
_NUMBER_TAGS = frozenset({_CORE + "int", _CORE + "float"})


@dataclass(frozen=True)
class PlanIssue:
    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PlanError(ValueError):
    """A plan file that cannot be used; `issues` lists every problem found."""

    def __init__(self, issues: list[PlanIssue]):
        self.issues = issues
        count = f"{len(issues)} problem{'s' if len(issues) != 1 else ''}"
        super().__init__(f"invalid plan ({count}):\n" + "\n".join(f"  {i}" for i in issues))


@dataclass(frozen=True)
class LoadedPlan:
    plan: Plan
    path: FsPath

    @property
    def base_dir(self) -> FsPath:
        """Folder that relative source paths in the plan are resolved against.

        The plan's own folder; for an example plan installed with the package, `plan_config/`
        of the current folder, as in a source checkout: the demo plan's `../data/demo` is
        then `./data/demo`, where `kpi-pipeline demo-data` writes by default.
        """
        if self.path.resolve().parent == _INSTALLED_EXAMPLE_PLANS:
            return FsPath.cwd() / "plan_config"
        return self.path.parent

    @property
    def plan_hash(self) -> str:
        return plan_hash(self.plan)

    @property
    def plan_id(self) -> str:
        """The plan's `id`, else one made from its file name (`demo.yaml` -> `demo`)."""
        return self.plan.id or default_plan_id(self.path)


def default_plan_id(path: FsPath) -> str:
    """A plan id from a file name: lower-case, `_` for anything else, at most 40 characters."""
    stem = re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()).strip("_") or "plan"
    if not stem[0].isalpha():
        stem = f"plan_{stem}"
    return stem[:40].rstrip("_")


def plan_hash(plan: Plan) -> str:
    """Hash of the plan's meaning (not its formatting): snapshots record which plan scored them."""
    canonical = json.dumps(plan.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def load_plan(path: str | FsPath) -> LoadedPlan:
    """Read, parse and validate a plan; raise `PlanError` listing every problem."""
    file = FsPath(path)
    shown = str(path)
    text = _read_text(file, shown)
    data, lines = _parse_yaml(text, shown)
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        issues = [
            _issue(shown, lines, tuple(err["loc"]), _pydantic_message(err))
            for err in exc.errors(include_url=False)
        ]
        raise PlanError(issues) from None
    problems = check_plan(plan)
    if problems:
        raise PlanError([_issue(shown, lines, p.path, p.message) for p in problems])
    return LoadedPlan(plan=plan, path=file.resolve())


def _read_text(file: FsPath, shown: str) -> str:
    """The file's text, refusing files over `MAX_PLAN_BYTES` before reading them whole."""
    try:
        with file.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > MAX_PLAN_BYTES:
                raise PlanError([_too_big(shown, size)])
            data = stream.read(MAX_PLAN_BYTES + 1)  # also bounds special files (/dev/zero)
    except FileNotFoundError:
        raise PlanError([PlanIssue(shown, 1, "", "file not found")]) from None
    except OSError as exc:
        raise PlanError(
            [PlanIssue(shown, 1, "", f"cannot read the file ({exc.strerror})")]
        ) from None
    if len(data) > MAX_PLAN_BYTES:
        raise PlanError([_too_big(shown, None)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError([PlanIssue(shown, 1, "", f"not UTF-8 text ({exc.reason})")]) from None
    # Universal newlines, as text mode would give.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _too_big(shown: str, size: int | None) -> PlanIssue:
    limit = f"{MAX_PLAN_BYTES / 1_000_000:g} MB"
    # Rounded up, so a plan just over the limit does not read as "1 MB, more than 1 MB".
    actual = f"{math.ceil(size / 100_000) / 10:g} MB" if size is not None else f"over {limit}"
    return PlanIssue(
        shown,
        1,
        "",
        f"the plan is {actual}, more than the {limit} limit (a plan is a few KB: "
        "is this the right file?)",
    )


def _pydantic_message(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (check its spelling; unknown keys are rejected)"
    if err["type"] == "missing":
        return "required field is missing"
    if err["type"] == "string_pattern_mismatch":
        got = err.get("input")
        if err.get("ctx", {}).get("pattern") == PLAN_ID_PATTERN:
            return (
                "a plan id uses lowercase letters, digits and _, starts with a letter and has "
                f"at most 40 characters (got {got!r}): it prefixes the plan's warehouse schemas"
            )
        if err.get("ctx", {}).get("pattern") == IDENTIFIER_PATTERN:
            return (
                "ids use lowercase letters, digits and _, start with a letter and have at most "
                f"63 characters (got {got!r})"
            )
        if err["loc"] == ("currency",):
            return f"currency must be a 3-letter ISO 4217 code in capitals, e.g. CAD (got {got!r})"
    message = str(err["msg"])
    return message.removeprefix("Value error, ")


def _issue(file: str, lines: dict[Path, int], loc: Path, message: str) -> PlanIssue:
    # Pydantic may add non-path parts to `loc` (union members, function names):
    # keep the longest prefix that exists in the document, but show the full field path.
    path = tuple(p for p in loc if isinstance(p, int) or not str(p).startswith("function-"))
    line = 1
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            line = lines[path[:end]]
            break
    return PlanIssue(file, line, format_path(path), message)


class _Refused(Exception):
    """A limit hit while parsing: becomes a located `PlanIssue`."""

    def __init__(self, line: int, path: Path, message: str):
        super().__init__(message)
        self.line = line
        self.path = path
        self.message = message


class _AliasNode(yaml.Node):
    """An alias (`*name`) where it is used: the aliased node, at the alias's own line."""

    id = "alias"

    def __init__(self, name: str, target: yaml.Node, event: yaml.AliasEvent):
        super().__init__(target.tag, target, event.start_mark, event.end_mark)
        self.name = name


class _Limits:
    """Composing within `MAX_DEPTH` and `MAX_VALUES`, refusing recursive aliases, marking
    aliases where they are used and recording explicit tags (mixed into a PyYAML loader)."""

    def _init_limits(self) -> None:
        self.plan_depth = 0
        self.plan_values = 0
        self.plan_open_anchors: set[str] = set()  # anchors of the collections being composed
        self.plan_explicit_tags: dict[int, str] = {}  # id(node) -> tag written in the file

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        line = event.start_mark.line + 1
        self.plan_values += 1
        if self.plan_values > MAX_VALUES:
            raise _Refused(line, (), f"the plan has more than {MAX_VALUES:,} values")
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self.plan_open_anchors:
                raise _Refused(
                    line,
                    (),
                    f"alias *{event.anchor} is used inside the value it names "
                    "(a recursive alias would be infinite)",
                )
            target = super().compose_node(parent, index)
            return _AliasNode(event.anchor, target, event)
        collection = isinstance(event, yaml.CollectionStartEvent)
        if collection:
            if self.plan_depth >= MAX_DEPTH:
                raise _Refused(line, (), f"nested deeper than {MAX_DEPTH} levels")
            self.plan_depth += 1
            if event.anchor is not None:
                self.plan_open_anchors.add(event.anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            if collection:
                self.plan_depth -= 1
                self.plan_open_anchors.discard(event.anchor)
        if getattr(event, "tag", None) not in (None, "!"):
            self.plan_explicit_tags[id(node)] = event.tag
        return node


class _PythonComposer(_Limits, yaml.SafeLoader):
    """PyYAML's pure-Python safe loader, with the limits."""

    def __init__(self, text: str):
        yaml.SafeLoader.__init__(self, text)
        self._init_limits()


_Composer: type[_Limits] = _PythonComposer
try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML built without libyaml: the pure-Python parser, ~5x slower
    pass
else:

    class _LibyamlComposer(_Limits, Composer, CParser, SafeConstructor, Resolver):
        """libyaml's parser (events) under PyYAML's Python composer, with the limits: the
        same nodes as `_PythonComposer`, scanned ~5x faster (1 MB of values in 0.3 s)."""

        def __init__(self, text: str):
            CParser.__init__(self, text)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            Composer.__init__(self)
            self._init_limits()

    _Composer = _LibyamlComposer


def _parse_yaml(text: str, shown: str) -> tuple[Any, dict[Path, int]]:
    """Parse YAML keeping the (1-based) line of every node and rejecting duplicate keys."""
    loader: Any = None
    try:
        yaml.reader.Reader(text)  # refuses control characters, naming them (libyaml does not)
        loader = _Composer(text)
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "?")
        message = f"YAML cannot contain the special character {chr(code)!r} (U+{code:04X})"
        raise PlanError([PlanIssue(shown, line, "", message)]) from None
    except yaml.MarkedYAMLError as exc:
        raise PlanError([_syntax_issue(text, shown, exc)]) from None
    except _Refused as exc:
        raise PlanError([PlanIssue(shown, exc.line, "", exc.message)]) from None
    except RecursionError:
        # Composing recurses once per level and `_Limits` stops at MAX_DEPTH, so this only
        # happens when the loader runs on an already deep stack.
        raise PlanError(
            [PlanIssue(shown, _current_line(loader), "", f"nested deeper than {MAX_DEPTH} levels")]
        ) from None
    if node is None:
        raise PlanError([PlanIssue(shown, 1, "", "the file is empty")])
    try:
        data, lines = _convert(node, loader, shown)
    except _Refused as exc:
        raise PlanError([PlanIssue(shown, exc.line, format_path(exc.path), exc.message)]) from None
    except RecursionError:  # as above: converting recurses at most MAX_DEPTH levels
        raise PlanError(
            [PlanIssue(shown, 1, "", f"nested deeper than {MAX_DEPTH} levels")]
        ) from None
    finally:
        loader.dispose()
    return data, lines


def _syntax_issue(text: str, shown: str, exc: yaml.MarkedYAMLError) -> PlanIssue:
    mark = exc.problem_mark
    if mark is None:
        return PlanIssue(shown, 1, "", f"YAML syntax error: {exc.problem}")
    lines = text.split("\n")
    line = min(mark.line + 1, len(lines))  # libyaml may place an error after the last line
    if exc.problem == "exceeded maximum nesting depth":  # libyaml's own limit, 1000 levels
        return PlanIssue(shown, line, "", f"nested deeper than {MAX_DEPTH} levels")
    problem = exc.problem
    if problem == "found character that cannot start any token" and mark.line < len(lines):
        # libyaml does not name the character (PyYAML does): a tab, most of the time.
        character = lines[mark.line][mark.column : mark.column + 1]
        problem = f"found character {character!r} that cannot start any token"
    return PlanIssue(shown, line, "", f"YAML syntax error: {problem}")


def _current_line(loader: Any) -> int:
    """The line the parser had reached (after a RecursionError: its state is unknown)."""
    if isinstance(getattr(loader, "line", None), int):  # PyYAML's reader
        return loader.line + 1
    try:
        return loader.peek_event().start_mark.line + 1  # libyaml's next event
    except Exception:
        return 1


def _convert(root: yaml.Node, loader: Any, shown: str) -> tuple[Any, dict[Path, int]]:
    """Python values from the composed nodes, expanding aliases within the same limits."""
    lines: dict[Path, int] = {}
    problems: list[PlanIssue] = []  # duplicate or unusable keys, refused tags and numbers
    visited = 0

    def refuse(node: yaml.Node, path: Path, message: str) -> None:
        problems.append(PlanIssue(shown, node.start_mark.line + 1, format_path(path), message))

    def tag_refused(node: yaml.Node, path: Path) -> bool:
        tag = loader.plan_explicit_tags.get(id(node))
        if tag is None or tag in _ALLOWED_TAGS[type(node)]:
            return False
        written = f"!!{tag.removeprefix(_CORE)}" if tag.startswith(_CORE) else tag
        refuse(
            node,
            path,
            f"YAML tag {written} is not allowed: a plan may only use the standard tags "
            "!!str, !!int, !!float, !!bool, !!null, !!timestamp on values, !!seq on lists "
            "and !!map on mappings",
        )
        return True

    # `alias` is the outermost alias being expanded (and its path), named by limit errors.
    def convert(
        current: yaml.Node, path: Path, depth: int, alias: tuple[_AliasNode, Path] | None
    ) -> Any:
        nonlocal visited
        if isinstance(current, _AliasNode):
            value = convert(current.value, path, depth, alias or (current, path))
            lines[path] = current.start_mark.line + 1  # errors point at the alias, not the anchor
            return value
        lines[path] = current.start_mark.line + 1
        visited += 1
        if visited > MAX_VALUES:
            if alias is None:
                raise _Refused(
                    current.start_mark.line + 1,
                    path,
                    f"the plan has more than {MAX_VALUES:,} values",
                )
            alias_node, alias_path = alias
            raise _Refused(
                alias_node.start_mark.line + 1,
                alias_path,
                f"alias *{alias_node.name} expands the plan past {MAX_VALUES:,} values "
                "(aliases must not multiply the plan)",
            )
        if isinstance(current, yaml.ScalarNode):
            return convert_scalar(current, path)
        if tag_refused(current, path):
            return None
        if depth >= MAX_DEPTH:
            if alias is None:
                raise _Refused(
                    current.start_mark.line + 1, path, f"nested deeper than {MAX_DEPTH} levels"
                )
            alias_node, alias_path = alias
            raise _Refused(
                alias_node.start_mark.line + 1,
                alias_path,
                f"alias *{alias_node.name} nests the plan deeper than {MAX_DEPTH} levels",
            )
        if isinstance(current, yaml.SequenceNode):
            return [
                convert(item, (*path, i), depth + 1, alias) for i, item in enumerate(current.value)
            ]
        result: dict[Any, Any] = {}
        for key_node, value_node in current.value:
            if isinstance(key_node, _AliasNode):
                key_node = key_node.value
            if not isinstance(key_node, yaml.ScalarNode):
                refuse(key_node, path, "a key must be a plain word, not a list or a mapping")
                continue
            # Keys are names: `2024:` is the key "2024", so errors and lines agree.
            key = str(convert_scalar(key_node, path))
            if key in result:
                refuse(
                    key_node,
                    (*path, key),
                    "duplicate key (YAML would silently keep the last one)",
                )
            result[key] = convert(value_node, (*path, key), depth + 1, alias)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result

    def convert_scalar(scalar: yaml.ScalarNode, path: Path) -> Any:
        if tag_refused(scalar, path):
            return None
        if scalar.tag in _NUMBER_TAGS and len(scalar.value) > MAX_NUMBER_CHARS:
            refuse(
                scalar,
                path,
                f"a number written with {len(scalar.value):,} characters: plan numbers have "
                f"at most {MAX_NUMBER_CHARS}",
            )
            return None
        try:
            return loader.construct_object(scalar, deep=True)
        except Exception:  # any failure is reported below, never as a traceback
            if id(scalar) in loader.plan_explicit_tags:
                written = f"!!{scalar.tag.removeprefix(_CORE)}"
                refuse(scalar, path, f"{scalar.value!r} is not a valid {written} value")
                return None
            # e.g. an impossible date such as 2026-02-30: let the model report it in place.
            return scalar.value

    data = convert(root, (), 0, None)
    if problems:
        raise PlanError(problems)
    return data, lines
