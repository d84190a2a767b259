"""Each reader's language, end to end with the real discord.py client: a member's private
answers follow their Discord client (`locale`), the public messages follow the server's
preferred locale (`guild_locale`), also when the tracker posts them later."""

from __future__ import annotations

import re

import pytest

from sandbox.evolink_sim import TaskScript
from tests.e2e.admin_view import add_moderator, admin
from tests.e2e.harness import Stack
from tests.e2e.test_first_steps import new_server
from tests.e2e.user_view import ephemeral_answer

pytestmark = pytest.mark.both_engines

MODAL = 9  # interaction callback type of a form


async def test_a_german_member_is_answered_in_german_while_the_server_reads_english(
    stack: Stack,
) -> None:
    emu, world = stack.emu, stack.world
    emu.state.users[world.member.user.id].locale = "de"
    assert world.guild.preferred_locale == "en-US"
    await stack.start_bot()

    ix = await stack.edit({"prompt": "make it snow", "video": stack.clip(seconds=4.0)})
    reply = await ephemeral_answer(stack, ix)
    assert re.fullmatch(
        r"✅ Bearbeitung #\d+ gestartet \(abgerechnet als 4 s\)\. "
        r"kling-o1-video-edit: 48 Credits\. Verfolge sie in <#\d+>\.",
        reply.content,
    ), reply.content

    thread = await emu.wait_for_thread(world.channel)
    delivered = await emu.wait_for_message(thread, lambda m: bool(m.attachments))
    status = emu.messages(world.channel)[0]
    assert status.content.startswith("🎬 **Kling edit #") and "Billed as 4 s" in status.content
    assert "your edit #" in delivered.content and "is ready!" in delivered.content
    buttons = [c["label"] for row in delivered.components for c in row["components"]]
    assert buttons == ["Edit again", "Re-run"]  # the post is public: the server's language

    # The buttons answer whoever presses them in their own language.
    job_id = int(re.findall(r"#(\d+)", delivered.content)[0])
    click = await emu.click_button(thread, world.member, delivered, f"kling:again:{job_id}")
    await emu.wait_for_ack(click)
    assert click.ack_type == MODAL and click.modal is not None
    assert click.modal["title"] == f"Bearbeitung #{job_id} erneut bearbeiten"
    assert "Was soll sich ändern?" in str(click.modal["components"])

    quota = await emu.send_slash_command(world.guild, world.channel, world.member, "quota")
    lines = (await ephemeral_answer(stack, quota)).content.splitlines()
    assert lines[0].startswith("**Heute:** 4 s von ") and "verbraucht" in lines[0]
    assert lines[-1].startswith("-# Ein Clip wird nach seiner Länge abgerechnet")


async def test_a_french_servers_public_messages_are_french_and_a_members_answers_english(
    stack: Stack,
) -> None:
    emu, world = stack.emu, stack.world
    world.guild.preferred_locale = "fr"
    await stack.start_bot()

    ix = await stack.edit({"prompt": "make it snow", "video": stack.clip(seconds=4.0)})
    assert "started (billed as 4 s)" in (await ephemeral_answer(stack, ix)).content

    thread = await emu.wait_for_thread(world.channel)
    delivered = await emu.wait_for_message(thread, lambda m: bool(m.attachments))
    status = emu.messages(world.channel)[0]
    await emu.wait_for(lambda: "**Terminé**" in status.content, description="done, in French")
    assert status.content.startswith("🎬 **Montage Kling #") and "Facturé 4 s" in status.content
    assert "ton montage #" in delivered.content and "est prêt !" in delivered.content
    buttons = [c["label"] for row in delivered.components for c in row["components"]]
    assert buttons == ["Retoucher", "Relancer"]

    refused = await stack.edit({"prompt": "make it rain"})  # no clip: the member's English
    assert "Give exactly one clip" in (await ephemeral_answer(stack, refused)).content


async def test_a_failure_stored_with_the_job_is_told_in_the_servers_language(
    stack: Stack,
) -> None:
    """The tracker posts the provider's refusal long after the interaction: the job keeps
    the server's locale and the message's msgid, never a baked English sentence."""
    emu, world = stack.emu, stack.world
    world.guild.preferred_locale = "ja"
    emu.state.users[world.member.user.id].locale = "pt-BR"
    await stack.start_bot()
    stack.sim.script_next_task(
        TaskScript(outcome="failed", error_code="content_policy_violation", processing_s=20)
    )
    ix = await stack.edit({"prompt": "swap the face", "video": stack.clip()})
    assert "Edição #" in (await ephemeral_answer(stack, ix)).content

    thread = await emu.wait_for_thread(world.channel)
    notice = await emu.wait_for_message(thread, lambda m: "うまくいきませんでした" in m.content)
    assert "プロバイダーの安全フィルター" in notice.content
    assert "料金はかかっていません" in notice.content  # refunded, said in Japanese
    assert "{" not in notice.content and "msgid" not in notice.content
    status = emu.messages(world.channel)[0]
    await emu.wait_for(lambda: "**失敗**" in status.content, description="failed, in Japanese")


