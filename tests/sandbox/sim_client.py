"""A plain HTTP client for the EvoLink simulator's tests: public API and `/_sim/` control."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from sandbox.evolink_sim import EvolinkSimulator

API_KEY = "sk-evo-test"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MODEL = "kling-o1-video-edit"
VIDEO = "https://cdn.example.com/clip.mp4"  # not fetched when the script skips input checks


@dataclass
class SimClient:
    http: aiohttp.ClientSession
    sim: EvolinkSimulator

    def body(self, video_url: str = VIDEO, **fields: Any) -> dict[str, Any]:
        return {"model": MODEL, "prompt": "make it rain", "video_urls": [video_url], **fields}

    async def create(self, video_url: str = VIDEO, **fields: Any) -> aiohttp.ClientResponse:
        """POST a valid create body; the response is read (text) before it is returned."""
        url = self.sim.base_url + "/v1/videos/generations"
        async with self.http.post(url, json=self.body(video_url, **fields), headers=AUTH) as r:
            await r.read()
            return r

    async def create_ok(self, video_url: str = VIDEO, **fields: Any) -> str:
        response = await self.create(video_url, **fields)
        assert response.status == 200, await response.text()
        return str((await response.json())["id"])

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.sim.base_url + path, headers=AUTH) as r:
            return r.status, await r.json()

    async def query(self, task_id: str) -> tuple[int, Any]:
        return await self.get(f"/v1/tasks/{task_id}")

    async def used_and_remaining(self) -> tuple[float, float]:
        status, body = await self.get("/v1/credits")
        assert status == 200
        return body["data"]["user"]["used_credits"], body["data"]["user"]["remaining_credits"]

    async def control(self, path: str, payload: Any = None) -> tuple[int, Any]:
        async with self.http.post(f"{self.sim.base_url}/_sim{path}", json=payload) as r:
            return r.status, await r.json()
