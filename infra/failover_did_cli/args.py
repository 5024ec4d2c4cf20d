"""Argument types shared by the commands."""

from __future__ import annotations

import click


class PhoneNumber(click.ParamType):  # type: ignore[type-arg]
    """A Twilio number, with or without its '+', judged like the rules file judges numbers; E.164 out."""

    name = "NUMBER"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from failover_did.rules.targets import TargetError, normalize_target

        text = str(value).strip()
        candidate = text if text.startswith("+") else f"+{text}"
        try:
            return normalize_target(candidate)
        except TargetError as error:
            self.fail(f"{text!r}: {error}", param, ctx)


NUMBER = PhoneNumber()
