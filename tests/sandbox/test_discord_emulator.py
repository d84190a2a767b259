"""A real discord.py ``commands.Bot`` against the Discord emulator: the core flows.

``ProbeBot`` and ``ProbeCog`` here are shared with ``test_discord_emulator_rules.py`` and
``test_discord_emulator_process.py``; the ``emu`` fixture is in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from sandbox.discord_emulator import DiscordEmulator, MessageFlags, Permissions
from sandbox.discord_emulator.testing import Probe, World, build_world, running_bot

MIB = 1024 * 1024


# -- the bot under test ---------------------------------------------------------------------


class PanelView(discord.ui.View):
    def __init__(self, probe: Probe) -> None:
        super().__init__(timeout=None)
        self.probe = probe

    @discord.ui.button(label="Go", custom_id="panel:go")
    async def go(self, interaction: discord.Interaction, button: discord.ui.Button[PanelView]):
        self.probe.record("clicked", interaction.user.id)
        await interaction.response.edit_message(content="clicked", view=None)

    @discord.ui.button(label="Later", custom_id="panel:later")
    async def later(self, interaction: discord.Interaction, button: discord.ui.Button[PanelView]):
        await interaction.response.defer()  # type 6: acknowledge, update the message later
        await interaction.edit_original_response(content="updated later")
        self.probe.record("later")

    @discord.ui.select(
        custom_id="panel:size",
        options=[discord.SelectOption(label="720p"), discord.SelectOption(label="1080p")],
    )
    async def size(self, interaction: discord.Interaction, select: discord.ui.Select[PanelView]):
        await interaction.response.send_message(f"size {select.values[0]}", ephemeral=True)

    @discord.ui.button(label="Form", custom_id="panel:form")
    async def form(self, interaction: discord.Interaction, button: discord.ui.Button[PanelView]):
        await interaction.response.send_modal(PromptModal(self.probe))


class PromptModal(discord.ui.Modal, title="Edit prompt"):
    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
        label="Prompt", custom_id="prompt"
    )

    def __init__(self, probe: Probe) -> None:
        super().__init__(custom_id="prompt-modal")
        self.probe = probe

    async def on_submit(self, interaction: discord.Interaction) -> None:
        self.probe.record("modal", self.prompt.value)
        await interaction.response.send_message(f"prompt: {self.prompt.value}", ephemeral=True)


class ProbeCog(commands.Cog):
    """Small slash commands, each exercising one thing a real bot does."""

    admin = app_commands.Group(name="admin", description="Admin commands")
    quota = app_commands.Group(name="quota", description="Quota", parent=admin)

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    @app_commands.command(name="echo", description="Say something back")
    async def echo(self, interaction: discord.Interaction, text: str, hidden: bool = False):
        await interaction.response.send_message(text, ephemeral=hidden)

    @app_commands.command(name="edit", description="Edit a clip")
    async def edit(self, interaction: discord.Interaction, clip: discord.Attachment, prompt: str):
        await interaction.response.defer(thinking=True)
        self.probe.record("clip", await clip.read())
        await interaction.followup.send(f"checking {clip.filename}…", wait=True)
        await interaction.edit_original_response(content=f"done: {prompt}")
        self.probe.record("edit")

    @app_commands.command(name="job", description="Start a job with a thread")
    async def job(self, interaction: discord.Interaction):
        await interaction.response.send_message("job started")
        original = await interaction.original_response()
        thread = await original.create_thread(name="job thread")
        result = discord.File(io.BytesIO(b"\x00\x00\x00\x18ftypmp42" + b"v" * 500), "result.mp4")
        sent = await thread.send("here is your clip", file=result)
        self.probe.record("job", (thread.id, sent.id))

    @app_commands.command(name="upload", description="Post a file of a given size")
    async def upload(self, interaction: discord.Interaction, size: int, followup: bool = False):
        await interaction.response.defer(ephemeral=True)
        channel = interaction.channel
        assert isinstance(channel, discord.TextChannel | discord.Thread)
        file = discord.File(io.BytesIO(b"x" * size), "big.mp4")
        try:
            if followup:
                await interaction.followup.send(file=file)
            else:
                await channel.send(file=file)
        except discord.HTTPException as exc:
            self.probe.record("upload", exc)
            await interaction.followup.send(f"failed: {exc.code}", ephemeral=True)
        else:
            self.probe.record("upload", None)
            await interaction.followup.send("uploaded", ephemeral=True)

    @app_commands.command(name="card", description="Answer with a file and an embed")
    async def card(self, interaction: discord.Interaction):
        file = discord.File(io.BytesIO(b"GIF89a" + b"g" * 64), "card.gif")
        await interaction.response.send_message("card", file=file, embed=discord.Embed(title="T"))

    @app_commands.command(name="mention", description="Mention people")
    async def mention(self, interaction: discord.Interaction, other: discord.Member):
        allowed = discord.AllowedMentions(everyone=False, roles=False, users=[interaction.user])
        await interaction.response.send_message(
            f"{interaction.user.mention} your job is done ({other.mention}, @everyone)",
            allowed_mentions=allowed,
        )

    @app_commands.command(name="panel", description="Buttons and a modal")
    async def panel(self, interaction: discord.Interaction):
        await interaction.response.send_message("pick one", view=PanelView(self.probe))

    @app_commands.command(name="purge", description="Moderators only")
    @app_commands.default_permissions(manage_messages=True)
    async def purge(self, interaction: discord.Interaction):
        await interaction.response.send_message("purged", ephemeral=True)

    @quota.command(name="set", description="Set a quota")
    async def quota_set(self, interaction: discord.Interaction, user: discord.Member, amount: int):
        await interaction.response.send_message(f"quota of {user.name} = {amount}")


@app_commands.context_menu(name="Edit this clip")
async def edit_this(interaction: discord.Interaction, message: discord.Message) -> None:
    await interaction.response.send_message(
        f"target {message.id}: {message.content}", ephemeral=True
    )


# -- fixtures -------------------------------------------------------------------------------


@dataclass
class Env:
    emu: DiscordEmulator
    world: World
    bot: commands.Bot
    probe: Probe


class ProbeBot(commands.Bot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s before every non-initial IDENTIFY; tests need not."""


