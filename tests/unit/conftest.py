"""Unit fixtures: template.yaml as loaded, and as the SAM transform turns it into CloudFormation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import boto3
import pytest
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from failover_did_cli import schema

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return schema.load_template(TEMPLATE)


@pytest.fixture(scope="session")
def translated(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation the SAM transform produces, offline (as `sam validate` does it)."""
    sam = copy.deepcopy(template)
    for resource in sam["Resources"].values():
        # sam validate swaps local code paths for an S3 URI: the translator accepts only those.
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name="us-east-1"))
    result: dict[str, Any] = translator.translate(
        sam,
        parameter_values={"AWS::AccountId": "123456789012"},
        get_managed_policy_map=lambda: {},  # managed-policy loader stub: the template names no policies
    )
    return result
