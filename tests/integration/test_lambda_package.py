"""The Lambda packages `sam build` makes with functions/Makefile: small, and complete.

Each function is built as sam build builds it (`make build-<LogicalId> ARTIFACTS_DIR=...`), twice:
for the Lambda platform (python3.13 on arm64) to check what it ships and how big it is, and for this
machine's Python (PLATFORM_ARGS empty) to run it: each handler is invoked in a Python whose sys.path
holds only the package and the AWS SDK the runtime provides (boto3, botocore and their dependencies),
against moto's server. pip downloads from PyPI (pip's cache serves the builds after the first), hence e2e.
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from twilio.request_validator import RequestValidator

from failover_did_cli import schema
from failover_did_cli.apigw import http_event
from failover_did_cli.console_users import console_environment, create_local_pool
from failover_did_cli.env import LOCAL_FALLBACK_BUCKET, REGION, local_aws_environment
from failover_did_cli.local_stack import free_port
from tests.support import HOST, TOKEN, call_params

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("lambda_runtime.py")
CLI = str(Path(sys.executable).with_name("failover-did"))
LIMIT_BYTES = 25_000_000
TOKEN_PARAM = "/failover-did/test/twilio-auth-token"
CONSOLE_ADMIN = "ops@example.com"
CONSOLE_PASSWORD = "Package-Passw0rd"

TEMPLATE = schema.load_template(REPO / "template.yaml")
FUNCTIONS: dict[str, str] = {
    logical_id: resource["Properties"]["Handler"]
    for logical_id, resource in TEMPLATE["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
}

RUNTIME_SDK = "boto3"
"""What the python3.13 runtime adds to sys.path: boto3 and (found from its metadata) what it needs."""

NOT_SHIPPED = {"requests", "aiohttp", "aiohttp-retry", "pyjwt"}
"""twilio's dependencies: only its REST client (deleted by the Makefile) uses them."""

LAMBDA_MARKERS = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
    "extra": "",
}


# --------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------


def build(function: str, artifacts: Path, *, for_this_python: bool = False, platform_args: str | None = None) -> Path:
    """Runs the function's target as sam build does: make from the CodeUri, ARTIFACTS_DIR set."""
    command = ["make", "--no-print-directory", "-C", str(REPO / "functions"), f"build-{function}"]
    command += [f"ARTIFACTS_DIR={artifacts}", f"PYTHON={sys.executable}"]
    if for_this_python:
        command.append("PLATFORM_ARGS=")
    elif platform_args is not None:
        command.append(f"PLATFORM_ARGS={platform_args}")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return artifacts


def tree_size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def distributions(artifacts: Path) -> dict[str, tuple[Version, list[Requirement]]]:
    """Installed distribution -> its version and requirements, read from the package's dist-info."""
    found: dict[str, tuple[Version, list[Requirement]]] = {}
    for metadata_file in artifacts.glob("*.dist-info/METADATA"):
        metadata = Parser().parsestr(metadata_file.read_text(encoding="utf-8"))
        requires = [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]
        found[canonicalize_name(metadata["Name"])] = (Version(metadata["Version"]), requires)
    return found


@pytest.fixture(scope="module")
def lambda_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("arm64")
    return {function: build(function, root / function) for function in FUNCTIONS}


@pytest.fixture(scope="module")
def local_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("host")
    return {function: build(function, root / function, for_this_python=True) for function in FUNCTIONS}


@pytest.fixture(scope="module")
def runtime_sdk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A directory with only boto3, botocore and their dependencies (linked from this venv), standing for
    the runtime's copy, and the names of those distributions."""
    root = tmp_path_factory.mktemp("runtime-sdk")
    names: set[str] = set()
    pending = [RUNTIME_SDK]
    while pending:
        name = canonicalize_name(pending.pop())
        if name in names:
            continue
        names.add(name)
        dist = importlib.metadata.distribution(name)
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
        for file in dist.files or []:
            top = file.parts[0]
            if top in {"..", "__pycache__", "bin"} or (root / top).exists():
                continue
            (root / top).symlink_to(Path(str(dist.locate_file(top))))
    return root, names


