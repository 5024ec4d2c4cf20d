"""Invokes one Lambda handler from a built package the way the python3.13 runtime does: with only the
package and the runtime's AWS SDK on sys.path. Not a test module: test_lambda_package.py runs it as

    python -I -S lambda_runtime.py ARTIFACTS_DIR SDK_DIR REQUEST_JSON RESULT_JSON

(-S: no site-packages, -I: no PYTHONPATH, no script directory, no user site). REQUEST_JSON holds
{"handler": "pkg.module.function", "events": [...], "format_number": "+1..." or null}; RESULT_JSON gets
{"results": [...], "formatted": ..., "modules": {module name: file}, "base_prefix": ...}. Nothing may be imported before
sys.path is set, so this file uses the standard library only.
"""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any


class Context:
    """The Lambda context attributes Powertools reads."""

    function_name = "failover-did-package-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:failover-did-package-test"
    log_group_name = "/aws/lambda/failover-did-package-test"
    log_stream_name = "test"

    def __init__(self) -> None:
        self.aws_request_id = uuid.uuid4().hex

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def main(artifacts: str, sdk: str, request_path: str, result_path: str) -> None:
    # The runtime's order: the function's code (/var/task) first, then the runtime's own packages.
    sys.path[:0] = [artifacts, sdk]
    request: dict[str, Any] = json.loads(Path(request_path).read_text())
    module_name, _, function_name = request["handler"].rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)
    results = [handler(event, Context()) for event in request["events"]]
    formatted = None
    if request.get("format_number"):
        phonenumbers: Any = importlib.import_module("phonenumbers")
        number = phonenumbers.parse(request["format_number"], None)
        formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    modules = {name: str(getattr(module, "__file__", None) or "") for name, module in sorted(sys.modules.items())}
    Path(result_path).write_text(
        json.dumps({"results": results, "formatted": formatted, "modules": modules, "base_prefix": sys.base_prefix})
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