async def _bot(probe: Probe) -> commands.Bot:
    bot = ProbeBot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.01)
    await bot.add_cog(ProbeCog(probe))
    bot.tree.add_command(edit_this)

    @bot.event
    async def on_resumed() -> None:
        probe.record("resumed")

    return bot


@pytest.fixture
async def env(emu: DiscordEmulator) -> AsyncIterator[Env]:
    world = build_world(emu)
    probe = Probe()
    bot = await _bot(probe)
    async with running_bot(emu, bot, "test-token"):
        guild = discord.Object(world.guild.id)
        bot.tree.copy_global_to(guild=guild)
        await bot.tree.sync(guild=guild)
        yield Env(emu, world, bot, probe)


# -- login and setup ------------------------------------------------------------------------


async def test_login_ready_and_guild_create(env: Env) -> None:
    emu, world, bot = env.emu, env.world, env.bot
    assert bot.is_ready()
    assert bot.user is not None and bot.user.id == world.app.bot.id
    assert bot.application_id == world.app.id
    guild = bot.get_guild(world.guild.id)
    assert guild is not None and guild.get_channel(world.channel.id) is not None
    assert guild.filesize_limit == 10 * MIB
    assert guild.me.guild_permissions.attach_files
    called = [(c.method, c.route) for c in emu.rest_calls()]
    assert called[:2] == [("GET", "/users/@me"), ("GET", "/oauth2/applications/@me")]
    assert [g["id"] for g in emu.gateway_events("GUILD_CREATE")] == [str(world.guild.id)]


