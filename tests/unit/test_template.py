"""template.yaml: lints clean, translates, keeps secrets out of the environment, grants least privilege,
and agrees with the PynamoDB models (the template is the single source of truth for the table schemas)."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint_file
from pynamodb.models import Model

from failover_did.store import tables
from failover_did.store.tables import CallItem, CallLogItem, EventItem, HealthShard, RuleItem, RulesSetItem
from failover_did_cli import schema

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"

EXPECTED_ENV = {
    "RULES_TABLE_NAME": {"Ref": "RulesTable"},
    "CALLS_TABLE_NAME": {"Ref": "CallsTable"},
    "HEALTH_TABLE_NAME": {"Ref": "HealthTable"},
    "EVENTS_TABLE_NAME": {"Ref": "EventsTable"},
    "CALL_LOG_TABLE_NAME": {"Ref": "CallLogTable"},
    "HEALTH_DOWN_AFTER": {"Ref": "HealthDownAfter"},
    "HEALTH_UP_AFTER": {"Ref": "HealthUpAfter"},
    "FALLBACK_BUCKET": {"Ref": "FallbackBucket"},
    "DETAILED_METRICS": {"Ref": "DetailedMetrics"},
    "TWILIO_AUTH_TOKEN_PARAM": {"Ref": "TwilioAuthTokenParameterName"},
    "PUBLIC_BASE_URL": {"Ref": "PublicBaseUrl"},
    "TWILIO_ACCOUNT_SID": {"Ref": "TwilioAccountSid"},
    "NOTIFY_TOPIC_ARN": {"Ref": "NotifyTopic"},
    "POWERTOOLS_SERVICE_NAME": "failover-did",
    "POWERTOOLS_METRICS_NAMESPACE": "FailoverDid",
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
}


# ---------------------------------------------------------------------------------------------------
# Linting and translation
# ---------------------------------------------------------------------------------------------------


def test_cfn_lint_reports_no_errors_or_warnings() -> None:
    # Informational checks run too, but only errors (E) and warnings (W) fail the test.
    matches = lint_file(TEMPLATE, config=ManualArgs(include_checks=["I"], regions=["us-east-1", "eu-west-1"]))
    problems = [m for m in matches if m.rule.id[0] in "EW"]
    assert not problems, "\n".join(f"{m.rule.id} line {m.linenumber}: {m.message}" for m in problems)


def test_sam_translator_produces_the_expected_resources(translated: dict[str, Any]) -> None:
    types = {name: res["Type"] for name, res in translated["Resources"].items()}
    assert types["VoiceFunction"] == "AWS::Lambda::Function"
    assert types["VoiceFunctionRole"] == "AWS::IAM::Role"
    assert types["VoiceApi"] == "AWS::ApiGatewayV2::Api"
    assert types["RulesTable"] == types["CallsTable"] == "AWS::DynamoDB::Table"
    assert "Transform" not in translated


def test_function_runtime_settings(translated: dict[str, Any]) -> None:
    props = translated["Resources"]["VoiceFunction"]["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "failover_did.webhook.app.handler"
    assert props["MemorySize"] == 512
    assert props["Timeout"] == 10
    assert "TracingConfig" not in props
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": "VoiceFunctionLogGroup"}
    log_group = translated["Resources"]["VoiceFunctionLogGroup"]
    assert log_group["Properties"]["RetentionInDays"] == 30


def test_api_routes_and_throttling(translated: dict[str, Any]) -> None:
    paths = translated["Resources"]["VoiceApi"]["Properties"]["Body"]["paths"]
    # The webhook takes only POSTs; the console's pages are read (GET) and its forms posted, on the same API.
    routes = {path: sorted(methods) for path, methods in paths.items()}
    assert routes == {
        "/voice": ["post"],
        "/voice/{proxy+}": ["post"],
        "/console": ["get", "post"],
        "/console/{proxy+}": ["get", "post"],
    }
    for path, methods in paths.items():
        function = "ConsoleFunction" if path.startswith("/console") else "VoiceFunction"
        for method in methods.values():
            integration = method["x-amazon-apigateway-integration"]
            assert integration["payloadFormatVersion"] == "2.0"
            assert f"${{{function}.Arn}}" in integration["uri"]["Fn::Sub"], (path, integration["uri"])
    stages = [r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert len(stages) == 1
    assert stages[0]["Properties"]["StageName"] == "$default"
    settings = stages[0]["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingBurstLimit"] > 0
    assert settings["ThrottlingRateLimit"] > 0


# ---------------------------------------------------------------------------------------------------
# Secrets and permissions
# ---------------------------------------------------------------------------------------------------


def test_function_environment(translated: dict[str, Any]) -> None:
    variables = translated["Resources"]["VoiceFunction"]["Properties"]["Environment"]["Variables"]
    assert variables == EXPECTED_ENV


def test_no_secret_in_the_environment(translated: dict[str, Any]) -> None:
    variables = translated["Resources"]["VoiceFunction"]["Properties"]["Environment"]["Variables"]
    params = translated["Parameters"]
    assert "TWILIO_AUTH_TOKEN" not in variables
    for name, value in variables.items():
        text = repr(value)
        assert "resolve:ssm-secure" not in text and "resolve:secretsmanager" not in text, name
        if isinstance(value, str):
            assert not re.fullmatch(r"[0-9a-fA-F]{32}", value), f"{name} looks like an auth token"
        if re.search(r"TOKEN|SECRET|PASSWORD|API_KEY", name):
            # only the *name* of where the secret lives, taken from a parameter with a non-secret default
            assert name.endswith("_PARAM"), name
            assert isinstance(value, dict) and set(value) == {"Ref"}, name
            assert params[value["Ref"]]["Default"].startswith("/"), name


def _policy_statements(translated: dict[str, Any], function: str = "VoiceFunction") -> list[dict[str, Any]]:
    role_id = translated["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = translated["Resources"][role_id]["Properties"]
    assert all(arn.endswith(":policy/service-role/AWSLambdaBasicExecutionRole") for arn in _arns(role))
    return [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]


def _arns(role: dict[str, Any]) -> list[str]:
    return [a if isinstance(a, str) else a["Fn::Sub"] for a in role.get("ManagedPolicyArns", [])]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


FUNCTIONS = ("VoiceFunction", "HealthCheckFunction", "FormatterFunction", "NoticeFlushFunction", "ConsoleFunction")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_policies_name_only_specific_resources(translated: dict[str, Any], function: str) -> None:
    statements = _policy_statements(translated, function)
    assert statements
    for statement in statements:
        actions = _as_list(statement["Action"])
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in actions:
            assert "*" not in action, f"wildcard action {action}"
        for resource in _as_list(statement["Resource"]):
            assert resource != "*", f"Resource '*' for {actions}"
            # the one wildcard allowed: objects under a fixed prefix of our own bucket
            text = repr(resource).replace("${FallbackBucket.Arn}/private/*", "")
            text = text.replace("${FallbackBucket.Arn}/fallback/*", "")
            assert "*" not in text, f"wildcard resource for {actions}: {resource}"


def _grants(translated: dict[str, Any], function: str) -> dict[str, list[str]]:
    """Each action with the resources it is allowed on; a grant with a condition reads "Resource if {...}"."""
    grants: dict[str, list[str]] = {}
    for statement in _policy_statements(translated, function):
        condition = f" if {json.dumps(statement['Condition'], sort_keys=True)}" if "Condition" in statement else ""
        for action in _as_list(statement["Action"]):
            grants.setdefault(action, []).extend(
                (r["Fn::GetAtt"][0] if isinstance(r, dict) and "Fn::GetAtt" in r else repr(r)) + condition
                for r in _as_list(statement["Resource"])
            )
    return {action: sorted(resources) for action, resources in grants.items()}


def test_policies_grant_exactly_what_the_webhook_needs(translated: dict[str, Any]) -> None:
    grants = _grants(translated, "VoiceFunction")
    ssm = grants.pop("ssm:GetParameter")
    assert grants == {
        "dynamodb:GetItem": ["CallLogTable", "CallsTable", "HealthTable", "RulesTable"],
        "dynamodb:PutItem": ["CallsTable", "EventsTable", "HealthTable"],
        "dynamodb:UpdateItem": ["CallLogTable", "EventsTable", "HealthTable"],
        "dynamodb:Query": ["EventsTable"],
        "dynamodb:BatchGetItem": ["HealthTable"],
        "sns:Publish": [repr({"Ref": "NotifyTopic"})],
        "s3:GetObject": [repr({"Fn::Sub": "${FallbackBucket.Arn}/private/*"})],
    }
    (ssm_resource,) = ssm
    assert "TwilioAuthTokenParameterName" in ssm_resource


def test_policies_grant_exactly_what_the_health_checker_needs(translated: dict[str, Any]) -> None:
    assert _grants(translated, "HealthCheckFunction") == {
        "dynamodb:Scan": ["HealthTable", "RulesTable"],
        "dynamodb:GetItem": ["HealthTable"],
        "dynamodb:PutItem": ["EventsTable", "HealthTable"],
        "dynamodb:BatchWriteItem": ["EventsTable"],
    }


def test_policies_grant_exactly_what_the_formatter_needs(translated: dict[str, Any]) -> None:
    from failover_did.alerts.dedupe import ALERTS_PARTITION

    own_partition = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [ALERTS_PARTITION]}}
    assert _grants(translated, "FormatterFunction") == {
        "sns:Publish": [repr({"Ref": "NotifyTopic"})],
        "dynamodb:Scan": ["EventsTable", "HealthTable", "RulesTable"],
        "dynamodb:Query": ["EventsTable"],
        # only its own "what was sent" records: never a number's events or counts
        "dynamodb:PutItem": [f"EventsTable if {json.dumps(own_partition, sort_keys=True)}"],
        # SAM's grant for the on-failure destination: an alarm the formatter could not deliver is kept
        "sqs:SendMessage": ["FormatterDeadLetterQueue"],
    }


def test_policies_grant_exactly_what_the_console_needs(translated: dict[str, Any]) -> None:
    """Rules read and written as `rules apply` writes one number (a transaction: Put/Delete per item, the
    rules-set item in the same table), health read, events read plus the audit batch, the call log read
    through its two named indexes, the token for the drill. No Cognito grant: signing in, answering the
    new-password challenge and signing out are Cognito's public operations."""
    grants = _grants(translated, "ConsoleFunction")
    ssm = grants.pop("ssm:GetParameter")
    index = "${CallLogTable.Arn}/index/"
    assert grants == {
        "dynamodb:GetItem": ["RulesTable"],
        "dynamodb:Scan": ["EventsTable", "HealthTable", "RulesTable"],
        "dynamodb:PutItem": ["RulesTable"],
        "dynamodb:DeleteItem": ["RulesTable"],
        "dynamodb:BatchGetItem": ["CallLogTable", "EventsTable", "HealthTable"],
        "dynamodb:Query": ["EventsTable", repr({"Fn::Sub": index + "by-day"}), repr({"Fn::Sub": index + "by-number"})],
        "dynamodb:BatchWriteItem": ["EventsTable"],
        # the number's static fallback, as `rules apply` publishes it: the public document and the private copy
        "s3:GetObject": [repr({"Fn::Sub": "${FallbackBucket.Arn}/fallback/*"})],
        "s3:PutObject": [
            repr({"Fn::Sub": "${FallbackBucket.Arn}/fallback/*"}),
            repr({"Fn::Sub": "${FallbackBucket.Arn}/private/*"}),
        ],
        "s3:DeleteObject": [
            repr({"Fn::Sub": "${FallbackBucket.Arn}/fallback/*"}),
            repr({"Fn::Sub": "${FallbackBucket.Arn}/private/*"}),
        ],
        # the missed-call recipients' subscriptions, synced as `rules apply` does: on the NotifyTopic only
        "sns:ListSubscriptionsByTopic": [repr({"Ref": "NotifyTopic"})],
        "sns:GetSubscriptionAttributes": [repr({"Ref": "NotifyTopic"})],
        "sns:Subscribe": [repr({"Ref": "NotifyTopic"})],
        "sns:SetSubscriptionAttributes": [repr({"Ref": "NotifyTopic"})],
        "sns:Unsubscribe": [repr({"Ref": "NotifyTopic"})],
    }
    (ssm_resource,) = ssm
    assert "TwilioAuthTokenParameterName" in ssm_resource
    assert not any(action.startswith("cognito") for action in grants)
    assert "sns:Publish" not in grants


