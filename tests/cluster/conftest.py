"""The cluster layer: whole bot processes on the test PostgreSQL server and an S3 endpoint.

Select it with `pytest -m cluster`. Without `KLING_TEST_DATABASE_URL` it skips and says so
(`.ci/run` sets it, so CI never skips it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from sandbox.demo.cluster import SharedStorage, fresh_schema
from tests.conftest import TEST_DATABASE_URL_ENV
from tests.s3_endpoint import FAKE_AWS_ENV, S3Bucket, s3_bucket, s3_endpoint  # noqa: F401


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: several `python -m bot run` processes on PostgreSQL and S3"
    )


@pytest.fixture
def server_url() -> str:
    url = os.environ.get(TEST_DATABASE_URL_ENV)
    if not url:
        pytest.skip(f"the cluster test needs PostgreSQL: set {TEST_DATABASE_URL_ENV}")
    return url


@pytest.fixture
async def shared_storage(
    server_url: str, s3_bucket: S3Bucket  # noqa: F811 (the fixture)
) -> AsyncIterator[SharedStorage]:
    """A schema of its own on the test server (dropped after) and a fresh bucket; the
    server is asked first, so without it nothing is started."""
    async with fresh_schema(server_url) as schema:
        yield SharedStorage(server_url, schema, {**s3_bucket.settings(), **FAKE_AWS_ENV})