async def test_tree_sync_registers_guild_commands(env: Env) -> None:
    registered = env.world.app.guild_commands[env.world.guild.id]
    names = {(c["name"], c["type"]) for c in registered}
    assert {("echo", 1), ("edit", 1), ("admin", 1), ("Edit this clip", 3)} <= names
    fetched = await env.bot.tree.fetch_commands(guild=discord.Object(env.world.guild.id))
    assert {c.name for c in fetched} == {c["name"] for c in registered}
    [sync] = env.emu.rest_calls("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
    assert sync.status == 200


async def test_unregistered_command_is_refused(env: Env) -> None:
    from sandbox.discord_emulator import CommandError

    with pytest.raises(CommandError, match="not registered"):
        await env.emu.send_slash_command(env.world.guild, env.world.channel, env.world.member, "x")


# -- slash commands, responses, threads -----------------------------------------------------


async def test_slash_command_attachment_reads_bytes(env: Env) -> None:
    emu, w = env.emu, env.world
    clip = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
    att = emu.add_attachment("clip.mp4", clip, content_type="video/mp4")
    ix = await emu.send_slash_command(
        w.guild, w.channel, w.member, "edit", {"clip": att, "prompt": "make it blue"}
    )
    assert await env.probe.wait("clip") == clip
    option = next(o for o in ix.payload["data"]["options"] if o["name"] == "clip")
    assert option == {"name": "clip", "type": 11, "value": str(att.id)}
    assert ix.payload["data"]["resolved"]["attachments"][str(att.id)]["size"] == len(clip)
    assert [d.status for d in emu.downloads] == [200]


async def test_defer_followup_replaces_thinking_then_edit(env: Env) -> None:
    emu, w = env.emu, env.world
    att = emu.add_attachment("clip.mp4", b"data")
    ix = await emu.send_slash_command(
        w.guild, w.channel, w.member, "edit", {"clip": att, "prompt": "p"}
    )
    await env.probe.wait("edit")
    assert ix.ack_type == 5 and ix.ack_latency is not None and ix.ack_latency < 3
    assert ix.thinking_replaced
    [original] = ix.responses
    assert original.content == "done: p" and not original.loading
    history = [(r.content, bool(r.flags & MessageFlags.LOADING)) for r in original.history]
    assert history == [("", True), ("checking clip.mp4…", False), ("done: p", False)]
    assert [m.id for m in emu.messages(w.channel)] == [original.id]
    updates = emu.gateway_events("MESSAGE_UPDATE")
    assert [u["content"] for u in updates] == ["checking clip.mp4…", "done: p"]


async def test_ephemeral_response_is_private(env: Env) -> None:
    emu, w = env.emu, env.world
    ix = await emu.send_slash_command(
        w.guild, w.channel, w.member, "echo", {"text": "secret", "hidden": True}
    )
    message = await emu.wait_for_response(ix)
    assert message.ephemeral and message.visible_to == w.member.user.id
    assert ix.ephemeral_responses == [message]
    assert emu.messages(w.channel) == []
    assert emu.messages(w.channel, visible_to=w.member) == [message]
    assert emu.gateway_events("MESSAGE_CREATE") == []

    public = await emu.send_slash_command(w.guild, w.channel, w.member, "echo", {"text": "hi all"})
    shown = await emu.wait_for_response(public)
    assert [e["id"] for e in emu.gateway_events("MESSAGE_CREATE")] == [str(shown.id)]


async def test_thread_from_original_response_with_file(env: Env) -> None:
    emu, w = env.emu, env.world
    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "job")
    thread_id, sent_id = await env.probe.wait("job")
    [thread] = emu.threads(w.channel)
    assert thread.id == thread_id == ix.original_message_id
    assert thread.starter_message_id == ix.original_message_id and thread.type == 11
    [created] = emu.gateway_events("THREAD_CREATE")
    assert created["id"] == str(thread.id) and created["newly_created"] is True
    [post] = emu.messages(thread)
    assert post.id == sent_id and post.content == "here is your clip"
    [att] = post.attachments
    async with aiohttp.ClientSession() as http, http.get(att.signed_url(emu.state.cdn)) as resp:
        body = await resp.read()
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "video/mp4"
        assert int(resp.headers["Content-Length"]) == len(body) == att.size
    assert env.bot.get_channel(thread.id) is not None


async def test_response_with_file_and_embed(env: Env) -> None:
    emu, w = env.emu, env.world
    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "card")
    card = await emu.wait_for_response(ix)
    assert card.embeds[0]["title"] == "T"
    [att] = card.attachments
    assert (att.filename, att.content_type, att.data[:6]) == ("card.gif", "image/gif", b"GIF89a")
    assert card.type == 20 and card.webhook_id == w.app.id


