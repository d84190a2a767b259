"""Discord's limits on how many components a message or a modal holds.

The OpenAPI description allows 40 top-level components in every message body and modal
(the components-v2 ceiling) and lets a select share a row with buttons; Discord's
Component Reference is stricter, and these rules follow it
(https://discord.com/developers/docs/components/reference):

* a message without the ``IS_COMPONENTS_V2`` flag (1 << 15) holds at most 5 action rows
  ("Legacy Message Component Behavior");
* a message with that flag holds up to 40 components in total, nested ones counted
  ("Messages allow up to 40 total components"; the reading hardest on a bot: every child
  of a row, section, container or label counts);
* an action row holds up to 5 buttons or a single select (Component Reference → Action Row);
* a modal holds between 1 and 5 top-level components (Interactions → Receiving and
  Responding → Modal: "Between 1 and 5 (inclusive) components that make up the modal").

Refusals are 400 / 50035 naming the field, as Discord answers a body it refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from . import errors

IS_COMPONENTS_V2: Final = 1 << 15
ACTION_ROW: Final = 1
BUTTON: Final = 2
MAX_LEGACY_ROWS: Final = 5
MAX_V2_COMPONENTS: Final = 40
MAX_ROW_BUTTONS: Final = 5
MAX_MODAL_COMPONENTS: Final = 5


def check_message_layout(components: list[Any], flags: int, field: str = "components") -> None:
    """Refuse a message whose ``components`` break the row, legacy or v2 limits."""
    if flags & IS_COMPONENTS_V2:
        total = sum(1 for _ in _tree(components))
        if total > MAX_V2_COMPONENTS:
            raise _too_many(field, MAX_V2_COMPONENTS)
    elif len(components) > MAX_LEGACY_ROWS:
        raise _too_many(field, MAX_LEGACY_ROWS)
    for path, component in _tree(components, field):
        if component.get("type") == ACTION_ROW:
            _check_row(component.get("components") or [], f"{path}.components")


def check_modal_layout(components: list[Any], field: str = "data.components") -> None:
    """Refuse a modal with more than 5 top-level components (one without any is refused
    as a modal missing a required field, in `interactions`)."""
    if len(components) > MAX_MODAL_COMPONENTS:
        raise _too_many(field, MAX_MODAL_COMPONENTS)


def _check_row(children: list[Any], field: str) -> None:
    only_buttons = all(isinstance(c, dict) and c.get("type") == BUTTON for c in children)
    if len(children) <= (MAX_ROW_BUTTONS if only_buttons else 1):
        return
    # Discord's code for a row that is too wide (not in the docs; as its API answers it).
    raise errors.invalid_form(
        field,
        "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
        "The specified component exceeds the maximum width",
    )


def _tree(components: list[Any], field: str = "components") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every component with its field path, children after their parent."""
    for index, component in enumerate(components):
        if not isinstance(component, dict):
            continue
        path = f"{field}.{index}"
        yield path, component
        yield from _tree(component.get("components") or [], f"{path}.components")
        for single in ("accessory", "component"):  # a section's accessory, a label's child
            child = component.get(single)
            if isinstance(child, dict):
                yield f"{path}.{single}", child


def _too_many(field: str, limit: int) -> errors.DiscordError:
    return errors.invalid_form(
        field, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
    )
