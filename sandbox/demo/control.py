"""Thin HTTP clients for the two stand-ins' control APIs (all loopback)."""

from __future__ import annotations

from typing import Any

import aiohttp

from sandbox.demo.processes import DemoError

JsonObj = dict[str, Any]


class ControlError(DemoError):
    def __init__(self, what: str, status: int, body: Any) -> None:
        super().__init__(f"{what} answered HTTP {status}: {body}")
        self.status = status
        self.body = body


class _Client:
    name = "control API"

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base.rstrip("/")

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        data: bytes | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> Any:
        url = self.base + path
        try:
            async with self.session.request(
                method, url, json=json, params=params, data=data,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                body = await response.json(content_type=None)
                if response.status >= 400:
                    raise ControlError(f"{self.name} {method} {path}", response.status, body)
                return body
        except aiohttp.ClientError as error:
            raise DemoError(f"{self.name} is not answering ({method} {path}: {error})") from error


class EmulatorControl(_Client):
    name = "Discord emulator"

    async def wait(self, since: int, timeout: float = 10.0) -> int:  # noqa: ASYNC109
        """Long-poll until the emulator's state version passes `since`."""
        body = await self.request(
            "GET", "/wait", params={"since": str(since), "timeout": str(timeout)},
            timeout=timeout + 10,
        )
        return int(body["version"])

    async def state(self) -> JsonObj:
        result: JsonObj = await self.request("GET", "/state")
        return result

    async def messages(self, channel_id: str, visible_to: str | None = None) -> list[JsonObj]:
        params = {"visible_to": visible_to} if visible_to else None
        result: list[JsonObj] = await self.request(
            "GET", f"/channels/{channel_id}/messages", params=params
        )
        return result

    async def threads(self, parent_id: str) -> list[JsonObj]:
        result: list[JsonObj] = await self.request(
            "GET", "/threads", params={"parent_id": parent_id}
        )
        return result

    async def interactions(self) -> list[JsonObj]:
        result: list[JsonObj] = await self.request("GET", "/interactions")
        return result

    async def rest_calls(
        self, method: str | None = None, route: str | None = None, status: int | None = None
    ) -> list[JsonObj]:
        params = {"method": method or "", "route": route or "", "status": str(status or "")}
        result: list[JsonObj] = await self.request(
            "GET", "/rest-calls", params={k: v for k, v in params.items() if v}
        )
        return result

    async def upload(self, filename: str, data: bytes, content_type: str) -> JsonObj:
        result: JsonObj = await self.request(
            "POST", "/attachments",
            params={"filename": filename, "content_type": content_type}, data=data,
        )
        return result

    async def slash(
        self, guild_id: str, channel_id: str, user_id: str, name: str, options: JsonObj
    ) -> JsonObj:
        result: JsonObj = await self.request(
            "POST", "/interactions/slash",
            json={
                "guild_id": guild_id, "channel_id": channel_id, "user_id": user_id,
                "name": name, "options": options,
            },
        )
        return result

    async def create_guild(self, name: str) -> JsonObj:
        result: JsonObj = await self.request("POST", "/guilds", json={"name": name})
        return result

    async def create_channel(self, guild_id: str, name: str) -> JsonObj:
        result: JsonObj = await self.request(
            "POST", f"/guilds/{guild_id}/channels", json={"name": name}
        )
        return result

    async def create_member(self, guild_id: str, username: str) -> JsonObj:
        result: JsonObj = await self.request(
            "POST", f"/guilds/{guild_id}/members", json={"username": username}
        )
        return result

    async def advance(self, seconds: float) -> None:
        """Move the emulator's clock (and so the timestamp of the next snowflake) on."""
        await self.request("POST", "/clock/advance", json={"seconds": seconds})

    async def download(self, url: str) -> bytes:
        """An attachment from the emulator's CDN (a loopback URL it handed out)."""
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=30)) as r:
                if r.status != 200:
                    raise DemoError(f"downloading {url} answered HTTP {r.status}")
                return await r.read()
        except aiohttp.ClientError as error:
            raise DemoError(f"downloading {url} failed: {error}") from error


class SimulatorControl(_Client):
    name = "EvoLink simulator"

    async def default_script(self, **script: Any) -> None:
        await self.request("POST", "/default-script", json=script)

    async def script_next(self, **script: Any) -> None:
        await self.request("POST", "/script", json=script)

    async def stats(self) -> JsonObj:
        result: JsonObj = await self.request("GET", "/stats")
        return result

    async def complete(self, task_id: str) -> None:
        """Finish a task now (billed at the clip it measured)."""
        await self.request("POST", f"/complete/{task_id}", json={})

    async def tasks(self) -> list[JsonObj]:
        result = await self.request("GET", "/tasks")
        return list(result["tasks"] if isinstance(result, dict) else result)
