"""The emulator at the wire level, without discord.py: REST shapes, limits, gateway, control."""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from typing import Any

import aiohttp
import pytest

from sandbox.discord_emulator import DiscordEmulator, Permissions
from sandbox.discord_emulator.clock import snowflake_time
from sandbox.discord_emulator.testing import World
from tests.sandbox.wire import AUTH, TOKEN


async def _json(resp: aiohttp.ClientResponse) -> Any:
    assert resp.headers["Content-Type"] == "application/json"
    return json.loads(await resp.read())


# -- REST basics ----------------------------------------------------------------------------


async def test_json_errors_auth_and_content_type(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{emu.api_base}/users/@me", headers=AUTH) as resp:
        assert resp.status == 200 and (await _json(resp))["id"] == str(world.app.bot.id)
    async with http.get(f"{emu.api_base}/no/such/route", headers=AUTH) as resp:
        assert resp.status == 404 and await _json(resp) == {"message": "404: Not Found", "code": 0}
    async with http.delete(f"{emu.api_base}/users/@me", headers=AUTH) as resp:
        assert resp.status == 405 and (await _json(resp))["code"] == 0
    async with http.get(f"{emu.api_base}/users/@me") as resp:
        assert resp.status == 401 and (await _json(resp))["message"] == "401: Unauthorized"
    without_agent = {"Authorization": AUTH["Authorization"]}
    async with http.get(f"{emu.api_base}/users/@me", headers=without_agent) as resp:
        assert resp.status == 403  # Discord requires `User-Agent: DiscordBot (url, version)`
    async with http.get(f"{emu.api_base}/channels/123/messages", headers=AUTH) as resp:
        assert resp.status == 404 and (await _json(resp))["code"] == 10003
    async with http.get(f"{emu.api_base}/gateway/bot", headers=AUTH) as resp:
        assert (await _json(resp))["url"] == emu.gateway_url
    assert [(c.status, c.code) for c in emu.rest_calls()] == [
        (200, None),
        (404, 0),
        (405, 0),
        (401, 0),
        (403, 0),
        (404, 10003),
        (200, None),
    ]


async def test_rate_limit_headers_then_429(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    url = f"{emu.api_base}/channels/{world.channel.id}/messages"
    remaining = []
    for i in range(5):
        async with http.post(url, json={"content": str(i)}, headers=AUTH) as resp:
            assert resp.status == 200
            remaining.append(resp.headers["X-RateLimit-Remaining"])
            assert resp.headers["X-RateLimit-Limit"] == "5"
            assert 0 < float(resp.headers["X-RateLimit-Reset-After"]) <= 5
            bucket = resp.headers["X-RateLimit-Bucket"]
    assert remaining == ["4", "3", "2", "1", "0"]
    async with http.post(url, json={"content": "one too many"}, headers=AUTH) as resp:
        body = await _json(resp)
        assert resp.status == 429 and resp.headers["Via"]
        assert resp.headers["X-RateLimit-Bucket"] == bucket
        assert body["global"] is False and 0 < body["retry_after"] <= 5
    other = emu.create_text_channel(world.guild.id, "other")
    async with http.post(
        f"{emu.api_base}/channels/{other.id}/messages", json={"content": "x"}, headers=AUTH
    ) as resp:
        assert resp.status == 200  # the bucket is per channel
    emu.set_rate_limits(False)
    async with http.post(url, json={"content": "unlimited"}, headers=AUTH) as resp:
        assert resp.status == 200 and "X-RateLimit-Limit" not in resp.headers


async def test_wait_for_wakes_on_changes_and_times_out(emu: DiscordEmulator, world: World) -> None:
    waiter = asyncio.ensure_future(emu.wait_for_message(world.channel, lambda m: "2" in m.content))
    emu.post_user_message(world.channel.id, world.member.user.id, "message 1")
    emu.post_user_message(world.channel.id, world.member.user.id, "message 2")
    assert (await asyncio.wait_for(waiter, 5)).content == "message 2"
    with pytest.raises(TimeoutError, match="the impossible"):
        await emu.wait_for(lambda: False, timeout=0.05, description="the impossible")


# -- messages, files, permissions -----------------------------------------------------------


def _multipart(payload: dict[str, Any], files: dict[str, bytes]) -> aiohttp.FormData:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json.dumps(payload))
    for index, (name, data) in enumerate(files.items()):
        form.add_field(
            f"files[{index}]", data, filename=name, content_type="application/octet-stream"
        )
    return form


async def test_multipart_message_edits_and_cdn(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    url = f"{emu.api_base}/channels/{world.channel.id}/messages"
    png = b"\x89PNG\r\n\x1a\n" + b"p" * 100
    payload = {"content": "a picture", "attachments": [{"id": 0, "filename": "a.png"}]}
    async with http.post(url, data=_multipart(payload, {"a.png": png}), headers=AUTH) as resp:
        created = await _json(resp)
    [att] = created["attachments"]
    assert (att["filename"], att["size"], att["content_type"]) == ("a.png", len(png), "image/png")
    assert created["guild_id"] == str(world.guild.id) and created["edited_timestamp"] is None
    assert abs(snowflake_time(int(created["id"])) - time.time()) < 60  # timestamp-based id
    for key in (
        "id",
        "channel_id",
        "type",
        "author",
        "embeds",
        "components",
        "mentions",
        "mention_roles",
        "mention_everyone",
        "pinned",
        "tts",
        "timestamp",
        "flags",
    ):
        assert key in created

    async with http.get(att["url"]) as resp:
        assert resp.status == 200 and await resp.read() == png
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.headers["Content-Length"] == str(len(png))
    async with http.get(att["url"].replace("a.png", "b.png")) as resp:
        assert resp.status == 404

    msg_url = f"{url}/{created['id']}"
    keep = {"content": "edited", "attachments": [{"id": att["id"]}]}
    async with http.patch(msg_url, json=keep, headers=AUTH) as resp:
        edited = await _json(resp)
        assert edited["attachments"] == [att] and edited["edited_timestamp"]
    async with http.patch(msg_url, json={"attachments": []}, headers=AUTH) as resp:
        assert (await _json(resp))["attachments"] == []
    async with http.patch(msg_url, json={"content": ""}, headers=AUTH) as resp:
        assert resp.status == 400 and (await _json(resp))["code"] == 50006
    message = emu.message(int(created["id"]))
    assert [(r.content, len(r.attachment_ids)) for r in message.history] == [
        ("a picture", 1),
        ("edited", 1),
        ("edited", 0),
    ]
    async with http.delete(msg_url, headers=AUTH) as resp:
        assert resp.status == 204
    async with http.get(msg_url, headers=AUTH) as resp:
        assert resp.status == 404 and (await _json(resp))["code"] == 10008
    assert emu.messages(world.channel) == [] and message.deleted


async def test_permissions_and_threads(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    base = f"{emu.api_base}/channels/{world.channel.id}"
    async with http.post(f"{base}/messages", json={"content": "hi"}, headers=AUTH) as resp:
        message = await _json(resp)
    embed = {"content": "x", "embeds": [{"title": "t"}]}
    bot_role = emu.bot_role(world.guild.id, world.app)
    emu.set_role_permissions(world.guild.id, world.guild.id, Permissions.VIEW_CHANNEL)
    emu.set_role_permissions(world.guild.id, bot_role.id, Permissions.SEND_MESSAGES)
    async with http.post(f"{base}/messages", json=embed, headers=AUTH) as resp:
        assert resp.status == 403 and (await _json(resp))["code"] == 50013
    threads_url = f"{base}/messages/{message['id']}/threads"
    async with http.post(threads_url, json={"name": "t"}, headers=AUTH) as resp:
        assert resp.status == 403 and (await _json(resp))["code"] == 50013

    emu.set_role_permissions(
        world.guild.id, bot_role.id, Permissions.SEND_MESSAGES | Permissions.CREATE_PUBLIC_THREADS
    )
    async with http.post(threads_url, json={"name": "job"}, headers=AUTH) as resp:
        thread = await _json(resp)
        assert resp.status == 201 and thread["id"] == message["id"]
        assert thread["parent_id"] == str(world.channel.id) and thread["type"] == 11
        assert thread["thread_metadata"]["archived"] is False
    async with http.post(threads_url, json={"name": "again"}, headers=AUTH) as resp:
        assert resp.status == 400 and (await _json(resp))["code"] == 160004
    in_thread = f"{emu.api_base}/channels/{thread['id']}/messages"
    async with http.post(in_thread, json={"content": "x"}, headers=AUTH) as resp:
        assert resp.status == 403  # SEND_MESSAGES_IN_THREADS is missing
    emu.set_overwrite(world.channel.id, bot_role.id, allow=Permissions.SEND_MESSAGES_IN_THREADS)
    async with http.post(in_thread, json={"content": "x"}, headers=AUTH) as resp:
        assert resp.status == 200
    emu.set_overwrite(world.channel.id, world.app.bot.id, deny=Permissions.VIEW_CHANNEL)
    async with http.post(f"{base}/messages", json={"content": "x"}, headers=AUTH) as resp:
        assert resp.status == 403 and (await _json(resp))["code"] == 50001

    emu.remove_overwrite(world.channel.id, world.app.bot.id)
    async with http.post(
        f"{base}/threads", json={"name": "side", "type": 11}, headers=AUTH
    ) as resp:
        side = await _json(resp)
    assert [t.name for t in emu.threads(world.channel)] == ["job", "side"]
    notice = emu.messages(world.channel)[-1]
    assert (
        notice.type == 18 and notice.content == "side" and side["owner_id"] == str(world.app.bot.id)
    )
    assert [c.name for c in emu.thread_creations] == ["job", "side"]


async def test_mentions_without_and_with_allowed_mentions(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    role = emu.create_role(world.guild.id, "editors", mentionable=True)
    bob = emu.create_member(world.guild.id, "bob", roles=[role.id])
    alice = world.member.user.id
    url = f"{emu.api_base}/channels/{world.channel.id}/messages"
    content = f"<@{alice}> <@&{role.id}> @everyone"
    async with http.post(url, json={"content": content}, headers=AUTH) as resp:
        loud = emu.message(int((await _json(resp))["id"]))
    assert loud.allowed_mentions is None and loud.mention_everyone
    assert set(loud.pinged_user_ids) == {alice, bob.user.id, world.guild.owner_id}
    quiet = {"content": content, "allowed_mentions": {"parse": [], "users": [str(alice)]}}
    async with http.post(url, json=quiet, headers=AUTH) as resp:
        body = await _json(resp)
    assert [m["id"] for m in body["mentions"]] == [str(alice)] and body["mention_roles"] == []
    assert emu.message(int(body["id"])).pinged_user_ids == [alice]


# -- gateway --------------------------------------------------------------------------------


class ZlibClient:
    """A minimal gateway client: one zlib stream per connection, like discord.py's."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.inflate = zlib.decompressobj()

    async def receive(self) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=5)
        if msg.type is aiohttp.WSMsgType.TEXT:
            return dict(json.loads(msg.data))
        assert msg.type is aiohttp.WSMsgType.BINARY, msg
        assert msg.data[-4:] == b"\x00\x00\xff\xff"
        return dict(json.loads(self.inflate.decompress(msg.data)))

    async def send(self, op: int, d: Any) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": d}))


async def test_gateway_zlib_identify_dispatch_and_resume(
    emu: DiscordEmulator, world: World, http: aiohttp.ClientSession
) -> None:
    url = f"{emu.gateway_url}?v=10&encoding=json&compress=zlib-stream"
    post = f"{emu.api_base}/channels/{world.channel.id}/messages"
    intents = 1 | (1 << 9)
    async with http.ws_connect(url) as ws:
        gw = ZlibClient(ws)
        hello = await gw.receive()
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
        await gw.send(1, None)
        assert (await gw.receive())["op"] == 11
        await gw.send(2, {"token": TOKEN, "intents": intents, "properties": {}})
        ready = await gw.receive()
        assert (ready["t"], ready["s"]) == ("READY", 1)
        assert ready["d"]["resume_gateway_url"] == emu.gateway_url
        assert ready["d"]["guilds"] == [{"id": str(world.guild.id), "unavailable": True}]
        guild = await gw.receive()
        assert guild["t"] == "GUILD_CREATE" and guild["d"]["member_count"] == 3
        assert [c["name"] for c in guild["d"]["channels"]] == ["general"]
        assert len(guild["d"]["members"]) == 1  # no GUILD_MEMBERS intent: only the bot
        async with http.post(post, json={"content": "one"}, headers=AUTH):
            pass
        created = await gw.receive()
        assert (created["t"], created["s"], created["d"]["content"]) == ("MESSAGE_CREATE", 3, "one")
        session_id = ready["d"]["session_id"]
    async with http.post(post, json={"content": "missed"}, headers=AUTH):
        pass

    async with http.ws_connect(emu.gateway_url) as ws:  # uncompressed this time
        gw = ZlibClient(ws)
        assert (await gw.receive())["op"] == 10
        await gw.send(6, {"token": TOKEN, "session_id": session_id, "seq": 2})
        replayed = [await gw.receive() for _ in range(3)]
        assert [(e["t"], e["s"]) for e in replayed] == [
            ("MESSAGE_CREATE", 3),
            ("MESSAGE_CREATE", 4),
            ("RESUMED", 5),
        ]
        assert replayed[1]["d"]["content"] == "missed"

    async with http.ws_connect(emu.gateway_url) as ws:
        gw = ZlibClient(ws)
        await gw.receive()
        await gw.send(6, {"token": TOKEN, "session_id": "nope", "seq": 1})
        assert await gw.receive() == {"op": 9, "d": False, "s": None, "t": None}

    async with http.ws_connect(emu.gateway_url) as ws:
        gw = ZlibClient(ws)
        await gw.receive()
        await gw.send(2, {"token": "wrong", "intents": 0, "properties": {}})
        closing = await ws.receive(timeout=5)
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4004


# -- the control API over HTTP, with a hand-written "bot" -----------------------------------


async def test_control_api_drives_a_raw_client(
    emu: DiscordEmulator, http: aiohttp.ClientSession
) -> None:
    control = f"{emu.base_url}/_control"

    async def call(method: str, path: str, body: Any = None, **kw: Any) -> Any:
        if body is not None:
            kw["json"] = body
        async with http.request(method, control + path, **kw) as resp:
            data = await resp.json()
            assert resp.status == 200, data
            return data

    app = await call("POST", "/applications", {"name": "Kling", "bot_token": TOKEN})
    guild = await call("POST", "/guilds", {"name": "Remote", "premium_tier": 3})
    assert guild["upload_limit"] == 100 * 1024 * 1024
    channel = await call("POST", f"/guilds/{guild['id']}/channels", {"name": "edits"})
    member = await call("POST", f"/guilds/{guild['id']}/members", {"username": "carol"})
    att = await call("POST", "/attachments", params={"filename": "c.mp4"}, data=b"clip")
    assert att["content_type"] == "video/mp4" and att["size"] == 4

    commands_url = f"{emu.api_base}/applications/{app['id']}/guilds/{guild['id']}/commands"
    schema = [
        {
            "name": "edit",
            "description": "Edit",
            "options": [{"name": "clip", "description": "Clip", "type": 11, "required": True}],
        }
    ]
    async with http.put(commands_url, json=schema, headers=AUTH) as resp:
        assert resp.status == 200

    async with http.ws_connect(emu.gateway_url) as ws:
        gw = ZlibClient(ws)
        await gw.receive()
        await gw.send(2, {"token": TOKEN, "intents": 1, "properties": {}})
        assert (await gw.receive())["t"] == "READY"
        assert (await gw.receive())["t"] == "GUILD_CREATE"
        version = (await call("GET", "/state"))["version"]

        ix = await call(
            "POST",
            "/interactions/slash",
            {
                "guild_id": guild["id"],
                "channel_id": channel["id"],
                "user_id": member["user"]["id"],
                "name": "edit",
                "options": {"clip": att["id"]},
            },
        )
        event = await gw.receive()
        assert event["t"] == "INTERACTION_CREATE" and event["d"]["id"] == ix["id"]
        data = event["d"]
        assert data["data"]["options"] == [{"name": "clip", "type": 11, "value": att["id"]}]
        assert data["data"]["resolved"]["attachments"][att["id"]]["url"] == att["url"]
        assert data["attachment_size_limit"] == 100 * 1024 * 1024
        assert data["member"]["permissions"] and data["app_permissions"]

        waited = await call("GET", "/wait", params={"since": str(version), "timeout": "5"})
        assert waited["version"] > version
        callback = f"{emu.api_base}/interactions/{data['id']}/{data['token']}/callback"
        answer = {"type": 4, "data": {"content": "on it", "flags": 64}}
        async with http.post(callback, json=answer, params={"with_response": "1"}) as resp:
            body = await _json(resp)
        assert body["interaction"]["response_message_ephemeral"] is True
        assert body["resource"]["message"]["content"] == "on it"

        state = await call("GET", f"/interactions/{ix['id']}")
        assert state["acknowledged"] and state["ack_type"] == 4 and state["ack_latency"] >= 0
        assert [r["content"] for r in state["responses"]] == ["on it"]
        assert await call("GET", f"/channels/{channel['id']}/messages") == []
        visible = await call(
            "GET",
            f"/channels/{channel['id']}/messages",
            params={"visible_to": member["user"]["id"]},
        )
        assert [m["content"] for m in visible] == ["on it"]

        await call("POST", "/clock/advance", {"seconds": 901})
        followup = f"{emu.api_base}/webhooks/{app['id']}/{data['token']}"
        async with http.post(followup, json={"content": "late"}, params={"wait": "1"}) as resp:
            assert resp.status == 401 and (await _json(resp))["code"] == 50027

        assert (await call("POST", "/gateway/disconnect", {"code": 4000}))["closed"] == 1
        closing = await ws.receive(timeout=5)
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4000
