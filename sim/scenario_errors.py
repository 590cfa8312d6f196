"""Turn pydantic validation errors into messages that name the file, the key, the value and the range."""

from __future__ import annotations

import difflib
import enum
import types
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, Tag, ValidationError
from pydantic.fields import FieldInfo

# Enough to show every independent mistake in a typical file without flooding the terminal.
_MAX_REPORTED_ERRORS = 5


def format_validation_error(path: Path, error: ValidationError, root: type[BaseModel]) -> str:
    """Describe each distinct problem of ``error`` on its own line, prefixed by the file name."""
    best: dict[str, tuple[dict[str, Any], Any, Any]] = {}
    # Unknown keys first: a misspelled key also makes the intended one missing, and the
    # suggestion on the unknown key names the cause.
    details = sorted(error.errors(include_url=False), key=lambda detail: detail["type"] != "extra_forbidden")
    for detail in details:
        key, parent, field = _resolve_location(root, detail["loc"])
        # An untagged union reports one error per branch. A type mismatch ("should be a valid
        # integer") only means the user chose the other branch, so any other error is more useful.
        if key not in best or best[key][0]["type"].endswith("_type"):
            best[key] = (detail, parent, field)
    lines = [
        f"{path}: {_describe(detail, key, parent, field)}"
        for key, (detail, parent, field) in best.items()
    ]
    hidden = len(lines) - _MAX_REPORTED_ERRORS
    shown = lines[:_MAX_REPORTED_ERRORS]
    if hidden > 0:
        shown.append(f"{path}: ... and {hidden} more invalid keys")
    return "\n".join(shown)


def _describe(detail: dict[str, Any], key: str, parent: Any, field: Any) -> str:
    kind = detail["type"]
    value = detail.get("input")

    if kind == "extra_forbidden":
        allowed = _field_names(parent)
        message = f"unknown key '{key}'"
        leaf = key.rsplit(".", 1)[-1]
        close = difflib.get_close_matches(leaf, allowed, n=1)
        if close:
            message += f"; did you mean '{close[0]}'?"
        if allowed:
            message += f" Allowed keys here: {', '.join(allowed)}" if close else f"; allowed keys here: {', '.join(allowed)}"
        return message

    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag_key = f"{key}.{detail['ctx'].get('discriminator', 'kind').strip(chr(39))}"
        expected = detail["ctx"].get("expected_tags") or ", ".join(repr(tag) for tag in _union_tags(field))
        found = detail["ctx"].get("tag")
        if found is None:
            return f"missing required key '{tag_key}'; allowed values: {expected}"
        return f"invalid value for '{tag_key}': {found!r}; allowed: {expected}"

    if kind == "missing":
        allowed = _allowed_text(field)
        return f"missing required key '{key}'" + (f"; allowed: {allowed}" if allowed else "")

    if kind in ("value_error", "assertion_error") and isinstance(value, dict):
        reason = detail["msg"].removeprefix("Value error, ")
        return f"invalid settings in '{key or 'the scenario'}': {reason}"

    reason = detail["msg"].removeprefix("Value error, ")
    allowed = _allowed_text(field)
    message = f"invalid value for '{key}': {_show(value)} ({reason})"
    if allowed:
        message += f"; allowed: {allowed}"
    return message


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _field_names(model: Any) -> list[str]:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [info.alias or name for name, info in model.model_fields.items()]
    return []


