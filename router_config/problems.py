"""Configuration problems, each naming the file, the key and the fix; and reading a YAML mapping."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    key: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.problem}. Fix: {self.fix}"


class ConfigError(Exception):
    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def read_mapping(path: Path, missing_fix: str, example: str) -> dict[str, Any]:
    """The YAML file's top-level mapping, or ConfigError saying what is wrong with the file."""
    def fail(problem: str, fix: str) -> ConfigError:
        return ConfigError([ConfigProblem(str(path), "(file)", problem, fix)])

    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise fail("file not found", missing_fix)
    except yaml.YAMLError as exc:
        raise fail(f"not valid YAML: {exc}", "fix the YAML syntax")
    if not isinstance(raw, dict):
        raise fail("top level is not a mapping", f"start from {example}")
    return raw


def from_validation_error(file: str, prefix: str, exc: ValidationError) -> list[ConfigProblem]:
    """One problem per pydantic error, keyed by its dotted location under `prefix`."""
    problems = []
    for err in exc.errors():
        key = ".".join([prefix, *(str(p) for p in err["loc"])] if prefix else [str(p) for p in err["loc"]]) or "(top level)"
        if err["type"] == "extra_forbidden":
            fix = "remove it (unknown key)"
        elif err["type"] == "missing":
            fix = "add it; it has no default"
        else:
            fix = "see the README for allowed values"
        problems.append(ConfigProblem(file, key, err["msg"], fix))
    return problems
