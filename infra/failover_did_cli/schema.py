"""Local DynamoDB tables derived from template.yaml, the single source of truth for the table schemas.

The local stack and the tests create their tables through `create_tables`, and learn which environment
variable carries which table name through `table_env`/`local_environment`; nothing else restates a key
schema.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_ENV = "FAILOVER_DID_TEMPLATE"
_REPO_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
TEMPLATE_PATH: Path = Path(os.environ.get(TEMPLATE_ENV) or _REPO_TEMPLATE)

TABLE_NAME_PREFIX = "failover-did"

_TABLE_TYPE = "AWS::DynamoDB::Table"
_SIMPLE_TABLE_TYPE = "AWS::Serverless::SimpleTable"
_FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")

# boto3 create_table accepts these keys of an index; CloudFormation adds its own (ContributorInsights...).
_GSI_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput", "OnDemandThroughput")
_LSI_KEYS = ("IndexName", "KeySchema", "Projection")
_SIMPLE_TABLE_TYPES = {"String": "S", "Number": "N", "Binary": "B"}


# --------------------------------------------------------------------------------------------------
# Loading the template
# --------------------------------------------------------------------------------------------------

# Short tag -> long form. !Ref and !Condition are not "Fn::" functions; !GetAtt takes a dotted scalar.
_SHORT_TAGS: dict[str, str] = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    **{
        name: f"Fn::{name}"
        for name in (
            "Sub",
            "If",
            "Equals",
            "Not",
            "And",
            "Or",
            "Join",
            "Select",
            "Split",
            "FindInMap",
            "ImportValue",
            "Base64",
            "Cidr",
            "GetAZs",
            "Transform",
            "Length",
            "ToJsonString",
        )
    },
}


_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where PyYAML has it (5x faster)


class CfnLoader(_SafeLoader):  # type: ignore[misc]
    """A safe YAML loader that turns CloudFormation short tags (`!Ref x`) into their long form."""


def _construct_intrinsic(loader: yaml.constructor.SafeConstructor, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = _SHORT_TAGS.get(tag_suffix)
    if key is None:
        raise yaml.constructor.ConstructorError(
            None, None, f"unknown CloudFormation tag !{tag_suffix}", node.start_mark
        )
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if key == "Fn::GetAtt":
            resource, _, attribute = str(value).partition(".")
            value = [resource, attribute]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no other node kinds
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{tag_suffix}", node.start_mark)
    return {key: value}


CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def template_path() -> Path:
    """The template in use: $FAILOVER_DID_TEMPLATE if set (read at call time), else the repo's."""
    override = os.environ.get(TEMPLATE_ENV)
    return Path(override) if override else TEMPLATE_PATH


