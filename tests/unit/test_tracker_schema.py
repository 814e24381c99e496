"""The tracker's TypeScript declarations (sdk/sightline.d.ts) match the server's event JSON
Schema: every field with a compatible type, every built-in event type, the typed
properties; and every event the tracker's source emits is a valid event type."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sightline.events import EventType, event_json_schema, is_valid_event_type
from sightline.events.schema import SERVER_FIELDS

ROOT = Path(__file__).resolve().parents[2]
DECLARATIONS = ROOT / "sdk" / "sightline.d.ts"
SOURCE = ROOT / "sdk" / "src"

SCHEMA = event_json_schema()
DEFS = SCHEMA["$defs"]
#: The TypeScript interface declaring each typed-properties schema.
TYPED = {
    "page_view": "PageViewProperties",
    "product_view": "ProductViewProperties",
    "affiliate_click": "AffiliateClickProperties",
    "scroll_depth": "ScrollDepthProperties",
}


class Field:
    def __init__(self, name: str, optional: bool, readonly: bool, type_: str) -> None:
        self.name = name
        self.optional = optional
        self.readonly = readonly
        self.type = type_

    def __repr__(self) -> str:
        prefix = "readonly " if self.readonly else ""
        return f"{prefix}{self.name}{'?' if self.optional else ''}: {self.type}"


def declarations() -> str:
    text = DECLARATIONS.read_text()
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def interface(name: str) -> dict[str, Field]:
    """The fields of `export interface <name> { ... }` (one field per line)."""
    match = re.search(rf"^export interface {name} \{{\n(.*?)^\}}", declarations(), re.S | re.M)
    assert match, f"interface {name} is not declared in {DECLARATIONS.name}"
    fields: dict[str, Field] = {}
    for line in match.group(1).splitlines():
        line = line.split("//")[0].strip()
        found = re.fullmatch(r"(readonly\s+)?(\w+)(\?)?:\s*(.+)", line)
        if found:
            readonly, field_name, optional, type_ = found.groups()
            fields[field_name] = Field(field_name, bool(optional), bool(readonly), type_.strip())
    return fields


def union(name: str) -> set[str]:
    match = re.search(rf"^export type {name} =\n(.*?)\n\n", declarations(), re.S | re.M)
    assert match, f"type {name} is not declared"
    return set(re.findall(r"'([^']+)'", match.group(1)))


def schema_types(spec: dict[str, Any]) -> set[str]:
    """JSON Schema types of a property, null included ('integer' counts as 'number')."""
    options = spec.get("anyOf", [spec])
    found = set()
    for option in options:
        kind = option.get("type")
        if kind is None and "enum" in option:
            kind = "string"
        if kind is not None:
            found.add("number" if kind == "integer" else kind)
    return found


def ts_types(type_: str) -> set[str]:
    aliases = {"EventName": "string", "Properties": "object", "Record<string, unknown>": "object"}
    return {aliases.get(part.strip(), part.strip()) for part in type_.split("|")}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def test_event_type_union_is_the_servers_event_types() -> None:
    assert union("EventType") == {t.value for t in EventType}
    schema_enum = DEFS["Event"]["properties"]["eventType"]["anyOf"][0]["enum"]
    assert union("EventType") == set(schema_enum)


def test_event_interface_has_every_schema_field_with_a_compatible_type() -> None:
    schema = DEFS["Event"]
    fields = interface("SightlineEvent")
    assert set(fields) == set(schema["properties"]), "fields differ from the schema's"
    required = set(schema.get("required", []))
    server_owned = {camel(name) for name in SERVER_FIELDS}
    for name, spec in schema["properties"].items():
        field = fields[name]
        assert ts_types(field.type) == schema_types(spec), (field, spec)
        assert field.optional == (name not in required), field
        assert field.readonly == (name in server_owned), field


@pytest.mark.parametrize(("event_type", "name"), sorted(TYPED.items()))
def test_typed_properties_match(event_type: str, name: str) -> None:
    typed = DEFS["typedProperties"][event_type]
    schema = typed["$defs"][name]
    fields = interface(name)
    assert set(fields) == set(schema["properties"])
    for prop, spec in schema["properties"].items():
        field = fields[prop]
        assert ts_types(field.type) == schema_types(spec), (field, spec)
        assert field.optional == (prop not in schema.get("required", [])), field
    assert set(DEFS["typedProperties"]) == set(TYPED)


@pytest.mark.parametrize("name", ["CollectRequest", "Metadata"])
def test_request_shapes_match(name: str) -> None:
    schema = DEFS[name]
    fields = interface(name)
    assert set(fields) == set(schema["properties"])
    for prop in schema["properties"]:
        assert fields[prop].optional == (prop not in schema.get("required", [])), fields[prop]
    if name == "CollectRequest":
        assert fields["events"].type == "SightlineEvent[]"


def test_every_event_the_tracker_emits_is_a_valid_event_type() -> None:
    emitted: set[str] = set()
    for path in SOURCE.glob("*.js"):
        emitted |= set(re.findall(r"\b(?:emit|make)\(\s*'([^']+)'", path.read_text()))
    assert {"page_view", "session_start", "affiliate_click", "js_error"} <= emitted
    for name in emitted:
        assert is_valid_event_type(name), name
    # the helpers' event names come from their method names
    helpers = re.findall(r"^  (\w+): '", (SOURCE / "extras.js").read_text(), re.M)
    assert helpers
    for helper in helpers:
        event_type = re.sub(r"(?<!^)([A-Z])", r"_\1", helper).lower()
        assert event_type in {t.value for t in EventType}, helper
        assert f"track{helper}(" in DECLARATIONS.read_text()
