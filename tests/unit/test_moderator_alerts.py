"""Every alert the engine can raise has a moderator text naming what to do next."""

from __future__ import annotations

import pytest

from bot.i18n import Catalogs, english
from bot.jobs.actions import REFETCHABLE_FAILURES
from bot.jobs.notifier import ModeratorAlert
from cogs.log_channel import moderator_alert


@pytest.mark.parametrize("locale", ["en-US", "de", "es-ES", "fr", "ja", "pt-BR"])
def test_every_alert_has_a_complete_text_in_every_language(locale: str) -> None:
    say = Catalogs().speaker(locale)
    for alert in ModeratorAlert:
        filled = say(moderator_alert(alert, 42))
        assert "{" not in filled and "}" not in filled, alert


def test_a_refetchable_failure_tells_moderators_about_refetch() -> None:
    for alert in REFETCHABLE_FAILURES | {ModeratorAlert.TASK_NOT_FOUND}:
        assert "/kling-admin jobs refetch job:42" in english(moderator_alert(alert, 42))
