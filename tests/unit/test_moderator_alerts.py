"""Every alert the engine can raise has a moderator text naming what to do next."""

from __future__ import annotations

from bot.jobs.actions import REFETCHABLE_FAILURES
from bot.jobs.notifier import ModeratorAlert
from cogs.notifier import MODERATOR_ALERTS


def test_every_alert_has_a_complete_text() -> None:
    assert set(MODERATOR_ALERTS) == set(ModeratorAlert)
    for alert, text in MODERATOR_ALERTS.items():
        filled = text.format(job=42)
        assert "{" not in filled and "}" not in filled, alert


def test_a_refetchable_failure_tells_moderators_about_refetch() -> None:
    for alert in REFETCHABLE_FAILURES | {ModeratorAlert.TASK_NOT_FOUND}:
        assert "/kling-admin jobs refetch job:42" in MODERATOR_ALERTS[alert].format(job=42)
