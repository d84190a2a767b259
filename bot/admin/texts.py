"""Texts more than one part of the admin service says."""

from __future__ import annotations

from bot.i18n import N_, Text


def job_missing(job_id: int) -> Text:
    """Another server's job reads as missing too: ids must not leak across guilds."""
    return N_("Job #{job} does not exist on this server.", job=job_id)