def _resolve_location(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, Any, Any]:
    """Walk ``loc`` through the model types, and return the dotted key, the parent model and the field.

    Pydantic puts union branch tags (a ``kind`` value or a type name) into locations. They are not
    keys the user wrote, so they are left out of the dotted key.
    """
    shown: list[str] = []
    current: Any = root
    parent: Any = root
    field: Any = None
    for part in loc:
        current = _strip_optional(current)
        if isinstance(part, int):
            if shown:
                shown[-1] += f"[{part}]"
            current = _item_type(current)
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            parent = current
            info = _find_field(current, part)
            shown.append(str(part))
            field = info
            current = info.annotation if info is not None else None
            if info is not None and info.metadata:
                current = typing.Annotated[(current, *info.metadata)]
            continue
        origin = typing.get_origin(_unwrap(current))
        if origin is dict:
            shown.append(str(part))
            current = typing.get_args(_unwrap(current))[1]
            field = current
            continue
        branch = _pick_branch(current, part)
        if branch is not None:
            current = branch
            if not (isinstance(branch, type) and issubclass(branch, BaseModel)):
                field = branch
            continue
        if _is_union(_unwrap(current)):
            # A tag of an untagged union ("constrained-int", "function-after[...]"): the whole
            # union is what the user has to satisfy.
            field = current
            break
        shown.append(str(part))
        current = None
    return ".".join(shown), parent, field


def _union_tags(annotation: Any) -> list[str]:
    """Return the ``kind`` values of a tagged union's members."""
    if isinstance(annotation, FieldInfo):
        annotation = annotation.annotation
    tags = []
    for member in typing.get_args(_unwrap(annotation)):
        plain = _unwrap(member)
        if isinstance(plain, type) and issubclass(plain, BaseModel) and "kind" in plain.model_fields:
            tags.extend(typing.get_args(plain.model_fields["kind"].annotation))
    return tags


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _strip_optional(annotation: Any) -> Any:
    bare = _unwrap(annotation)
    if _is_union(bare):
        members = [m for m in typing.get_args(bare) if m is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _item_type(annotation: Any) -> Any:
    args = typing.get_args(_unwrap(annotation))
    return args[0] if args else None


def _find_field(model: type[BaseModel], name: str) -> FieldInfo | None:
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias):
            return info
    return None


def _pick_branch(annotation: Any, tag: Any) -> Any:
    bare = _unwrap(annotation)
    if not _is_union(bare):
        return None
    for member in typing.get_args(bare):
        plain = _unwrap(member)
        if typing.get_origin(member) is typing.Annotated:
            tags = [item.tag for item in typing.get_args(member)[1:] if isinstance(item, Tag)]
            if tag in tags:
                return plain
        if isinstance(plain, type) and issubclass(plain, BaseModel):
            kind = plain.model_fields.get("kind")
            if plain.__name__ == tag or (kind is not None and kind.default == tag):
                return plain
            if kind is not None and typing.get_args(kind.annotation) == (tag,):
                return plain
        elif getattr(plain, "__name__", None) == tag:
            return member
    return None


def _allowed_text(field: Any) -> str:
    """Describe the values a field accepts, from its type and its numeric bounds."""
    if field is None:
        return ""
    if isinstance(field, FieldInfo):
        annotation, metadata = field.annotation, list(field.metadata)
    else:
        annotation = _unwrap(field)
        metadata = []
        if typing.get_origin(field) is typing.Annotated:
            for item in typing.get_args(field)[1:]:
                metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    annotation = _strip_optional(annotation)

    if _is_union(_unwrap(annotation)):
        choices = [_allowed_text(member) for member in typing.get_args(_unwrap(annotation))]
        return " or ".join(choice for choice in choices if choice)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a table with keys " + ", ".join(_field_names(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return ", ".join(repr(member.value) for member in annotation)
    if typing.get_origin(annotation) is Literal:
        return ", ".join(repr(v) for v in typing.get_args(annotation))

    low = high = None
    low_open = high_open = False
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low, low_open = item.gt, True
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Lt):
            high, high_open = item.lt, True
    type_name = {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(annotation, "")
    if low is None and high is None:
        return type_name
    parts = []
    if low is not None:
        parts.append(f"{'above' if low_open else 'at least'} {low}")
    if high is not None:
        parts.append(f"{'below' if high_open else 'at most'} {high}")
    return f"{type_name + ' ' if type_name else ''}{' and '.join(parts)}"