async def test_a_member_who_is_not_a_moderator_is_refused_in_their_language(
    stack: Stack,
) -> None:
    emu, world = stack.emu, stack.world
    emu.enforce_command_permissions = False  # as if an admin opened the command to everyone
    emu.state.users[world.member.user.id].locale = "ja"
    await stack.start_bot()

    ix = await emu.send_slash_command(
        world.guild, world.channel, world.member, "kling-admin limits show"
    )
    answer = await emu.wait_for_response(ix)
    assert answer.ephemeral
    assert answer.content.startswith("/kling-admin はモデレーターだけが使えます。")


async def test_a_moderator_reads_answers_in_their_language_and_members_see_theirs(
    stack: Stack,
) -> None:
    """A Brazilian moderator pauses a German server: the answer is Portuguese, the refusal
    a German member then gets is German, with the moderator's own words as they were."""
    emu, world = stack.emu, stack.world
    moderator = add_moderator(stack)
    emu.state.users[moderator.user.id].locale = "pt-BR"
    emu.state.users[world.member.user.id].locale = "de"
    await stack.start_bot()

    answer = await admin(stack, moderator, "pause", {"reason": "manutenção até 18h"})
    assert answer == "As edições de vídeo estão pausadas neste servidor: manutenção até 18h"
    shown = await admin(stack, moderator, "limits show")
    assert shown.startswith("**Limites do servidor em vigor**")
    assert "⏸️ Pausado: manutenção até 18h" in shown

    refused = await stack.edit({"prompt": "make it snow", "video": stack.clip()})
    assert (await ephemeral_answer(stack, refused)).content == (
        "❌ Videobearbeitungen sind auf diesem Server pausiert: manutenção até 18h"
    )


@pytest.mark.parametrize("locale", ["ko", "zz-ZZ", "x" * 300])
async def test_a_locale_without_a_catalog_or_made_up_reads_english(
    stack: Stack, locale: str
) -> None:
    """Discord adds locales over time and a forged interaction can send anything: both read
    English, and nothing breaks."""
    await stack.start_bot()
    ix = await stack.emu.send_slash_command(
        stack.world.guild, stack.world.channel, stack.world.member, "edit",
        {"prompt": "make it rain"}, locale=locale,
    )
    answer = (await ephemeral_answer(stack, ix)).content
    assert answer.startswith("❌ Give exactly one clip: attach it as `video`")


async def test_a_german_member_reads_the_cut_the_models_price_and_the_refusals_in_german(
    stack: Stack,
) -> None:
    emu, world = stack.emu, stack.world
    emu.state.users[world.member.user.id].locale = "de"
    await stack.start_bot(EVOLINK_MODELS="kling-o1-video-edit,kling-o1-video-edit-fast")

    both = await stack.edit({"prompt": "make it snow", "video": stack.clip(),
                             "video_url": "https://example.com/clip.mp4"})
    refusal = (await ephemeral_answer(stack, both)).content.splitlines()
    assert refusal[0] == ("❌ Gib genau einen Clip an: hänge ihn als `video` an oder füge einen "
                          "Link als `video_url` ein, nicht beides.")
    assert refusal[1] == "**Optionen von /edit**"
    assert refusal[-1].startswith("- `model`: Welches Modell den Clip bearbeitet (Standard: ")

    past = await stack.edit({"prompt": "make it snow", "video": stack.clip(), "start": 30})
    assert (await ephemeral_answer(stack, past)).content == (
        "❌ Dein Clip ist 0:04 lang; `start` 0:30 liegt hinter seinem Ende. Wähle einen Start "
        "bei oder vor 0:01."
    )

    ix = await stack.edit({"prompt": "make it snow", "video": stack.clip(seconds=25.0),
                           "model": "kling-o1-video-edit-fast"})
    accepted = (await ephemeral_answer(stack, ix)).content
    assert ("(bearbeitet wird 0:00–0:20 deines 0:25-Clips, abgerechnet als 20 s). "
            "kling-o1-video-edit-fast: 136 Credits, zählt als 12 s deines Kontingents.") in accepted
    thread = await emu.wait_for_thread(world.channel)
    await emu.wait_for_message(thread, lambda m: bool(m.attachments))

    quota = await emu.send_slash_command(world.guild, world.channel, world.member, "quota")
    rule = (await ephemeral_answer(stack, quota)).content.splitlines()[-1]
    assert rule.startswith("-# Ein Clip wird nach seiner Länge abgerechnet, aufgerundet: ")
    assert "eine kling-o1-video-edit-fast-Sekunde zählt 6,8/12 einer Sekunde" in rule


async def test_the_first_steps_guide_reads_in_the_servers_language(stack: Stack) -> None:
    await stack.start_bot()
    guild, welcome = new_server(stack, "Serveur français")
    guild.preferred_locale = "fr"
    stack.emu.add_bot(guild.id, stack.world.app)
    guide = (await stack.emu.wait_for_message(welcome, lambda m: True)).content.splitlines()
    assert guide[0] == "👋 **Les montages vidéo Kling sont prêts sur ce serveur.**"
    assert guide[1].startswith("- **Qui peut monter :** chaque membre, avec `/edit`")
    assert guide[3].endswith("demande le guide de modération à la personne qui gère ce bot.")
