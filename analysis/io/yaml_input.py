"""Read a YAML document the user gave, safely and strictly.

Bounded before parsing: at most ``MAX_BYTES`` and ``MAX_DEPTH`` levels of nesting, and no
anchors or aliases (a few hundred bytes of aliases can expand to gigabytes). A key given
twice in one mapping is an error, never a silent replacement (a repeated ``region`` once
flipped a verdict).
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import SpecError

MAX_BYTES = 1_000_000
MAX_DEPTH = 32


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases, with a depth limit, refusing duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (*name) are not allowed", event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice in one mapping",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(data: bytes, name: str) -> Any:
    """Parse ``data`` (the file's bytes) or raise SpecError naming ``name`` and the line."""
    if len(data) > MAX_BYTES:
        raise SpecError(f"{name}: {len(data):,} bytes is larger than a claims file can be "
                        f"({MAX_BYTES:,})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SpecError(f"{name}: not valid YAML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{name}: nested too deeply") from None


def top_level_lines(data: bytes) -> dict[str, int]:
    """Return the line (1-based) of each top-level key of a YAML mapping already validated.

    Used to name the line of a problem found after parsing (an unknown key, a version).
    """
    try:
        node = yaml.compose(data.decode("utf-8"), Loader=_StrictLoader)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
