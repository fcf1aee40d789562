# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""AWX job template surveys made from the roles' argument specs (meta/argument_specs.yml).

A survey question is a role option as an operator answers it at launch: its type, whether it is
required, its choices and its default come from the option's spec, its label and help from the
option's description. Options that a survey cannot carry (a dict, a list without choices, a
default that is a template) are refused with the option named, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import MaintenanceError

QUESTION_TYPES = ("text", "textarea", "password", "multiplechoice", "multiselect", "integer", "float")
TEXT_MAX = 1024
# Ansible's documentation markup: O(option), C(code), V(value), M(module), E(env) ... L(text,url), R(text,ref).
_MARKUP = re.compile(r"\b([A-Z])\(([^()]*)\)")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SurveyError(MaintenanceError):
    """A role option cannot be a survey question, or a launch input names no option."""


def plain_text(description: Any) -> str:
    """A description (a string or a list of them) without Ansible's markup, as one paragraph."""
    text = " ".join(description) if isinstance(description, (list, tuple)) else str(description or "")

    def unmark(match: re.Match[str]) -> str:
        letter, inner = match.groups()
        if letter in ("L", "R"):
            return inner.split(",", 1)[0].strip()
        if letter == "O" and "#" in inner:  # O(collection.module#module:option=value)
            inner = inner.split(":", 1)[-1]
        return inner

    previous = None
    while previous != text:  # nested markup, innermost first
        previous, text = text, _MARKUP.sub(unmark, text)
    return re.sub(r"\s+", " ", text).strip()


def _label(variable: str, description: str) -> str:
    first = re.split(r"(?<=[.;])\s", description, maxsplit=1)[0].rstrip(".;") if description else ""
    return (first[:80] if first else variable.replace("_", " ")).strip()


def _literal_default(variable: str, spec: Mapping[str, Any]) -> Any:
    default = spec.get("default")
    if isinstance(default, str) and ("{{" in default or "{%" in default):
        return None  # computed from the inventory at run time: no fixed answer to offer
    return default


def survey_question(variable: str, spec: Mapping[str, Any], *, required: bool | None = None) -> dict[str, Any]:
    """The AWX survey question of one role option (``required`` overrides the spec's, per playbook)."""
    if not _VARIABLE.fullmatch(variable):
        raise SurveyError(msg=f"{variable!r} is not a variable name a survey can set")
    kind = spec.get("type", "str")
    description = plain_text(spec.get("description"))
    question: dict[str, Any] = {
        "question_name": _label(variable, description),
        "question_description": description,
        "variable": variable,
        "required": bool(spec.get("required", False) if required is None else required),
    }
    choices = [str(choice) for choice in spec.get("choices") or []]
    default = _literal_default(variable, spec)
    if kind in ("str", "path", "raw"):
        if choices:
            question.update(type="multiplechoice", choices=choices)
        else:
            question.update(type="password" if spec.get("no_log") else "text",
                            min=1 if question["required"] else 0, max=TEXT_MAX)
        if default not in (None, ""):
            question["default"] = str(default)
    elif kind == "bool":
        question.update(type="multiplechoice", choices=["true", "false"])
        if default is not None:
            question["default"] = "true" if default else "false"
    elif kind in ("int", "float"):
        question.update(type="integer" if kind == "int" else "float", min=None, max=None)
        if default is not None:
            question["default"] = int(default) if kind == "int" else float(default)
    elif kind == "list" and choices:
        question.update(type="multiselect", choices=choices)
        if default:
            question["default"] = "\n".join(str(item) for item in default)
    else:
        raise SurveyError(msg=f"option {variable!r} of type {kind}{' without choices' if kind == 'list' else ''} "
                              "cannot be a survey question (AWX answers are text, numbers or choices)")
    return question


def find_option(variable: str, specs: Sequence[tuple[str, Mapping[str, Any]]]) -> Mapping[str, Any]:
    """The spec of ``variable`` in the first ``(owner, options)`` that has it; SurveyError naming where it looked."""
    for spec in specs:
        if variable in spec[1]:
            return spec[1][variable]
    owners = ", ".join(spec[0] for spec in specs) or "no role"
    raise SurveyError(msg=f"launch input {variable!r} is not an option of {owners}: document it in that role's "
                          "meta/argument_specs.yml")


def survey_spec(name: str, description: str, questions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"name": name, "description": description, "spec": [dict(question) for question in questions]}


def survey_problems(spec: Any) -> list[str]:
    """What AWX's survey endpoint would refuse in ``spec`` (empty when it accepts it)."""
    if not isinstance(spec, Mapping):
        return ["the survey spec is not a dict"]
    problems = []
    for key, kind in (("name", str), ("description", str), ("spec", list)):
        if key not in spec:
            problems.append(f"field {key!r} is missing from the survey spec")
        elif not isinstance(spec[key], kind):
            problems.append(f"field {key!r} must be a {kind.__name__}")
    if problems:
        return problems
    if not spec["spec"]:
        return ["'spec' doesn't contain any items"]
    seen: set[str] = set()
    for index, question in enumerate(spec["spec"]):
        problems += [f"question {index}: {problem}" for problem in _question_problems(question, seen)]
    return problems


def _question_problems(question: Any, seen: set[str]) -> list[str]:
    if not isinstance(question, Mapping):
        return ["is not a dict"]
    problems = []
    for key, kind in (("type", str), ("question_name", str), ("variable", str), ("required", bool)):
        if key not in question:
            problems.append(f"{key!r} is missing")
        elif not isinstance(question[key], kind):
            problems.append(f"{key!r} must be a {kind.__name__}")
    if problems:
        return problems
    if question["variable"] in seen:
        problems.append(f"variable {question['variable']!r} is asked twice")
    seen.add(question["variable"])
    qtype = question["type"]
    if qtype not in QUESTION_TYPES:
        return problems + [f"type {qtype!r} is not one of {', '.join(QUESTION_TYPES)}"]
    default = question.get("default")
    expected = {"integer": int, "float": (int, float)}.get(qtype, str)
    if default not in (None, "") and (not isinstance(default, expected) or isinstance(default, bool)):
        problems.append(f"default {default!r} does not fit type {qtype}")
    for key in ("min", "max"):
        if question.get(key) is not None and (not isinstance(question[key], int) or isinstance(question[key], bool)):
            problems.append(f"{key} must be a whole number")
    if qtype in ("multiplechoice", "multiselect"):
        choices = question.get("choices")
        if isinstance(choices, str):
            choices = [line for line in choices.splitlines() if line.strip()]
        if not choices:
            problems.append(f"a {qtype} question needs choices")
        elif isinstance(default, str) and default:
            defaults = [line for line in default.splitlines() if line.strip()]
            if qtype == "multiplechoice" and len(defaults) > 1:
                problems.append("a multiplechoice question takes one default")
            if any(item not in choices for item in defaults):
                problems.append(f"default {default!r} is not one of the choices")
    if isinstance(default, str) and default.startswith("$encrypted$"):
        problems.append("$encrypted$ is reserved for password defaults AWX already holds")
    return problems