# --------------------------------------------------------------------------------------------------
# What the Lambda platform build ships
# --------------------------------------------------------------------------------------------------


SERVICE_FUNCTIONS = ("VoiceFunction", "HealthCheckFunction", "FormatterFunction", "NoticeFlushFunction")
CONSOLE_ONLY = {
    "failover_did_console",
    "jinja2",
    "markupsafe",
    "jwt",
    "cryptography",
    "cffi",
    "_cffi_backend",
    "pycparser",
    "yaml",
}
"""What the console's package adds to the service functions' (top-level names, dist-info aside)."""


def top_level(artifacts: Path) -> set[str]:
    return {p.name.split(".")[0] for p in artifacts.iterdir() if not p.name.endswith(".dist-info")}


def test_every_function_is_built_with_the_makefile() -> None:
    assert set(FUNCTIONS) == {*SERVICE_FUNCTIONS, "ConsoleFunction"}
    for function in FUNCTIONS:
        resource = TEMPLATE["Resources"][function]
        assert resource.get("Metadata") == {"BuildMethod": "makefile"}, function
        assert resource["Properties"]["CodeUri"] == "functions/", function


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_the_package_is_small(lambda_builds: dict[str, Path], function: str) -> None:
    artifacts = lambda_builds[function]
    size = tree_size(artifacts)
    parts = sorted(((tree_size(p) if p.is_dir() else p.stat().st_size), p.name) for p in artifacts.iterdir())
    largest = ", ".join(f"{name} {bytes_ / 1e6:.1f}" for bytes_, name in reversed(parts[-4:]))
    print(f"{function}: {size / 1e6:.1f} MB unzipped (largest, MB: {largest})")
    assert size <= LIMIT_BYTES, f"{function} is {size / 1e6:.1f} MB unzipped"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_the_package_ships_no_sdk_rest_client_data_or_bytecode(lambda_builds: dict[str, Path], function: str) -> None:
    artifacts = lambda_builds[function]
    top = {path.name for path in artifacts.iterdir()}
    for absent in ("boto3", "botocore", "s3transfer", "aiohttp", "requests", "tests"):
        assert absent not in top, absent
    assert (artifacts / "failover_did" / "webhook" / "app.py").is_file()
    assert sorted(p.name for p in (artifacts / "twilio").iterdir()) == ["__init__.py", "request_validator.py", "twiml"]
    if function == "ConsoleFunction":
        console = artifacts / "failover_did_console"
        assert (console / "app.py").is_file()
        assert list((console / "templates").glob("*.html")) and (console / "static" / "console.css").is_file()
        assert top_level(artifacts) >= CONSOLE_ONLY
        assert not list((artifacts / "yaml").glob("_yaml*")), "PyYAML's libyaml binding is left out"
    else:  # the webhook's (and the other service functions') package is as it was: nothing of the console
        assert not top_level(artifacts) & CONSOLE_ONLY, top_level(artifacts) & CONSOLE_ONLY
    assert (artifacts / "phonenumbers" / "phonenumberutil.py").is_file()
    assert not (artifacts / "phonenumbers" / "geodata").exists()
    assert not (artifacts / "phonenumbers" / "carrierdata").exists()
    assert not list(artifacts.rglob("__pycache__")) and not list(artifacts.rglob("*.pyc"))


def test_the_service_functions_ship_one_and_the_same_package(lambda_builds: dict[str, Path]) -> None:
    trees = {
        function: sorted(str(p.relative_to(lambda_builds[function])) for p in lambda_builds[function].rglob("*"))
        for function in SERVICE_FUNCTIONS
    }
    assert all(tree == trees["VoiceFunction"] for tree in trees.values())


