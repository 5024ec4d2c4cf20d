"""Pages as HTML: Jinja2 templates with autoescaping always on, and the headers every response carries."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined

HTML = "text/html; charset=utf-8"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def number_path(number: str) -> str:
    """/console/numbers/%2B15551230000"""
    return f"/console/numbers/{quote(number, safe='')}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("failover_did_console", "templates"),
        autoescape=True,  # every template, whatever its name: a rule's text is shown, never run
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["number_path"] = number_path
    env.globals["one_day"] = timedelta(days=1)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


@cache
def stylesheet() -> str:
    return resources.files("failover_did_console").joinpath("static/console.css").read_text(encoding="utf-8")
