"""A real S3 HTTP endpoint on loopback (moto's threaded server) for the S3 media store's tests.

Never an in-process mock of the client: the bot's aiobotocore client signs, sends and parses
real HTTP, and presigned links are opened with plain aiohttp, as the provider would.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from unittest import mock

import pytest
from aiobotocore.session import get_session
from moto.server import ThreadedMotoServer

from sandbox.demo.processes import free_port

REGION = "us-east-1"
# Credentials the standard AWS way (the environment), as an operator would give them; no
# file or instance metadata is consulted.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@dataclass(frozen=True)
class S3Bucket:
    endpoint_url: str
    name: str

    def settings(self) -> dict[str, str]:
        """The settings that put the bot's media in this bucket."""
        return {
            "MEDIA_STORE": "s3", "S3_BUCKET": self.name, "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_REGION": REGION,
        }


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Started once per session on a free port."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with mock.patch.dict(os.environ, FAKE_AWS_ENV):
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture
async def s3_bucket(s3_endpoint: str) -> AsyncIterator[S3Bucket]:
    """A fresh bucket per test: nothing one test stores is seen by another."""
    name = f"media-{secrets.token_hex(6)}"
    async with get_session().create_client(
        "s3", endpoint_url=s3_endpoint, region_name=REGION
    ) as s3:
        await s3.create_bucket(Bucket=name)
    yield S3Bucket(s3_endpoint, name)
