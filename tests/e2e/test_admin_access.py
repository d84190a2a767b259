"""Who may use /kling-admin: Discord's default permissions, the bot's own runtime check,
and the server's moderator role — for every subcommand the bot registers.

The subcommands are enumerated from the bot's command tree, so a new one is covered
without touching this file; every option (required or not) gets a valid value that would
change something if the invocation went through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from discord import AppCommandOptionType, app_commands

from sandbox.discord_emulator import CommandError, Permissions
from sandbox.discord_emulator.models import Channel, Member, Role
from storage.models import JobState
from tests.e2e.admin_view import (
    GROUP,
    MODERATOR_ONLY,
    actions_by,
    add_moderator,
    admin,
    audited,
    edit_delivered,
    jobs,
    try_edit,
)
from tests.e2e.harness import Stack

# What the project issue lists; the tree may grow, never shrink below this.
DOCUMENTED = {
    "limits show", "limits set", "budget set", "user show", "user limit", "user grant",
    "user reset", "user block", "user unblock", "role limit", "role clear", "channels allow",
    "channels deny", "channels remove", "channels list", "jobs list", "jobs redeliver",
    "jobs fail", "usage", "pause", "resume", "audit", "log-channel set", "moderator-role set",
}
# Every table a moderator can change, compared whole; jobs by what moderators change.
ADMIN_TABLES = (
    "guild_settings", "user_limits", "role_limits", "blocked_users", "channel_rules",
    "quota_ledger", "audit_log", "media_objects",
)
POST_MESSAGE = ("POST", "/channels/{channel_id}/messages")
SHORT_TIMEOUT = "0.3"  # seconds: a hung create becomes an uncertain job quickly


# No Discord rate limits: several /edits in one channel within seconds are not the point.
pytestmark = pytest.mark.stack(rate_limits=False)


@dataclass
class Scene:
    mod: Member  # Manage Server
    outsider: Member  # an ordinary member, with the `regulars` role
    helper: Member  # the `helpers` role, no Manage Server
    regulars: Role
    helpers: Role
    studio: Channel
    delivered_job: int = 0
    stuck_job: int = 0


def build_scene(stack: Stack) -> Scene:
    """Members, roles and channels exist before the bot starts (and caches them)."""
    emu, guild = stack.emu, stack.world.guild
    regulars = emu.create_role(guild.id, "regulars")
    helpers = emu.create_role(guild.id, "helpers")
    return Scene(
        mod=add_moderator(stack),
        outsider=emu.create_member(guild.id, "outsider", roles=[regulars.id]),
        helper=emu.create_member(guild.id, "helper", roles=[helpers.id]),
        regulars=regulars,
        helpers=helpers,
        studio=emu.create_text_channel(guild.id, "studio"),
    )


async def add_jobs(stack: Stack, scene: Scene) -> None:
    """One delivered job (to re-post) and one whose submission is uncertain (to fail: a
    job the provider runs cannot be failed). The bot runs with a short provider timeout."""
    await edit_delivered(stack)
    stack.sim.hang_next_create()
    assert "did not answer in time" in await try_edit(stack)
    stuck, delivered = await jobs(stack)
    assert (stuck.state, delivered.state) == (JobState.SUBMISSION_UNKNOWN, JobState.DELIVERED)
    scene.delivered_job, scene.stuck_job = delivered.id, stuck.id


def subcommands(stack: Stack) -> list[app_commands.Command[Any, ..., Any]]:
    """Every leaf of /kling-admin in the bot's own tree; `moderator-role set` last."""
    assert stack.bot is not None
    group = stack.bot.tree.get_command(GROUP)
    assert isinstance(group, app_commands.Group)
    leaves = [c for c in group.walk_commands() if isinstance(c, app_commands.Command)]
    leaves.sort(key=lambda c: c.qualified_name.endswith("moderator-role set"))
    assert {path(c) for c in leaves} >= DOCUMENTED
    return leaves


def path(command: app_commands.Command[Any, ..., Any]) -> str:
    return command.qualified_name.removeprefix(f"{GROUP} ")


def option_value(stack: Stack, scene: Scene, sub: str, param: app_commands.Parameter) -> Any:
    """A valid value for every option, chosen so the invocation would change something."""
    if param.choices:
        return param.choices[0].value
    kind = param.type
    if kind is AppCommandOptionType.user:
        return stack.world.member
    if kind is AppCommandOptionType.role:
        return scene.regulars  # `moderator-role set` would hand the outsider the keys
    if kind is AppCommandOptionType.channel:
        return scene.studio
    if kind is AppCommandOptionType.integer:
        if param.name == "job":
            return scene.delivered_job if sub == "jobs redeliver" else scene.stuck_job
        return max(int(param.min_value or 0), 1)  # 1 is within every range
    if kind is AppCommandOptionType.string:
        return "checking who may do this"
    raise AssertionError(f"no test value for {sub} {param.name} ({kind})")


def all_options(stack: Stack, scene: Scene, command: app_commands.Command[Any, ..., Any]
                ) -> dict[str, Any]:
    sub = path(command)
    return {p.name: option_value(stack, scene, sub, p) for p in command.parameters}


