"""Load a plan YAML file into validated models, with errors that name file, path and line."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

import yaml
from pydantic import ValidationError

from kpi_pipeline.plan.base import IDENTIFIER_PATTERN, PLAN_ID_PATTERN
from kpi_pipeline.plan.checks import Path, check_plan, format_path
from kpi_pipeline.plan.models import Plan


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
        """Folder that relative source paths in the plan are resolved against."""
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
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError([PlanIssue(shown, 1, "", "file not found")]) from None
    except UnicodeDecodeError as exc:
        raise PlanError([PlanIssue(shown, 1, "", f"not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise PlanError(
            [PlanIssue(shown, 1, "", f"cannot read the file ({exc.strerror})")]
        ) from None
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


def _parse_yaml(text: str, shown: str) -> tuple[Any, dict[Path, int]]:
    """Parse YAML keeping the (1-based) line of every node and rejecting duplicate keys."""
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise PlanError(
            [
                PlanIssue(
                    shown,
                    line,
                    "",
                    f"YAML cannot contain {exc.reason}: character {exc.character!r}",
                )
            ]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 1
        raise PlanError([PlanIssue(shown, line, "", f"YAML syntax error: {exc.problem}")]) from None
    if node is None:
        raise PlanError([PlanIssue(shown, 1, "", "the file is empty")])
    lines: dict[Path, int] = {}
    duplicates: list[PlanIssue] = []  # duplicate or unusable keys

    def convert(current: yaml.Node, path: Path) -> Any:
        lines[path] = current.start_mark.line + 1
        if isinstance(current, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in current.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    duplicates.append(
                        PlanIssue(
                            shown,
                            key_node.start_mark.line + 1,
                            format_path(path),
                            "a key must be a plain word, not a list or a mapping",
                        )
                    )
                    continue
                # Keys are names: `2024:` is the key "2024", so errors and lines agree.
                key = str(convert_scalar(key_node))
                if key in result:
                    duplicates.append(
                        PlanIssue(
                            shown,
                            key_node.start_mark.line + 1,
                            format_path((*path, str(key))),
                            "duplicate key (YAML would silently keep the last one)",
                        )
                    )
                result[key] = convert(value_node, (*path, key))
                lines[(*path, key)] = key_node.start_mark.line + 1
            return result
        if isinstance(current, yaml.SequenceNode):
            return [convert(item, (*path, i)) for i, item in enumerate(current.value)]
        return convert_scalar(current)

    def convert_scalar(scalar: yaml.Node) -> Any:
        try:
            return loader.construct_object(scalar, deep=True)
        except (ValueError, yaml.constructor.ConstructorError):
            # e.g. an impossible date such as 2026-02-30: let the model report it in place.
            return scalar.value

    data = convert(node, ())
    loader.dispose()
    if duplicates:
        raise PlanError(duplicates)
    return data, lines