def test_the_console_ships_the_service_package_and_its_own(lambda_builds: dict[str, Path]) -> None:
    voice, console = top_level(lambda_builds["VoiceFunction"]), top_level(lambda_builds["ConsoleFunction"])
    assert voice < console
    assert console - voice == CONSOLE_ONLY


@pytest.mark.parametrize("function", ["VoiceFunction", "ConsoleFunction"])
def test_every_requirement_of_what_is_shipped_is_shipped_or_in_the_runtime(
    lambda_builds: dict[str, Path], runtime_sdk: tuple[Path, set[str]], function: str
) -> None:
    """requirements.txt is installed with --no-deps, so it must list the complete closure itself."""
    _, runtime_names = runtime_sdk
    shipped = distributions(lambda_builds[function])
    # jmespath is shipped on purpose: Powertools needs a newer one than botocore promises.
    assert not set(shipped) & (runtime_names - {"jmespath"}), "the runtime's SDK is in the package"
    for name, (_, requires) in shipped.items():
        for requirement in requires:
            if requirement.marker is not None and not requirement.marker.evaluate(LAMBDA_MARKERS):
                continue
            wanted = canonicalize_name(requirement.name)
            if wanted in shipped:
                version = shipped[wanted][0]
                assert requirement.specifier.contains(version, prereleases=True), f"{name}: {requirement}, {version}"
            else:
                assert wanted in runtime_names | NOT_SHIPPED, f"{name} needs {requirement}, which is not shipped"


def files(artifacts: Path) -> list[str]:
    """The package's paths, extension modules named without their interpreter and platform tag (the console's
    binary wheels: `_cffi_backend.cpython-313-aarch64-linux-gnu.so` is `_cffi_backend.so` on any machine)."""
    return sorted(re.sub(r"\.cpython-[^.]+\.so$", ".so", str(p.relative_to(artifacts))) for p in artifacts.rglob("*"))


def test_the_local_build_ships_what_the_lambda_build_ships(
    lambda_builds: dict[str, Path], local_builds: dict[str, Path]
) -> None:
    for function in FUNCTIONS:
        assert files(local_builds[function]) == files(lambda_builds[function]), function


# --------------------------------------------------------------------------------------------------
# Running each handler from its package
# --------------------------------------------------------------------------------------------------


