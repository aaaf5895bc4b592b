"""Example Outrider transformer in Python: keeps selected fields of a JSON event and
optionally splits it into one output per element of a list field.

Built into a WebAssembly component by componentize-py against the `transformer-plugin`
world of `outrider:plugin@0.1.0`. componentize-py generates the `wit_world` package at
build time: each exported interface is a class of that name here (`Plugin`,
`Transformer`); records are dataclasses with snake_case fields; an error `result` is
raised as `componentize_py_types.Err(value)`.

Config:
- `keep`: comma-separated top-level keys to keep (all when empty).
- `split_on`: key of a list field; each element becomes one output with the kept fields
  and `split_on` set to that element. An empty list yields no output (a filter).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types
from wit_world.exports.transformer import (
    TransformError_InvalidInput,
    TransformError_Misconfigured,
)

PROTOTYPE = "py_reshape"


def text_field(key: str, label: str, description: str) -> types.Field:
    return types.Field(
        key=key,
        type=types.FieldType.TEXT,
        label=label,
        description=description,
        required=False,
        sensitive=False,
        default=None,
        min_length=None,
        max_length=200,
        pattern=None,
        options=[],
        generate=None,
    )


def test_case(name: str, config: dict, data, expected) -> types.TestCase:
    return types.TestCase(
        name=name,
        prototype=PROTOTYPE,
        config=json.dumps(config),
        credentials="{}",
        input=json.dumps(data),
        expected=json.dumps(expected),
        expect_error=False,
    )


class Plugin(exports.Plugin):
    def manifest(self) -> types.Manifest:
        return types.Manifest(
            name="python-transformer",
            version="0.1.0",
            description="Example: keep fields and split lists, written in Python.",
            prototypes=[
                types.Prototype(
                    id=PROTOTYPE,
                    kind=types.PrototypeKind.TRANSFORMER,
                    label="Reshape (Python example)",
                    description="Keep selected fields; split a list into one event per element.",
                    icon="",
                    instructions="`keep`: comma-separated keys to keep. `split_on`: a list field to split on.",
                    setup_link=None,
                    config_fields=[
                        text_field("keep", "Keep", "Comma-separated top-level keys to keep"),
                        text_field("split_on", "Split on", "A list field: one output per element"),
                    ],
                    credential_fields=[],
                    network=types.NetworkAccess(hosts=[], url_fields=[], tcp=False),
                )
            ],
        )

    def self_tests(self) -> list[types.TestCase]:
        return [
            test_case("keeps fields", {"keep": "a"}, {"a": 1, "b": 2}, [{"a": 1}]),
            test_case(
                "splits a list",
                {"split_on": "items"},
                {"order": 7, "items": [1, 2]},
                [{"order": 7, "items": 1}, {"order": 7, "items": 2}],
            ),
            test_case("an empty list drops the event", {"split_on": "items"}, {"items": []}, []),
        ]


def settings(prototype: str, config_json: str) -> tuple[list[str], str]:
    """The checked configuration, or every problem, each naming its field."""
    errors = []
    if prototype != PROTOTYPE:
        errors.append(types.FieldError("prototype", f"`{prototype}` is not a transformer prototype of this plugin"))
    config = json.loads(config_json)
    keep = config.get("keep") or ""
    split_on = config.get("split_on") or ""
    if not isinstance(keep, str):
        errors.append(types.FieldError("config.keep", "config.keep must be a string"))
        keep = ""
    if not isinstance(split_on, str):
        errors.append(types.FieldError("config.split_on", "config.split_on must be a string"))
        split_on = ""
    if errors:
        raise Err(errors)
    return [k.strip() for k in keep.split(",") if k.strip()], split_on.strip()


class Transformer(exports.Transformer):
    def validate(self, prototype: str, config: str, credentials: str) -> None:
        settings(prototype, config)

    def transform(self, target: types.Target, input: str) -> list[str]:
        try:
            keep, split_on = settings(target.prototype, target.config)
        except Err as e:
            raise Err(TransformError_Misconfigured("; ".join(f.message for f in e.value)))
        event = json.loads(input)
        if not isinstance(event, dict):
            raise Err(TransformError_InvalidInput("input must be a JSON object"))
        base = {k: v for k, v in event.items() if not keep or k in keep or k == split_on}
        if not split_on:
            return [json.dumps(base)]
        items = event.get(split_on)
        if not isinstance(items, list):
            raise Err(TransformError_InvalidInput(f"`{split_on}` must be a list"))
        return [json.dumps({**base, split_on: item}) for item in items]
