"""An S3-compatible server on 127.0.0.1 (moto's, from PyPI) with one bucket, for tests and benches
that put shards in object storage for real."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import server as moto_server

from service.launch.procs import free_port


def s3_client(env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )


@contextmanager
def s3_server(bucket: str) -> Iterator[dict[str, str]]:
    """Yield the environment that points botocore (and so s3fs) at the server; it stops after."""
    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "tracemill-test",
        "AWS_SECRET_ACCESS_KEY": "tracemill-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        s3_client(env).create_bucket(Bucket=bucket)
        yield env
    finally:
        server.stop()