@dataclass
class Aws:
    endpoint: str
    env: dict[str, str]
    queue_url: str
    sip_target: str

    def client(self, service: str) -> Any:
        credentials = local_aws_environment(self.endpoint)
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        )


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    """moto's server with the template's tables, a rule, the auth token in SSM and a notify topic."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "moto's server did not start"
                time.sleep(0.1)
        sip_target = f"sip:desk@127.0.0.1:{closed_udp_port()}"
        aws = Aws(endpoint, {}, "", sip_target)
        names = schema.create_tables(aws.client("dynamodb"))
        aws.client("s3").create_bucket(Bucket=LOCAL_FALLBACK_BUCKET)  # `rules apply` publishes fallbacks there
        aws.client("ssm").put_parameter(Name=TOKEN_PARAM, Value=TOKEN, Type="SecureString")
        topic = aws.client("sns").create_topic(Name="failover-did-notify")["TopicArn"]
        sqs = aws.client("sqs")
        aws.queue_url = sqs.create_queue(QueueName="notify-copy")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["QueueArn"])["Attributes"]
        aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["QueueArn"])

        rules = tmp_path_factory.mktemp("rules") / "rules.yaml"
        rules.write_text(
            'numbers:\n  "+14155550100":\n'
            f'    primary: {{target: "{sip_target}", timeout: 15}}\n'
            '    failover:\n      - {target: "+14155550111"}\n'
        )
        applied = subprocess.run(
            [CLI, "rules", "apply", str(rules)],
            env={**os.environ, "FAILOVER_DID_LOCAL": endpoint},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert applied.returncode == 0, applied.stdout + applied.stderr

        # The console's user pool, as the local stack makes it from the template, with one admin.
        cognito = aws.client("cognito-idp")
        pool = create_local_pool(cognito)
        cognito.admin_create_user(UserPoolId=pool.pool_id, Username=CONSOLE_ADMIN, MessageAction="SUPPRESS")
        cognito.admin_add_user_to_group(UserPoolId=pool.pool_id, Username=CONSOLE_ADMIN, GroupName="admin")
        cognito.admin_set_user_password(
            UserPoolId=pool.pool_id, Username=CONSOLE_ADMIN, Password=CONSOLE_PASSWORD, Permanent=True
        )

        aws.env = {
            **console_environment(endpoint, pool),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            **local_aws_environment(endpoint),
            **schema.local_environment(names),
            # No credentials or settings from this machine, and no instance metadata look-ups.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "TWILIO_AUTH_TOKEN_PARAM": TOKEN_PARAM,
            "NOTIFY_TOPIC_ARN": topic,
            "PROBE_TIMEOUT_SECONDS": "0.5",
            # Repeated checks must not mark the primary down between the webhook runs.
            "HEALTH_DOWN_AFTER": "1000",
            "POWERTOOLS_SERVICE_NAME": "failover-did",
            "POWERTOOLS_METRICS_NAMESPACE": "FailoverDid",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        yield aws
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def python_313() -> str | None:
    """A Python 3.13 (the runtime's version) on this machine, if there is one."""
    candidates = [
        shutil.which("python3.13"),
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13"))),
    ]
    for candidate in candidates:
        check = [candidate or "", "-c", "import sys; assert sys.version_info[:2] == (3, 13)"]
        if candidate and subprocess.run(check, capture_output=True, timeout=30).returncode == 0:
            return candidate
    return None


@dataclass
class Runtime:
    python: str
    builds: dict[str, Path]
    sdk: Path


@pytest.fixture(scope="module", params=["this-python", "python3.13"])
def runtime(request: pytest.FixtureRequest, runtime_sdk: tuple[Path, set[str]]) -> Runtime:
    """This machine's Python with the packages built for it, or, when this machine has one, Python 3.13 with
    the very packages built for the Lambda (pure Python, so they import here too)."""
    sdk, _ = runtime_sdk
    if request.param == "this-python":
        return Runtime(sys.executable, request.getfixturevalue("local_builds"), sdk)
    python = python_313()
    if python is None:
        pytest.skip("no python3.13 on this machine")
    builds = dict(request.getfixturevalue("lambda_builds"))
    machine = platform.machine()
    if machine != "aarch64":  # the console's binary wheels (cryptography, cffi) load only on their own platform
        root = request.getfixturevalue("tmp_path_factory").mktemp("console-313")
        wheels = f"--platform manylinux2014_{machine} --implementation cp --python-version 3.13"
        builds["ConsoleFunction"] = build("ConsoleFunction", root, platform_args=wheels)
    return Runtime(python, builds, sdk)


@dataclass
class Invocation:
    results: list[Any]
    formatted: str | None
    modules: dict[str, str]
    base_prefix: str

    def origin(self, module: str) -> str:
        return self.modules[module]


def invoke(
    runtime: Runtime,
    function: str,
    aws: Aws,
    events: list[dict[str, Any]],
    tmp_path: Path,
    format_number: str | None = None,
) -> Invocation:
    """Runs the function's handler on the events in a Python that has only the package and the SDK."""
    handler, artifacts = FUNCTIONS[function], runtime.builds[function]
    request, result = tmp_path / "request.json", tmp_path / "result.json"
    request.write_text(json.dumps({"handler": handler, "events": events, "format_number": format_number}))
    command = [runtime.python, "-I", "-S", str(RUNNER), str(artifacts), str(runtime.sdk), str(request), str(result)]
    done = subprocess.run(command, env=aws.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{handler} failed in its package:\n{done.stdout}\n{done.stderr}"
    data = json.loads(result.read_text())
    invocation = Invocation(data["results"], data["formatted"], data["modules"], data["base_prefix"])
    assert_imports_only_from(invocation, artifacts, runtime.sdk)
    return invocation


def assert_imports_only_from(invocation: Invocation, artifacts: Path, sdk: Path) -> None:
    """Every module comes from the package, the runtime's SDK or the standard library; the SDK is the
    runtime's, not a copy in the package; twilio's REST client is not needed."""
    stdlib = Path(invocation.base_prefix).resolve()
    for module, file in invocation.modules.items():
        if not file or file == str(RUNNER) or file.startswith((str(artifacts) + os.sep, str(sdk) + os.sep)):
            continue
        assert Path(file).resolve().is_relative_to(stdlib) and "site-packages" not in file, f"{module}: {file}"
    for module in ("boto3", "botocore"):
        if module in invocation.modules:
            assert invocation.origin(module).startswith(str(sdk) + os.sep), module
    twilio = {name for name in invocation.modules if name == "twilio" or name.startswith("twilio.")}
    assert not any(name.startswith(("twilio.rest", "twilio.http", "twilio.base")) for name in twilio), twilio


def signed_call(path: str, params: dict[str, str], *, forge: bool = False) -> dict[str, Any]:
    signature = RequestValidator(TOKEN).compute_signature(f"https://{HOST}{path}", params)
    headers = {
        "Host": HOST,
        "X-Forwarded-Proto": "https",
        "X-Twilio-Signature": "forged" + signature if forge else signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return http_event("POST", path, headers=headers, body=urlencode(params).encode())


def test_the_voice_webhook_answers_a_signed_call_from_its_package(runtime: Runtime, aws: Aws, tmp_path: Path) -> None:
    events = [signed_call("/voice", call_params()), signed_call("/voice", call_params(), forge=True)]
    invocation = invoke(runtime, "VoiceFunction", aws, events, tmp_path)
    answered, forged = invocation.results
    assert answered["statusCode"] == 200, answered
    assert "<Dial" in answered["body"] and f"<Sip>{aws.sip_target}</Sip>" in answered["body"], answered["body"]
    assert forged["statusCode"] == 403, forged
    # The token came from SSM through Powertools' Parameters, which imports boto3 only then.
    assert "aws_lambda_powertools.utilities.parameters" in invocation.modules
    assert "twilio.twiml.voice_response" in invocation.modules and "twilio.request_validator" in invocation.modules


def test_the_health_checker_probes_from_its_package(runtime: Runtime, aws: Aws, tmp_path: Path) -> None:
    scheduled = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    invocation = invoke(runtime, "HealthCheckFunction", aws, [scheduled], tmp_path)
    (report,) = invocation.results
    assert report["probed"] == 1 and report["errors"] == [], report


def test_the_alert_formatter_publishes_from_its_package(runtime: Runtime, aws: Aws, tmp_path: Path) -> None:
    # An alarm the formatter has no words of its own for; a fresh name each run, as a repeat is not news.
    subject = f"PackageTest-{uuid.uuid4().hex[:8]}"
    alarm = {"AlarmName": subject, "NewStateValue": "ALARM", "NewStateReason": "test"}
    record = {"Sns": {"Subject": "x", "Message": json.dumps(alarm), "Timestamp": "2026-11-28T10:00:00Z"}}
    invocation = invoke(runtime, "FormatterFunction", aws, [{"Records": [record]}], tmp_path, "+14155550100")
    # phonenumbers (lite) comes with the package and formats numbers for display.
    assert invocation.origin("phonenumbers").startswith(str(runtime.builds["FormatterFunction"]) + os.sep)
    assert invocation.formatted == "+1 415-555-0100"
    sqs = aws.client("sqs")
    received = sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    messages = received.get("Messages") or []
    assert any(subject in message["Body"] for message in messages), messages
    for message in received["Messages"]:
        sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_the_notice_flush_sends_a_due_digest_from_its_package(runtime: Runtime, aws: Aws, tmp_path: Path) -> None:
    number = f"+1415555{uuid.uuid4().int % 10000:04d}"  # a fresh window each run
    call = {
        "call_sid": "CA1",
        "caller": "+14155550199",
        "started": "2026-11-28T10:03:00+00:00",
        "ending": "caller hung up",
    }
    detail = {
        "opened": "2026-11-28T10:02:00+00:00",
        "until": "2026-11-28T10:07:00+00:00",
        "count": 1,
        "calls": [call],
        "sids": ["CA0", "CA1"],
        "first": "CA0",
    }
    aws.client("dynamodb").put_item(
        TableName=aws.env["EVENTS_TABLE_NAME"],
        Item={
            "number": {"S": "#missed-calls"},
            "sk": {"S": number},
            "kind": {"S": "missed-window"},
            "detail": {"S": json.dumps(detail)},
            "expires_at": {"N": "4102444800"},
        },
    )
    scheduled = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    invocation = invoke(runtime, "NoticeFlushFunction", aws, [scheduled], tmp_path)
    (report,) = invocation.results
    assert number in report["digests"], report
    sqs = aws.client("sqs")
    received = sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    messages = received.get("Messages") or []
    assert any("1 more missed call" in message["Body"] for message in messages), messages
    for message in messages:
        sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])


def console_request(method: str, path: str, cookies: list[str], form: dict[str, str] | None = None) -> dict[str, Any]:
    headers = {"Host": HOST, "Cookie": "; ".join(cookies)} if cookies else {"Host": HOST}
    if form is None:
        return http_event(method, path, headers=headers)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return http_event(method, path, headers=headers, body=urlencode(form).encode())


def cookie_pairs(result: dict[str, Any]) -> list[str]:
    """The `name=value` of each cookie a response sets (none that it expires)."""
    pairs = [str(cookie).split(";", 1)[0] for cookie in result.get("cookies") or []]
    return [pair for pair in pairs if not pair.endswith("=")]


def test_the_console_signs_in_and_shows_the_numbers_from_its_package(
    runtime: Runtime, aws: Aws, tmp_path: Path
) -> None:
    """Sign-in through Cognito (moto's), the ID token verified with PyJWT and cryptography from the package
    against the pool's JWKS, the pages rendered by jinja2 from the package; no page without the session."""
    (login_page, anonymous) = invoke(
        runtime,
        "ConsoleFunction",
        aws,
        [console_request("GET", "/console/login", []), console_request("GET", "/console/numbers", [])],
        tmp_path,
    ).results
    assert login_page["statusCode"] == 200 and 'form id="login"' in login_page["body"], login_page
    assert anonymous["statusCode"] == 302 and anonymous["headers"]["Location"] == "/console/login", anonymous
    (csrf,) = re.findall(r'name="csrf" value="([^"]+)"', login_page["body"])
    form = {"email": CONSOLE_ADMIN, "password": CONSOLE_PASSWORD, "csrf": csrf}

    (signed_in,) = invoke(
        runtime,
        "ConsoleFunction",
        aws,
        [console_request("POST", "/console/login", cookie_pairs(login_page), form)],
        tmp_path,
    ).results
    assert signed_in["statusCode"] == 303 and signed_in["headers"]["Location"] == "/console/numbers", signed_in
    session = cookie_pairs(signed_in)
    assert any(pair.startswith("fd_id=") for pair in session), signed_in["cookies"]

    invocation = invoke(
        runtime, "ConsoleFunction", aws, [console_request("GET", "/console/numbers", session)], tmp_path
    )
    (numbers,) = invocation.results
    assert numbers["statusCode"] == 200, numbers
    assert 'data-number="+14155550100"' in numbers["body"] and CONSOLE_ADMIN in numbers["body"]
    artifacts = str(runtime.builds["ConsoleFunction"]) + os.sep
    for module in ("jwt", "cryptography.hazmat.bindings._rust", "jinja2", "failover_did_console.app"):
        assert invocation.origin(module).startswith(artifacts), module
