"""Reading a rules file's YAML safely: bounded in size, nesting and expansion, before anything is judged.

A rules file is small and flat (numbers -> rule -> tier -> field), so anything else is refused with one
line from a walk over the parser's events, before any node is built: anchors and aliases (a few hundred
bytes of nested aliases expand to gigabytes), nesting deeper than MAX_DEPTH (deep brackets exhaust the
composer's recursion), and files over MAX_FILE_BYTES.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, NodeEvent

try:  # libyaml's parser, several times faster, where PyYAML was built with it (its wheels are)
    from yaml import CSafeLoader as _FastLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _FastLoader  # type: ignore[assignment]

from failover_did.rules.text import show

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_FILE_TEXT = "4 MiB"
MAX_DEPTH = 20


class LoadError(ValueError):
    """The text is not a rules document we will read; the message is one line without the file name."""


def load_yaml(text: str) -> tuple[object, list[str]]:
    """The document of a rules file and the keys given twice (as problems), or LoadError naming why not."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise LoadError(file_too_large())
    loader: _Loader | None = None
    try:
        _refuse_hostile_structure(text)
        loader = _Loader(text)
        doc = loader.get_single_data()
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, found before any token
        # libyaml reports a byte offset; the first such character is the one it stopped at.
        position = max(text.find(chr(exc.character)), 0)
        line = text.count("\n", 0, position) + 1
        column = position - text.rfind("\n", 0, position)
        raise LoadError(f"line {line}, column {column}: invalid YAML: {exc.reason} (#x{exc.character:04x})") from None
    except yaml.YAMLError as exc:
        raise LoadError(_yaml_problem(exc)) from None
    except UnicodeEncodeError as exc:  # a lone surrogate: only a str built in code can hold one
        point = ord(exc.object[exc.start])
        raise LoadError(f"invalid text: U+{point:04X} at character {exc.start + 1} is not a character") from None
    except (ValueError, RecursionError) as exc:  # an integer past Python's digit limit, say
        raise LoadError(f"invalid YAML: {show(str(exc))}") from None
    finally:
        if loader is not None:
            loader.dispose()
    duplicates = [f"line {line}: {key} appears twice in the same mapping" for key, line in loader.duplicates]
    return doc, duplicates


def file_too_large(size: int | None = None) -> str:
    what = f"{size:,} bytes" if size is not None else f"more than {MAX_FILE_TEXT}"
    return f"the file is {what}; a rules file may be at most {MAX_FILE_TEXT} ({MAX_FILE_BYTES:,} bytes)"


class _Refused(yaml.YAMLError):
    def __init__(self, message: str, mark: object) -> None:
        super().__init__(message)
        self.problem = message
        self.problem_mark = mark


def _refuse_hostile_structure(text: str) -> None:
    """Walk the file's YAML events (nothing is built) and refuse anchors, aliases and deep nesting."""
    depth = 0
    for event in yaml.parse(text, Loader=_FastLoader):
        if isinstance(event, AliasEvent) or (isinstance(event, NodeEvent) and event.anchor is not None):
            raise _Refused(
                "anchors and aliases (&name, *name) are not accepted in a rules file; write each rule out in full",
                event.start_mark,
            )
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(
                    f"nested more than {MAX_DEPTH} levels deep; a rules file needs no more than 5", event.start_mark
                )
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


class _Loader(_FastLoader):
    """A safe loader that notes keys given twice in one mapping (PyYAML silently keeps the last)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, int]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable key: construct_mapping reports it
            if duplicate:
                self.duplicates.append((show(key), key_node.start_mark.line + 1))
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    detail = f"{context}, {problem}" if context else problem
    if "maximum nesting depth" in detail:  # libyaml's own limit (1,000) met while looking ahead
        exc, detail = _Refused("", mark), f"nested more than {MAX_DEPTH} levels deep; a rules file needs no more than 5"
    if isinstance(exc, _Refused):
        prefix = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return f"{prefix}refused: {detail}"
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: invalid YAML: {detail}"
    return f"invalid YAML: {detail}"
