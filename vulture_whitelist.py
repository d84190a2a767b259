"""Names vulture (`make deadcode`) reports as unused that are used, by something it can't see.

Framework entry points (pydantic validators, discord.py callbacks and hooks, aiohttp routes,
pytest fixtures and hooks) are skipped by rule in `[tool.vulture]` in pyproject.toml; this
file lists the rest, one reason each. Never imported: vulture only reads it.
"""
# ruff: noqa: B018

import sqlite3

import av
import discord

from bot.client import KlingBot
from bot.evolink.models import CreditBalance, TaskUsage
from bot.media.store import MediaStore
from cogs.admin.params import _RuledChannel
from sandbox.discord_emulator.driver import DriverMixin
from sandbox.discord_emulator.interactions import InteractionRecord
from sandbox.discord_emulator.models import ChannelType, Download, MessageType
from sandbox.discord_emulator.permissions import Permissions
from storage.models import Job, JobState, MediaObject
from tests.integration.test_discord_routing import restore_discord_hosts

# Fields of EvoLink's responses: parsed as the contract says, kept for logs and debugging.
TaskUsage.billing_rule
TaskUsage.user_group
CreditBalance.used_credits

# Columns of the rows, read back as a whole.
Job.updated_at
Job.delivered_at
MediaObject.deleted_at

# The store protocol and the job-state helper the engine and quota are to be typed against
# (issue 10, items 3 and 5).
MediaStore
JobState.is_active

# discord.py's AutoShardedClient.close() reads the queue KlingBot creates ahead of connect().
KlingBot._AutoShardedClient__queue

# discord.py reads a channel option's types from its transformer, and calls transform().
_RuledChannel.channel_types
_RuledChannel.transform

# discord.py reads a string option's max_length from its parameter's max_value.
discord.app_commands.transformers.CommandParameter.max_value

# Attributes PyAV reads when encoding sample media, and when opening the probe's decoder.
av.VideoStream.pix_fmt
av.AudioStream.layout
av.AudioFrame.sample_rate
av.codec.context.CodecContext.thread_count

# The Discord emulator mirrors Discord's whole vocabulary and documents this driver API
# (sandbox/discord_emulator/README.md), whether or not today's tests use every piece.
ChannelType.ANNOUNCEMENT_THREAD
MessageType.THREAD_STARTER_MESSAGE
Permissions.KICK_MEMBERS
Permissions.BAN_MEMBERS
Permissions.VIEW_AUDIT_LOG
Permissions.SEND_TTS_MESSAGES
Permissions.MANAGE_ROLES
Permissions.MODERATE_MEMBERS
Download.attachment_id
DriverMixin.send_user_command
InteractionRecord.followups
InteractionRecord.autocomplete_choices

# Tests: a fixture requested for its teardown only, and the private discord.py attribute a
# test resets to answer an interaction twice.
restore_discord_hosts
discord.InteractionResponse._response_type

# The SQLite driver's switch for its own transaction handling (storage/database.py).
sqlite3.Connection.isolation_level

# discord.py reads a command's locale_str description from this private attribute when it
# asks the translator (cogs/edit.py words /edit for the configured model after creation).
discord.app_commands.Command._locale_description