async def test_world_changes_reach_the_connected_bot(env: Env) -> None:
    emu, w, bot = env.emu, env.world, env.bot
    # Bot-side caches change when gateway events arrive, which the emulator cannot see:
    # wait with the bot's own events (emu.wait_for re-checks on emulator changes only).
    created = bot.wait_for("guild_channel_create")
    role_added = bot.wait_for("guild_role_create")
    joined = bot.wait_for("guild_join")
    channel = emu.create_text_channel(w.guild.id, "later")
    role = emu.create_role(w.guild.id, "mods", Permissions.MANAGE_MESSAGES)
    second = emu.create_guild("Second")
    assert (await asyncio.wait_for(created, 5)).id == channel.id
    assert (await asyncio.wait_for(role_added, 5)).id == role.id
    assert (await asyncio.wait_for(joined, 5)).id == second.id


# -- limits and permissions -----------------------------------------------------------------


async def test_a_system_channel_reaches_the_bot_and_must_be_a_text_channel(env: Env) -> None:
    emu, w, bot = env.emu, env.world, env.bot
    updated = bot.wait_for("guild_update")
    emu.set_system_channel(w.guild.id, w.channel.id)
    _, guild = await asyncio.wait_for(updated, 5)
    assert guild.system_channel is not None and guild.system_channel.id == w.channel.id
    other = emu.create_guild("Other", add_bots=False)
    elsewhere = emu.create_text_channel(other.id, "general")
    with pytest.raises(ValueError, match="not a text channel of"):
        emu.set_system_channel(w.guild.id, elsewhere.id)
    joined = bot.wait_for("guild_join")
    late = emu.create_guild("Late", add_bots=False)
    welcome = emu.create_text_channel(late.id, "welcome")
    emu.set_system_channel(late.id, welcome.id)
    emu.add_bot(late.id, w.app)  # after READY: on_guild_join, with its system channel
    found = await asyncio.wait_for(joined, 5)
    assert found.id == late.id and found.system_channel is not None
    assert found.system_channel.id == welcome.id


async def test_file_over_upload_limit_is_413_until_boosted(env: Env) -> None:
    emu, w = env.emu, env.world
    await emu.send_slash_command(w.guild, w.channel, w.member, "upload", {"size": 10 * MIB + 1})
    error = await env.probe.wait("upload")
    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (413, 40005)

    updated = env.bot.wait_for("guild_update")
    emu.set_premium_tier(w.guild.id, 2)
    _, guild = await asyncio.wait_for(updated, 5)  # GUILD_UPDATE reached the bot
    assert guild.premium_tier == 2 and guild.filesize_limit == 50 * MIB
    env.probe.forget("upload")
    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "upload", {"size": 11 * MIB})
    assert await env.probe.wait("upload") is None
    assert ix.payload["attachment_size_limit"] == 50 * MIB
    [message] = emu.messages(w.channel)
    assert message.attachments[0].size == 11 * MIB


async def test_missing_attach_files_is_403(env: Env) -> None:
    emu, w = env.emu, env.world
    bot_role = emu.bot_role(w.guild.id, w.app)
    emu.set_overwrite(w.channel.id, w.guild.id, deny=Permissions.ATTACH_FILES)
    emu.set_overwrite(w.channel.id, bot_role.id, deny=Permissions.ATTACH_FILES)
    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "upload", {"size": 10})
    error = await env.probe.wait("upload")
    assert isinstance(error, discord.Forbidden)
    assert (error.status, error.code, error.text) == (403, 50013, "Missing Permissions")
    assert int(ix.payload["app_permissions"]) & Permissions.ATTACH_FILES == 0
    assert emu.messages(w.channel) == []


async def test_allowed_mentions_recorded_and_only_requester_pinged(env: Env) -> None:
    emu, w = env.emu, env.world
    bob = emu.create_member(w.guild.id, "bob")
    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "mention", {"other": bob})
    message = await emu.wait_for_response(ix)
    assert message.allowed_mentions == {
        "parse": [],
        "users": [w.member.user.id],
        "replied_user": True,
    }
    assert message.pinged_user_ids == [w.member.user.id]
    assert message.mentions == [w.member.user.id] and not message.mention_everyone


# -- components, modals, context menus, subcommands -----------------------------------------


