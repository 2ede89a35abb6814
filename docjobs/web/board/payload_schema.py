"""What a job's payload takes, for the trigger page: each field's type, whether it is required,
its default, and a payload that passes the job's checks.

Everything is read from the actor's pydantic payload model (its JSON schema, camelCase
names: :mod:`docjobs.registry.payloads`), so an app's own actors are described as
docjobs' are, and the description cannot drift from what a send accepts.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from docjobs import registry
from docjobs.web.board.actions import ActionError

#: Nested objects are described field by field down to this depth (``meta.emailId``).
MAX_DEPTH = 3
#: Sample values by JSON schema ``format``: each passes pydantic's check of that format.
FORMAT_SAMPLES: Mapping[str, str] = {
    "email": "someone@example.com",
    "ipvanyaddress": "192.0.2.1",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "12:00:00",
    "uuid": "0190d6e0-0000-7000-8000-000000000000",
    "duration": "PT1M",
}

#: JSON schema formats in an admin's words (others are shown as the schema names them).
FORMAT_WORDS: Mapping[str, str] = {
    "email": "email address",
    "ipvanyaddress": "IP address",
    "ipv4": "IPv4 address",
    "ipv6": "IPv6 address",
    "uri": "URL",
    "date-time": "date and time",
    "uuid": "UUID",
}


@dataclass(frozen=True)
class Field:
    """One field of a payload, as the trigger page lists it.

    Attributes:
        name: Its name in the JSON payload, nested ones dotted (``meta.emailId``, ``items[].id``).
        type: Its type in words (``integer``, ``string (email)``, ``one of: A, B``).
        required: A payload must name it (when its parent object is given).
        default: Its default as JSON, ``None`` when it has none.
        description: What the model says of it, if anything.
    """

    name: str
    type: str
    required: bool
    default: str | None
    description: str | None


@dataclass(frozen=True)
class PayloadSchema:
    """A job's payload: its fields and an example that passes the job's checks."""

    job: str
    display_name: str
    fields: list[Field]
    example: dict[str, Any]

    @property
    def described(self) -> bool:
        """Some field has a description (the trigger page shows the column then)."""
        return any(field.description for field in self.fields)

    @property
    def example_json(self) -> str:
        """The example as the trigger form's text (indented JSON)."""
        return json.dumps(self.example, indent=2, ensure_ascii=False)


def of_job(job: str) -> PayloadSchema:
    """The payload of the declared job actor ``job``.

    Raises:
        ActionError: 404 when no job actor is declared as ``job`` (naming the closest that is).
    """
    declared = registry.declared()
    actor = declared.get(job)
    if actor is None:
        raise unknown_job(job, declared)
    return describe(job, actor.display_name, actor.payload_model)