def test_the_call_log_indexes_the_console_may_query_exist(template: dict[str, Any]) -> None:
    indexes = {
        index["IndexName"] for index in template["Resources"]["CallLogTable"]["Properties"]["GlobalSecondaryIndexes"]
    }
    assert indexes == {"by-number", "by-day"}


def test_no_grant_is_conditional_but_the_formatters_own_partition(translated: dict[str, Any]) -> None:
    conditional = [
        (function, statement["Sid"])
        for function in FUNCTIONS
        for statement in _policy_statements(translated, function)
        if "Condition" in statement
    ]
    assert conditional == [("FormatterFunction", "RecordAlertsSent")]


def test_api_access_log_is_compact_json_kept_30_days(translated: dict[str, Any]) -> None:
    stage = next(r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage")
    settings = stage["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    group = translated["Resources"]["ApiAccessLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup" and group["Properties"]["RetentionInDays"] == 30
    line = settings["Format"]
    fields = json.loads(line)  # one JSON object per request
    assert set(fields) == {
        "requestId", "ip", "time", "method", "path", "status", "bytes", "latencyMs",
        "integrationStatus", "error", "integrationError",
    }  # fmt: skip
    assert all(value.startswith("$context.") for value in fields.values())
    # nothing that carries a signature, a caller's number or a token: no headers, query strings or bodies
    assert not re.search(r"header|querystring|body|authorizer", line, re.IGNORECASE)
    assert len(line) < 500


def test_health_checker_runs_on_its_schedule(template: dict[str, Any]) -> None:
    function = template["Resources"]["HealthCheckFunction"]["Properties"]
    assert function["Handler"] == "failover_did.health.checker.handler"
    (event,) = function["Events"].values()
    assert event["Type"] == "Schedule" and event["Properties"]["Schedule"] == {"Ref": "HealthCheckSchedule"}
    assert template["Parameters"]["HealthCheckSchedule"]["Default"] == "rate(1 minute)"


def _evaluate(node: Any, params: dict[str, str], conditions: dict[str, Any]) -> Any:
    """Just enough of CloudFormation's intrinsics to resolve the SSM parameter ARN."""
    if isinstance(node, list):
        return [_evaluate(n, params, conditions) for n in node]
    if not isinstance(node, dict):
        return node
    ((fn, arg),) = node.items()
    if fn == "Ref":
        return params[arg]
    if fn == "Fn::Split":
        sep, text = _evaluate(arg, params, conditions)
        return text.split(sep)
    if fn == "Fn::Select":
        index, items = _evaluate(arg, params, conditions)
        return items[int(index)]
    if fn == "Fn::Equals":
        left, right = _evaluate(arg, params, conditions)
        return left == right
    if fn == "Fn::If":
        name, yes, no = arg
        return _evaluate(yes if _evaluate(conditions[name], params, conditions) else no, params, conditions)
    if fn == "Fn::Sub":
        return re.sub(r"\$\{([^}]+)\}", lambda m: params[m.group(1)], arg)
    raise AssertionError(f"unexpected intrinsic {fn}")


@pytest.mark.parametrize(
    ("name", "arn_suffix"),
    [
        ("/failover-did/twilio-auth-token", "parameter/failover-did/twilio-auth-token"),
        ("/x", "parameter/x"),
        ("twilio-auth-token", "parameter/twilio-auth-token"),
    ],
)
@pytest.mark.parametrize("function", ["VoiceFunction", "ConsoleFunction"])
def test_ssm_grant_is_the_exact_parameter_arn(
    translated: dict[str, Any], name: str, arn_suffix: str, function: str
) -> None:
    pattern = translated["Parameters"]["TwilioAuthTokenParameterName"]["AllowedPattern"]
    assert re.fullmatch(pattern, name)
    statements = _policy_statements(translated, function)
    (statement,) = [s for s in statements if "ssm:GetParameter" in _as_list(s["Action"])]
    params = {
        "TwilioAuthTokenParameterName": name,
        "AWS::Partition": "aws",
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
    }
    arn = _evaluate(statement["Resource"], params, translated["Conditions"])
    assert arn == f"arn:aws:ssm:us-east-1:123456789012:{arn_suffix}"


@pytest.mark.parametrize("name", ["", "a/b", "/a/", "/a b", "/a//b"])
def test_parameter_name_pattern_rejects_malformed_names(template: dict[str, Any], name: str) -> None:
    pattern = template["Parameters"]["TwilioAuthTokenParameterName"]["AllowedPattern"]
    assert not re.fullmatch(pattern, name)


def test_parameters(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["TwilioAuthTokenParameterName"]["Default"] == "/failover-did/twilio-auth-token"
    assert params["PublicBaseUrl"]["Default"] == ""
    assert re.fullmatch(params["PublicBaseUrl"]["AllowedPattern"], "https://voice.example.com")
    assert params["LogLevel"]["Default"] in params["LogLevel"]["AllowedValues"]


# ---------------------------------------------------------------------------------------------------
# The operator console: its function and its Cognito user pool
# ---------------------------------------------------------------------------------------------------

CONSOLE_ENV = {
    "CONSOLE_USER_POOL_ID": {"Ref": "ConsoleUserPool"},
    "CONSOLE_CLIENT_ID": {"Ref": "ConsoleUserPoolClient"},
    "RULES_TABLE_NAME": {"Ref": "RulesTable"},
    "HEALTH_TABLE_NAME": {"Ref": "HealthTable"},
    "EVENTS_TABLE_NAME": {"Ref": "EventsTable"},
    "CALL_LOG_TABLE_NAME": {"Ref": "CallLogTable"},
    "HEALTH_DOWN_AFTER": {"Ref": "HealthDownAfter"},
    "HEALTH_UP_AFTER": {"Ref": "HealthUpAfter"},
    "DYNAMODB_TIMEOUT_SECONDS": "5",
    "TWILIO_AUTH_TOKEN_PARAM": {"Ref": "TwilioAuthTokenParameterName"},
    "PUBLIC_BASE_URL": {"Ref": "PublicBaseUrl"},
    "TWILIO_ACCOUNT_SID": {"Ref": "TwilioAccountSid"},
    "FALLBACK_BUCKET": {"Ref": "FallbackBucket"},
    "FALLBACK_BASE_URL": {"Fn::Sub": "https://${FallbackBucket.RegionalDomainName}/fallback/"},
    "NOTIFY_TOPIC_ARN": {"Ref": "NotifyTopic"},
    "POWERTOOLS_SERVICE_NAME": "failover-did",
    "POWERTOOLS_METRICS_NAMESPACE": "FailoverDid",
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
}


def test_console_function_settings(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    props = resources["ConsoleFunction"]["Properties"]
    voice = resources["VoiceFunction"]["Properties"]
    assert props["Handler"] == "failover_did_console.app.handler"
    assert (props["Runtime"], props["Architectures"]) == (voice["Runtime"], voice["Architectures"])
    assert props["Timeout"] < 30  # API Gateway's integration timeout
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": "ConsoleFunctionLogGroup"}
    assert resources["ConsoleFunctionLogGroup"]["Properties"]["RetentionInDays"] == 30
    # the same fallback documents as `rules apply` publishes (the stack's FallbackBaseUrl output)
    base_url = translated["Outputs"]["FallbackBaseUrl"]["Value"]
    assert props["Environment"]["Variables"]["FALLBACK_BASE_URL"] == base_url
    assert props["Environment"]["Variables"] == CONSOLE_ENV
    # the console needs no secret of its own: no client secret, and the Twilio token stays in SSM
    assert not any(re.search(r"SECRET|PASSWORD", name) for name in CONSOLE_ENV)


def test_console_user_pool(template: dict[str, Any]) -> None:
    pool = template["Resources"]["ConsoleUserPool"]["Properties"]
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["UsernameConfiguration"] == {"CaseSensitive": False}
    assert pool["AutoVerifiedAttributes"] == ["email"]
    # nobody signs up: an admin creates each user, and Cognito emails the temporary password
    admin_create = pool["AdminCreateUserConfig"]
    assert admin_create["AllowAdminCreateUserOnly"] is True
    message = admin_create["InviteMessageTemplate"]["EmailMessage"]["Fn::Sub"]
    assert "{username}" in message and "{####}" in message and "/console" in message
    assert pool["EmailConfiguration"] == {"EmailSendingAccount": "COGNITO_DEFAULT"}
    policy = pool["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert policy["RequireLowercase"] and policy["RequireUppercase"] and policy["RequireNumbers"]
    assert 1 <= policy["TemporaryPasswordValidityDays"] <= 7
    assert pool["UserPoolTier"] == "LITE"


def test_console_app_client(template: dict[str, Any]) -> None:
    client = template["Resources"]["ConsoleUserPoolClient"]["Properties"]
    assert client["UserPoolId"] == {"Ref": "ConsoleUserPool"}
    assert client["GenerateSecret"] is False
    assert sorted(client["ExplicitAuthFlows"]) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"]
    assert client["PreventUserExistenceErrors"] == "ENABLED"  # a wrong email reads as a wrong password
    assert client["EnableTokenRevocation"] is True  # logout revokes the refresh token


def test_console_groups_and_first_admin(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    groups = {
        props["GroupName"]: props["UserPoolId"]
        for props in (r["Properties"] for r in resources.values() if r["Type"] == "AWS::Cognito::UserPoolGroup")
    }
    assert groups == {"admin": {"Ref": "ConsoleUserPool"}, "viewer": {"Ref": "ConsoleUserPool"}}

    parameter = template["Parameters"]["ConsoleAdminEmail"]
    assert parameter["Default"] == ""
    for good in ("", "ops@example.com"):
        assert re.fullmatch(parameter["AllowedPattern"], good)
    for bad in ("ops", "ops@", "@example.com", "a b@example.com", "ops@example"):
        assert not re.fullmatch(parameter["AllowedPattern"], bad), bad
    assert template["Conditions"]["HasConsoleAdmin"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ConsoleAdminEmail"}, ""]}]
    }

    user = resources["ConsoleFirstAdmin"]
    assert user["Type"] == "AWS::Cognito::UserPoolUser" and user["Condition"] == "HasConsoleAdmin"
    assert user["Properties"]["Username"] == {"Ref": "ConsoleAdminEmail"}
    assert user["Properties"]["DesiredDeliveryMediums"] == ["EMAIL"]
    attributes = {a["Name"]: a["Value"] for a in user["Properties"]["UserAttributes"]}
    assert attributes == {"email": {"Ref": "ConsoleAdminEmail"}, "email_verified": "true"}
    attachment = resources["ConsoleFirstAdminInGroup"]
    assert attachment["Type"] == "AWS::Cognito::UserPoolUserToGroupAttachment"
    assert attachment["Condition"] == "HasConsoleAdmin" and attachment["DependsOn"] == "ConsoleFirstAdmin"
    assert attachment["Properties"] == {
        "UserPoolId": {"Ref": "ConsoleUserPool"},
        "GroupName": {"Ref": "ConsoleAdminGroup"},
        "Username": {"Ref": "ConsoleAdminEmail"},
    }
    assert resources["ConsoleAdminGroup"]["Properties"]["GroupName"] == "admin"


def test_console_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["ConsoleUrl"]["Value"]["Fn::Sub"] == outputs["ApiBaseUrl"]["Value"]["Fn::Sub"] + "/console"
    assert outputs["ConsoleUserPoolId"]["Value"] == {"Ref": "ConsoleUserPool"}
    assert outputs["ConsoleClientId"]["Value"] == {"Ref": "ConsoleUserPoolClient"}


# ---------------------------------------------------------------------------------------------------
# Tables vs. the PynamoDB models
# ---------------------------------------------------------------------------------------------------


def test_table_env_maps_the_table_variables(template: dict[str, Any]) -> None:
    expected = {
        tables.RULES_TABLE_ENV: "RulesTable",
        tables.CALLS_TABLE_ENV: "CallsTable",
        tables.HEALTH_TABLE_ENV: "HealthTable",
        tables.EVENTS_TABLE_ENV: "EventsTable",
        tables.CALL_LOG_TABLE_ENV: "CallLogTable",
    }
    assert schema.table_env(template) == expected
    assert schema.table_env(template, None) == expected
    assert schema.table_env(template, "HealthCheckFunction") == {
        k: v for k, v in expected.items() if k not in (tables.CALLS_TABLE_ENV, tables.CALL_LOG_TABLE_ENV)
    }
    assert schema.local_environment({"RulesTable": "r", "CallsTable": "c"}, template) == {
        tables.RULES_TABLE_ENV: "r",
        tables.CALLS_TABLE_ENV: "c",
    }
    with pytest.raises(KeyError):
        schema.table_env(template, "NoSuchFunction")


@pytest.mark.parametrize(
    ("model", "env_var"),
    [
        (RuleItem, "RULES_TABLE_NAME"),
        (RulesSetItem, "RULES_TABLE_NAME"),  # the rules set lives in the rules table, beside the rules
        (CallItem, "CALLS_TABLE_NAME"),
        (HealthShard, "HEALTH_TABLE_NAME"),
        (EventItem, "EVENTS_TABLE_NAME"),
    ],
)
def test_model_keys_match_the_template(template: dict[str, Any], model: type[Model], env_var: str) -> None:
    logical_id = schema.table_env(template)[env_var]
    spec = schema.table_specs(template)[logical_id]
    attributes = model.get_attributes()

    assert model._hash_keyname == spec.hash_key
    assert model._range_keyname == spec.range_key
    key_names = {k for k in (spec.hash_key, spec.range_key) if k}
    assert set(spec.attribute_types) == key_names  # DynamoDB rejects unused attribute definitions
    for name in key_names:
        assert attributes[name].attr_type == spec.attribute_types[name], name

    model_schema = model._get_schema()

    def pairs(key_schema: list[Any]) -> set[tuple[str, str]]:
        return {(k["AttributeName"], k["KeyType"]) for k in key_schema}

    assert pairs(model_schema["key_schema"]) == pairs(spec.create_kwargs["KeySchema"])
    assert not model_schema["global_secondary_indexes"] and "GlobalSecondaryIndexes" not in spec.create_kwargs
    assert not model_schema["local_secondary_indexes"] and "LocalSecondaryIndexes" not in spec.create_kwargs


def test_ttl_attribute_matches_the_models(template: dict[str, Any]) -> None:
    specs = schema.table_specs(template)
    assert specs["RulesTable"].ttl_attribute is None
    ttl = specs["CallsTable"].ttl_attribute
    assert ttl == "expires_at"
    attribute = CallItem.get_attributes()[ttl]
    assert attribute.attr_type == "N" and not attribute.null  # TTL needs epoch seconds on every item


def test_table_properties(template: dict[str, Any]) -> None:
    rules = template["Resources"]["RulesTable"]["Properties"]
    calls = template["Resources"]["CallsTable"]["Properties"]
    for props in (rules, calls):
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert rules["SSESpecification"]["SSEEnabled"] is True
    assert template["Resources"]["RulesTable"]["DeletionPolicy"] == "Retain"


def test_default_table_names_match_the_models_defaults() -> None:
    assert RulesSetItem.Meta.table_name == RuleItem.Meta.table_name
    assert schema.default_table_name("CallAuditTable") == "failover-did-call-audit"
    for model, env_var, logical_id in (
        (RuleItem, tables.RULES_TABLE_ENV, "RulesTable"),
        (CallItem, tables.CALLS_TABLE_ENV, "CallsTable"),
    ):
        assert schema.default_table_name(logical_id) == f"failover-did-{logical_id[:-5].lower()}"
        if env_var not in os.environ:  # the model then kept its default name
            assert model.Meta.table_name == schema.default_table_name(logical_id)


# ---------------------------------------------------------------------------------------------------
# Outputs, packaging
# ---------------------------------------------------------------------------------------------------


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert {"VoiceUrl", "ApiBaseUrl", "RulesTableName", "CallsTableName"} <= set(outputs)
    voice_url = outputs["VoiceUrl"]["Value"]["Fn::Sub"]
    assert voice_url == "https://${VoiceApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/voice"
    assert voice_url == outputs["ApiBaseUrl"]["Value"]["Fn::Sub"] + "/voice"
    assert outputs["RulesTableName"]["Value"] == {"Ref": "RulesTable"}
    assert outputs["CallsTableName"]["Value"] == {"Ref": "CallsTable"}


def _requirement_specs(lines: list[str]) -> dict[str, str]:
    specs: dict[str, str] = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)", line)
            assert match, line
            specs[match.group(1).lower().replace("_", "-")] = match.group(2).replace(" ", "")
    return specs


def test_lambda_requirements_name_the_project_libraries() -> None:
    lambda_reqs = _requirement_specs((REPO / "functions" / "requirements.txt").read_text().splitlines())
    # The Lambdas' complete list (functions/Makefile installs it with --no-deps): the project's own four, what
    # aws-lambda-powertools needs, and phonenumberslite (the phonenumbers module without its data files).
    # Their versions are exact pins inside pyproject.toml's ranges: tests/unit/test_requirements.py.
    own = {"twilio", "aws-lambda-powertools", "pynamodb", "dnspython"}
    assert set(lambda_reqs) == own | {"jmespath", "typing-extensions", "phonenumberslite"}


def test_samconfig() -> None:
    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["stack_name"] == "failover-did"
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True
    assert "build" in config["default"]


# ---------------------------------------------------------------------------------------------------
# The template loader
# ---------------------------------------------------------------------------------------------------

LOADER_SAMPLE = """
Resources:
  R:
    Type: X
    Properties:
      A: !Ref P
      B: !GetAtt T.Arn
      C: !GetAtt [T, StreamArn]
      D: !GetAtt Db.Endpoint.Address
      E: !Sub "${P}-x"
      F: !If [Cond, !Join ["", [a, !Ref P]], !Ref "AWS::NoValue"]
      G: !Select [0, !Split [",", !ImportValue Exported]]
      H: !FindInMap [M, !Ref "AWS::Region", K]
      I: !Base64 text
      J: !GetAZs ""
      K: !Cidr [10.0.0.0/16, 4, 8]
Conditions:
  Cond: !And [!Not [!Equals [!Ref P, ""]], !Or [!Condition Other, !Equals [a, a]]]
"""


def test_loader_turns_short_tags_into_long_form(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(LOADER_SAMPLE)
    data = schema.load_template(path)
    props = data["Resources"]["R"]["Properties"]
    assert props["A"] == {"Ref": "P"}
    assert props["B"] == {"Fn::GetAtt": ["T", "Arn"]}
    assert props["C"] == {"Fn::GetAtt": ["T", "StreamArn"]}
    assert props["D"] == {"Fn::GetAtt": ["Db", "Endpoint.Address"]}
    assert props["E"] == {"Fn::Sub": "${P}-x"}
    assert props["F"] == {"Fn::If": ["Cond", {"Fn::Join": ["", ["a", {"Ref": "P"}]]}, {"Ref": "AWS::NoValue"}]}
    assert props["G"] == {"Fn::Select": [0, {"Fn::Split": [",", {"Fn::ImportValue": "Exported"}]}]}
    assert props["H"] == {"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "K"]}
    assert props["I"] == {"Fn::Base64": "text"}
    assert props["J"] == {"Fn::GetAZs": ""}
    assert props["K"] == {"Fn::Cidr": ["10.0.0.0/16", 4, 8]}
    assert data["Conditions"]["Cond"] == {
        "Fn::And": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "P"}, ""]}]},
            {"Fn::Or": [{"Condition": "Other"}, {"Fn::Equals": ["a", "a"]}]},
        ]
    }


def test_loader_rejects_unknown_tags_and_non_templates(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("Resources:\n  R: !Bogus x\n")
    with pytest.raises(yaml.YAMLError, match="Bogus"):
        schema.load_template(path)
    path.write_text("just: text\n")
    with pytest.raises(ValueError, match="Resources"):
        schema.load_template(path)
    with pytest.raises(FileNotFoundError, match=schema.TEMPLATE_ENV):
        schema.load_template(tmp_path / "missing.yaml")


def test_template_path_default_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(schema.TEMPLATE_ENV, raising=False)
    assert schema.template_path() == TEMPLATE
    other = tmp_path / "other.yaml"
    other.write_text(
        "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n"
        "      AttributeDefinitions: [{AttributeName: k, AttributeType: N}]\n"
        "      KeySchema: [{AttributeName: k, KeyType: HASH}]\n"
        "      BillingMode: PAY_PER_REQUEST\n"
    )
    monkeypatch.setenv(schema.TEMPLATE_ENV, str(other))
    assert schema.template_path() == other
    assert list(schema.table_specs()) == ["T"]


def test_table_specs_keep_only_create_table_keys_and_refuse_intrinsics() -> None:
    template = {
        "Resources": {
            "ItemsTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "AttributeDefinitions": [
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "g", "AttributeType": "N"},
                    ],
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "GlobalSecondaryIndexes": [
                        {
                            "IndexName": "by-g",
                            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                            "Projection": {"ProjectionType": "KEYS_ONLY"},
                            "ContributorInsightsSpecification": {"Enabled": True},
                        }
                    ],
                    "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": False},
                },
            },
            "SimpleTable": {"Type": "AWS::Serverless::SimpleTable", "Properties": {}},
            "BadTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "AttributeDefinitions": [],
                    "KeySchema": [],
                    "BillingMode": {"Ref": "Mode"},
                },
            },
        }
    }
    with pytest.raises(ValueError, match=r"BadTable.*BillingMode"):
        schema.table_specs(template)
    del template["Resources"]["BadTable"]
    specs = schema.table_specs(template)
    items = specs["ItemsTable"]
    assert items.ttl_attribute is None  # declared but disabled
    assert items.create_kwargs["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "by-g",
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ]
    simple = specs["SimpleTable"]
    assert simple.hash_key == "id" and simple.attribute_types == {"id": "S"}
    assert simple.create_kwargs["BillingMode"] == "PAY_PER_REQUEST"


def test_call_log_model_and_indexes_match_the_template(template: dict[str, Any]) -> None:
    """The call log is keyed by CallSid; `calls` queries the two indexes store/call_log.py names."""
    spec = schema.table_specs(template)[schema.table_env(template)[tables.CALL_LOG_TABLE_ENV]]
    assert (CallLogItem._hash_keyname, CallLogItem._range_keyname) == (spec.hash_key, spec.range_key)
    indexes = {
        index["IndexName"]: [k["AttributeName"] for k in index["KeySchema"]]
        for index in spec.create_kwargs["GlobalSecondaryIndexes"]
    }
    assert indexes == {"by-number": ["number", "started"], "by-day": ["day", "started"]}
    attributes = CallLogItem.get_attributes()
    assert all(attributes[name].attr_type == spec.attribute_types[name] for name in spec.attribute_types)
    assert spec.ttl_attribute == "expires_at" == attributes["expires_at"].attr_name