async def test_button_click_and_modal_submit(env: Env) -> None:
    emu, w = env.emu, env.world
    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "panel")
    panel = await emu.wait_for_response(ix)

    form = await emu.click_button(w.channel, w.member, panel, "panel:form")
    await emu.wait_for(lambda: form.modal is not None)
    assert form.ack_type == 9 and form.modal is not None
    assert form.modal["custom_id"] == "prompt-modal"
    submitted = await emu.submit_modal(form, {"prompt": "slow motion"})
    assert await env.probe.wait("modal") == "slow motion"
    reply = await emu.wait_for_response(submitted)
    assert reply.content == "prompt: slow motion" and reply.ephemeral

    later = await emu.click_button(w.channel, w.member, panel, "panel:later")
    await env.probe.wait("later")
    assert later.ack_type == 6 and later.original_message_id == panel.id
    assert panel.content == "updated later"

    picked = await emu.select_menu(w.channel, w.member, panel, "panel:size", ["1080p"])
    assert (await emu.wait_for_response(picked)).content == "size 1080p"

    click = await emu.click_button(w.channel, w.member, panel, "panel:go")
    assert await env.probe.wait("clicked") == w.member.user.id
    await emu.wait_for_ack(click)
    assert click.ack_type == 7
    assert panel.content == "clicked" and panel.components == []
    assert [r.content for r in panel.history] == ["pick one", "updated later", "clicked"]


async def test_message_context_menu(env: Env) -> None:
    emu, w = env.emu, env.world
    target = emu.post_user_message(w.channel.id, w.member.user.id, "look at this")
    ix = await emu.send_message_command(w.guild, w.channel, w.member, "Edit this clip", target)
    reply = await emu.wait_for_response(ix)
    assert reply.content == f"target {target.id}: look at this"
    assert ix.payload["data"]["type"] == 3 and ix.payload["data"]["target_id"] == str(target.id)


async def test_subcommand_group_options(env: Env) -> None:
    emu, w = env.emu, env.world
    ix = await emu.send_slash_command(
        w.guild, w.channel, w.member, "admin quota set", {"user": w.member, "amount": 7}
    )
    reply = await emu.wait_for_response(ix)
    assert reply.content == "quota of alice = 7"
    [group] = ix.payload["data"]["options"]
    assert (group["name"], group["type"]) == ("quota", 2)
    assert group["options"][0]["name"] == "set" and group["options"][0]["type"] == 1


async def test_default_member_permissions_hide_moderator_commands(env: Env) -> None:
    from sandbox.discord_emulator import CommandError

    emu, w = env.emu, env.world
    with pytest.raises(CommandError, match="default_member_permissions"):
        await emu.send_slash_command(w.guild, w.channel, w.member, "purge")
    mod = emu.create_member(w.guild.id, "mod", permissions=Permissions.MANAGE_MESSAGES)
    ix = await emu.send_slash_command(w.guild, w.channel, mod, "purge")
    assert (await emu.wait_for_response(ix)).content == "purged"
    emu.enforce_command_permissions = False  # as if an admin opened it up in the settings
    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "purge")
    assert (await emu.wait_for_response(ix)).visible_to == w.member.user.id


# -- gateway --------------------------------------------------------------------------------


async def test_gateway_resume_after_4000_close(env: Env) -> None:
    emu, w = env.emu, env.world
    [session] = emu.gateway.sessions.values()
    assert await emu.disconnect_gateway(4000) == 1
    await env.probe.wait("resumed")
    assert session.resumes == 1 and 4000 in emu.gateway.close_codes
    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "echo", {"text": "back"})
    assert (await emu.wait_for_response(ix)).content == "back"


async def test_gateway_invalid_session_reidentifies(env: Env) -> None:
    emu, w = env.emu, env.world
    await emu.disconnect_gateway(4000, invalidate=True)
    await emu.wait_for(lambda: len(emu.gateway.sessions) == 2 and emu.gateway.connected(w.app.id))
    ix = await emu.send_slash_command(w.guild, w.channel, w.member, "echo", {"text": "again"})
    assert (await emu.wait_for_response(ix)).content == "again"
    assert len(emu.gateway_events("READY")) == 2