def unknown_job(job: str, declared: Iterable[str]) -> ActionError:
    """The refusal (404) of a job id no actor is declared as, naming the closest that is."""
    close = difflib.get_close_matches(job, list(declared), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ActionError(404, f"no job {job!r} is declared{hint}")


def describe(job: str, display_name: str, model: type[pydantic.BaseModel]) -> PayloadSchema:
    """The fields and an example payload of ``job``, whose payload model is ``model``."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    reader = _SchemaReader(schema.get("$defs", {}))
    return PayloadSchema(
        job=job,
        display_name=display_name,
        fields=reader.fields(schema, "", 0),
        example=reader.example(schema),
    )


class _SchemaReader:
    """Walks one JSON schema, following its ``$ref``\\ s into ``$defs``."""

    def __init__(self, defs: Mapping[str, Any]) -> None:
        self.defs = defs

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        """The node a ``$ref`` points to (merged with the ref's own keys), or the node itself."""
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return node
        target = self.defs[ref.rsplit("/", 1)[-1]]
        return {**target, **{key: value for key, value in node.items() if key != "$ref"}}

    def value_node(self, node: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
        """The node with ``null`` taken out of an ``anyOf`` (``Optional[X]``), and whether null is allowed."""
        node = self.resolve(node)
        options = node.get("anyOf")
        if not isinstance(options, list):
            return node, node.get("type") == "null"
        others = [option for option in options if option.get("type") != "null"]
        nullable = len(others) < len(options)
        if len(others) == 1:
            return {**self.resolve(others[0]), **_annotations(node)}, nullable
        return {**node, "anyOf": others}, nullable

    def type_text(self, node: Mapping[str, Any]) -> str:
        """The type of a schema node, in words."""
        value, nullable = self.value_node(node)
        text = self._plain_type(value)
        return f"{text} or null" if nullable else text

    def _plain_type(self, node: Mapping[str, Any]) -> str:
        if "enum" in node:
            return "one of: " + ", ".join(json.dumps(item) for item in node["enum"])
        if "const" in node:
            return f"exactly {json.dumps(node['const'])}"
        if "anyOf" in node:
            return " or ".join(self.type_text(option) for option in node["anyOf"])
        kind = node.get("type")
        if kind == "array":
            items = node.get("items")
            return f"list of {self.type_text(items)}" if isinstance(items, dict) and items else "list"
        if kind == "object":
            title = node.get("title")
            return f"object ({title})" if title and "properties" in node else "object"
        if kind == "boolean":
            return "true or false"
        if isinstance(kind, str):
            if "format" in node:
                return f"{kind} ({FORMAT_WORDS.get(node['format'], node['format'])})"
            return kind
        return "any JSON value"

    def fields(self, node: Mapping[str, Any], prefix: str, depth: int) -> list[Field]:
        """The fields of an object node, and of its nested objects below ``MAX_DEPTH``."""
        required = set(node.get("required", ()))
        found = []
        for name, child in node.get("properties", {}).items():
            value, _ = self.value_node(child)
            default = json.dumps(child["default"]) if "default" in child else None
            found.append(
                Field(
                    name=prefix + name,
                    type=self.type_text(child),
                    required=name in required,
                    default=default,
                    description=child.get("description") or None,
                )
            )
            if depth + 1 >= MAX_DEPTH:
                continue
            if value.get("type") == "object":
                found += self.fields(value, f"{prefix}{name}.", depth + 1)
            elif value.get("type") == "array" and isinstance(value.get("items"), dict):
                items, _ = self.value_node(value["items"])
                if items.get("type") == "object":
                    found += self.fields(items, f"{prefix}{name}[].", depth + 1)
        return found

    def example(self, node: Mapping[str, Any]) -> Any:
        """A value the node accepts: required fields filled in, optional ones at a non-null default."""
        if node.get("examples"):  # the job's own (a field whose checks a generic sample fails)
            return node["examples"][0]
        value, _ = self.value_node(node)
        if "enum" in value:
            return value["enum"][0]
        if "const" in value:
            return value["const"]
        if "anyOf" in value:
            return self.example(value["anyOf"][0])
        kind = value.get("type")
        if kind == "object":
            example = {}
            required = set(value.get("required", ()))
            for name, child in value.get("properties", {}).items():
                if name in required:
                    example[name] = self.example(child)
                elif child.get("default") is not None:
                    example[name] = child["default"]
            return example
        if kind == "array":
            items = value.get("items")
            minimum = int(value.get("minItems", 0))
            return [self.example(items) for _ in range(max(minimum, 1))] if isinstance(items, dict) else []
        return _scalar(value)


def _scalar(node: Mapping[str, Any]) -> Any:
    kind = node.get("type")
    if kind == "integer":
        return max(1, int(node.get("minimum", node.get("exclusiveMinimum", 0) + 1)))
    if kind == "number":
        return float(node.get("minimum", 1.0))
    if kind == "boolean":
        return False
    if kind == "string":
        sample = FORMAT_SAMPLES.get(str(node.get("format", "")), "text")
        return sample * max(1, -(-int(node.get("minLength", 0)) // len(sample)))
    if kind == "null":
        return None
    return {}  # no type: any JSON value


def _annotations(node: Mapping[str, Any]) -> dict[str, Any]:
    return {key: node[key] for key in ("default", "description") if key in node}