async def admin_state(stack: Stack) -> dict[str, list[tuple[Any, ...]]]:
    assert stack.bot is not None and stack.bot.services is not None
    state: dict[str, list[tuple[Any, ...]]] = {}
    async with stack.bot.services.db.read() as conn:
        for table in ADMIN_TABLES:
            cursor = await conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2")
            state[table] = [tuple(row) for row in await cursor.fetchall()]
        cursor = await conn.execute(
            "SELECT id, state, error_code, error_message, billed_seconds FROM jobs ORDER BY id"
        )
        state["jobs"] = [tuple(row) for row in await cursor.fetchall()]
    return state


async def test_discord_hides_kling_admin_from_members_without_manage_server(
    stack: Stack,
) -> None:
    scene = build_scene(stack)
    await stack.start_bot()
    guild = stack.world.guild
    [registered] = [
        c for c in stack.world.app.guild_commands[guild.id] if c["name"] == GROUP
    ]
    assert int(registered["default_member_permissions"]) == Permissions.MANAGE_GUILD

    dispatched = len(stack.emu.gateway_events("INTERACTION_CREATE"))
    for command in subcommands(stack):
        for member in (scene.outsider, scene.helper):
            with pytest.raises(CommandError, match="default_member_permissions"):
                await stack.emu.send_slash_command(
                    guild, stack.world.channel, member, command.qualified_name,
                    all_options(stack, scene, command),
                )
    assert len(stack.emu.gateway_events("INTERACTION_CREATE")) == dispatched  # bot saw none
    shown = await admin(stack, scene.mod, "limits show")
    assert "Server limits in force" in shown
    # A bot started a moment ago has no reading a day old to compare the balance with.
    assert ("Balance trend: not known yet for the last day, not known yet for the last 7 days"
            in shown)


@pytest.mark.money_open("an uncertain create leaves a provider task outside the books on purpose")
async def test_the_bot_refuses_every_subcommand_to_a_non_moderator_and_changes_nothing(
    stack: Stack,
) -> None:
    # As if a server admin had opened /kling-admin to everyone in Server Settings →
    # Integrations: only the bot's own runtime check stands in the way.
    stack.emu.enforce_command_permissions = False
    scene = build_scene(stack)
    await stack.start_bot(EVOLINK_READ_TIMEOUT_SECONDS=SHORT_TIMEOUT)
    await add_jobs(stack, scene)
    before = await admin_state(stack)
    posted = len(stack.emu.rest_calls(*POST_MESSAGE))

    swept = []
    for command in subcommands(stack):
        options = all_options(stack, scene, command)
        answer = await admin(stack, scene.outsider, path(command), options)
        assert MODERATOR_ONLY in answer and "Manage Server" in answer, (command.name, answer)
        swept.append(path(command))

    assert swept[-1] == "moderator-role set"  # had it worked, the outsider would pass now
    assert MODERATOR_ONLY in await admin(stack, scene.outsider, "limits show")
    assert await admin_state(stack) == before
    assert len(stack.emu.rest_calls(*POST_MESSAGE)) == posted  # nothing posted anywhere
    assert actions_by(await audited(stack, scene.mod), scene.outsider.user.id) == []


@pytest.mark.money_open("an uncertain create leaves a provider task outside the books on purpose")
async def test_the_moderator_role_opens_every_subcommand_to_its_members(stack: Stack) -> None:
    stack.emu.enforce_command_permissions = False
    scene = build_scene(stack)
    await stack.start_bot(EVOLINK_READ_TIMEOUT_SECONDS=SHORT_TIMEOUT)
    await add_jobs(stack, scene)
    helper = scene.helper
    assert MODERATOR_ONLY in await admin(stack, helper, "limits show")

    answer = await admin(stack, scene.mod, "moderator-role set", {"role": scene.helpers})
    assert f"Members with <@&{scene.helpers.id}> may use /kling-admin" in answer

    for command in subcommands(stack):
        answer = await admin(stack, helper, path(command), all_options(stack, scene, command))
        assert MODERATOR_ONLY not in answer, (command.name, answer)
    # The same values the outsider was refused with really change things.
    done = actions_by(await audited(stack, scene.mod), helper.user.id)
    for action in ("limits.set", "budget.set", "user.grant", "user.block", "role.limit",
                   "channels.allow", "jobs.redeliver", "jobs.fail", "pause", "resume",
                   "log_channel.set", "moderator_role.set"):
        assert action in done, (action, done)
    [stuck] = [j for j in await jobs(stack) if j.id == scene.stuck_job]
    assert stuck.state is JobState.FAILED

    # The helper's last act made `regulars` the moderator role: helpers lost it, the
    # outsider (a regular) gained it; clearing the role leaves Manage Server only.
    assert MODERATOR_ONLY in await admin(stack, helper, "limits show")
    assert MODERATOR_ONLY not in await admin(stack, scene.outsider, "limits show")
    answer = await admin(stack, scene.mod, "moderator-role set")
    assert "Only members with Manage Server" in answer
    assert MODERATOR_ONLY in await admin(stack, scene.outsider, "limits show")
    assert "Server limits in force" in await admin(stack, scene.mod, "limits show")
