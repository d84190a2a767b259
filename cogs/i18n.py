"""Whose language a text is shown in, and the command fields in every shipped language.

Ephemeral answers follow the member's client (`interaction.locale`); public messages the
server's preferred locale (`interaction.guild_locale`, kept with the job for later posts);
moderators' answers are ephemeral, so in the moderator's own language.
"""

from __future__ import annotations

from typing import Protocol, cast

import discord
from discord import app_commands

from bot.i18n import Catalogs, Speaker, Text, english
from storage.models import Job

TEXT_EXTRA = "text"  # a locale_str's extra holding the Text (msgid and parameters) to show


class _SpeakingBot(Protocol):
    catalogs: Catalogs


def catalogs_of(client: discord.Client) -> Catalogs:
    """The running bot's catalogs (bot.client.KlingBot, not imported: it imports the cogs)."""
    return cast(_SpeakingBot, client).catalogs


def member_speaker(catalogs: Catalogs, interaction: discord.Interaction) -> Speaker:
    """For answers only the member sees."""
    return catalogs.speaker(interaction.locale.value)


def speaker_for(interaction: discord.Interaction) -> Speaker:
    """The running bot's catalogs, in the language of the member who asked."""
    return member_speaker(catalogs_of(interaction.client), interaction)


def public_locale(interaction: discord.Interaction) -> str:
    """The server's preferred locale (Discord sends it with every guild interaction)."""
    locale = interaction.guild_locale
    return locale.value if locale is not None else discord.Locale.american_english.value


def job_speaker(catalogs: Catalogs, job: Job) -> Speaker:
    """For the job's public messages: the server's locale when it was asked for."""
    return catalogs.speaker(job.source.public_locale)


def localized(text: Text) -> app_commands.locale_str:
    """A command field with parameters: Discord's default is its English, the translator
    renders it for each locale."""
    return app_commands.locale_str(english(text), **{TEXT_EXTRA: text})


# Command and option names stay as they are in every language: texts, guides and error
# messages name `/edit video_url:` and `/kling-admin jobs fail`, and must stay true. The
# context menu's name is shown, never typed, so it is translated.
_TRANSLATED_NAMES = (app_commands.ContextMenu,)


class CommandTranslator(app_commands.Translator):
    """Descriptions, choices and the context menu's name from the gettext catalogs."""

    def __init__(self, catalogs: Catalogs) -> None:
        self.catalogs = catalogs

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        location = context.location
        names = (
            app_commands.TranslationContextLocation.command_name,
            app_commands.TranslationContextLocation.group_name,
            app_commands.TranslationContextLocation.parameter_name,
        )
        if location in names and not isinstance(context.data, _TRANSLATED_NAMES):
            return None
        text = string.extras.get(TEXT_EXTRA)
        if not isinstance(text, Text):
            text = Text(msgid=string.message)
        speaker = self.catalogs.speaker(locale.value)
        if self.catalogs.translation(text.msgid, speaker.locale) is None:
            return None  # Discord shows the English default
        return speaker(text)