def load_template(path: Path | None = None) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template; short tags come back in their long (JSON) form."""
    path = path or template_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"template not found: {path} (set {TEMPLATE_ENV} to its path)") from exc
    data = yaml.load(text, Loader=CfnLoader)  # CfnLoader is a SafeLoader
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise ValueError(f"{path}: not a CloudFormation template (no Resources mapping)")
    return data


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    """One table of the template: `create_kwargs` go to boto3 `create_table` (plus a TableName)."""

    logical_id: str
    create_kwargs: dict[str, Any] = field(default_factory=dict)
    ttl_attribute: str | None = None

    @property
    def hash_key(self) -> str:
        return _key_of(self.create_kwargs["KeySchema"], "HASH") or ""

    @property
    def range_key(self) -> str | None:
        return _key_of(self.create_kwargs["KeySchema"], "RANGE")

    @property
    def attribute_types(self) -> dict[str, str]:
        """Attribute name -> DynamoDB scalar type (S, N, B) for every declared key attribute."""
        return {a["AttributeName"]: a["AttributeType"] for a in self.create_kwargs["AttributeDefinitions"]}


def _key_of(key_schema: list[dict[str, str]], key_type: str) -> str | None:
    return next((k["AttributeName"] for k in key_schema if k["KeyType"] == key_type), None)


_INTRINSIC_KEYS = frozenset(_SHORT_TAGS.values())


def _is_intrinsic(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _INTRINSIC_KEYS


def _literal(value: Any, where: str) -> Any:
    """Reject intrinsics anywhere in a value the local tables need literally."""
    if _is_intrinsic(value):
        raise ValueError(f"{where}: {value!r} is an intrinsic; local tables need literal values")
    if isinstance(value, dict):
        return {k: _literal(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _dynamodb_table_spec(logical_id: str, props: Mapping[str, Any]) -> TableSpec:
    where = f"Resources.{logical_id}.Properties"
    kwargs: dict[str, Any] = {
        "AttributeDefinitions": _literal(props["AttributeDefinitions"], f"{where}.AttributeDefinitions"),
        "KeySchema": _literal(props["KeySchema"], f"{where}.KeySchema"),
        "BillingMode": _literal(props.get("BillingMode", "PROVISIONED"), f"{where}.BillingMode"),
    }
    if "ProvisionedThroughput" in props:
        kwargs["ProvisionedThroughput"] = _literal(props["ProvisionedThroughput"], where)
    for prop, allowed in (("GlobalSecondaryIndexes", _GSI_KEYS), ("LocalSecondaryIndexes", _LSI_KEYS)):
        if props.get(prop):
            indexes = _literal(props[prop], f"{where}.{prop}")
            kwargs[prop] = [{k: index[k] for k in allowed if k in index} for index in indexes]
    ttl_attribute = None
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ttl = _literal(ttl, f"{where}.TimeToLiveSpecification")
        if ttl.get("Enabled") is True or str(ttl.get("Enabled")).lower() == "true":
            ttl_attribute = str(ttl["AttributeName"])
    return TableSpec(logical_id, kwargs, ttl_attribute)


def _simple_table_spec(logical_id: str, props: Mapping[str, Any]) -> TableSpec:
    key = _literal(props.get("PrimaryKey") or {"Name": "id", "Type": "String"}, logical_id)
    kwargs: dict[str, Any] = {
        "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": _SIMPLE_TABLE_TYPES[key["Type"]]}],
        "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
        "BillingMode": "PROVISIONED" if props.get("ProvisionedThroughput") else "PAY_PER_REQUEST",
    }
    if props.get("ProvisionedThroughput"):
        kwargs["ProvisionedThroughput"] = _literal(props["ProvisionedThroughput"], logical_id)
    return TableSpec(logical_id, kwargs, None)


def table_specs(template: Mapping[str, Any] | None = None) -> dict[str, TableSpec]:
    """Logical id -> TableSpec for every DynamoDB table of the template (in template order)."""
    template = load_template() if template is None else template
    specs: dict[str, TableSpec] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        if kind == _TABLE_TYPE:
            specs[logical_id] = _dynamodb_table_spec(logical_id, props)
        elif kind == _SIMPLE_TABLE_TYPE:
            specs[logical_id] = _simple_table_spec(logical_id, props)
    return specs


def default_table_name(logical_id: str) -> str:
    """`RulesTable` -> `failover-did-rules`, `CallAuditTable` -> `failover-did-call-audit`."""
    stem = logical_id.removesuffix("Table") or logical_id
    kebab = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", stem).lower()
    return f"{TABLE_NAME_PREFIX}-{kebab}"


# --------------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------------


def _env_variables(properties: Mapping[str, Any] | None) -> Mapping[str, Any]:
    env = (properties or {}).get("Environment") or {}
    variables = env.get("Variables") if isinstance(env, Mapping) else None
    return variables if isinstance(variables, Mapping) else {}


def table_env(
    template: Mapping[str, Any] | None = None, function_logical_id: str | None = "VoiceFunction"
) -> dict[str, str]:
    """Env var name -> table logical id, for every variable whose value is `!Ref <a table>`.

    Looks at the Globals' function environment and at `function_logical_id`'s (or, with None, at every
    function's). Raises KeyError when the named function is not in the template.
    """
    template = load_template() if template is None else template
    tables = set(table_specs(template))
    resources: Mapping[str, Any] = template.get("Resources", {})
    if function_logical_id is None:
        functions = [r for r in resources.values() if r.get("Type") in _FUNCTION_TYPES]
    else:
        resource = resources.get(function_logical_id)
        if resource is None or resource.get("Type") not in _FUNCTION_TYPES:
            raise KeyError(f"no function {function_logical_id!r} in the template")
        functions = [resource]
    sources = [_env_variables((template.get("Globals") or {}).get("Function"))]
    sources += [_env_variables(f.get("Properties")) for f in functions]
    mapping: dict[str, str] = {}
    for variables in sources:
        for name, value in variables.items():
            if isinstance(value, Mapping) and set(value) == {"Ref"} and value["Ref"] in tables:
                mapping[str(name)] = str(value["Ref"])
    return mapping


def local_environment(names: Mapping[str, str], template: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Env var -> table name for the local stack, given logical id -> table name (`create_tables`'s)."""
    env = table_env(template, None)
    return {var: names[logical_id] for var, logical_id in env.items() if logical_id in names}


# --------------------------------------------------------------------------------------------------
# Creating tables
# --------------------------------------------------------------------------------------------------


def create_tables(
    client: Any,
    names: Mapping[str, str] | None = None,
    template: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Create every table of the template on a boto3 DynamoDB client (moto, moto server, DynamoDB Local).

    `names` overrides logical id -> table name (default `default_table_name`). Idempotent: an existing
    table is left as is (TTL is still switched on if missing). Waits until each table is ACTIVE.
    Returns logical id -> table name.
    """
    names = names or {}
    created: dict[str, str] = {}
    for logical_id, spec in table_specs(template).items():
        table_name = names.get(logical_id) or default_table_name(logical_id)
        with contextlib.suppress(client.exceptions.ResourceInUseException):  # already there
            client.create_table(TableName=table_name, **spec.create_kwargs)
        client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        if spec.ttl_attribute:
            _ensure_ttl(client, table_name, spec.ttl_attribute)
        created[logical_id] = table_name
    return created


def _ensure_ttl(client: Any, table_name: str, attribute: str) -> None:
    current = client.describe_time_to_live(TableName=table_name).get("TimeToLiveDescription", {})
    if current.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"} and current.get("AttributeName") == attribute:
        return
    client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"AttributeName": attribute, "Enabled": True}
    )
