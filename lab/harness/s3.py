"""An S3 endpoint on 127.0.0.1: moto's standalone server, spoken to by boto3."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from .base import LOOPBACK, HarnessError, ServiceRecord, free_port, spawn, stop_pid, wait_for

# moto accepts any credentials; these fixed ones keep boto3 from looking for real
# ones (and from asking the instance-metadata address, which is not loopback).
ACCESS_KEY = "streamops-lab"
SECRET_KEY = "streamops-lab-secret"  # noqa: S105 - throwaway lab credential
REGION = "us-east-1"


def client_env(endpoint: str) -> dict[str, str]:
    """Environment for boto3/aws clients talking to the lab endpoint only."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": endpoint,
    }


@dataclass
class S3Info:
    endpoint_url: str
    port: int
    access_key: str
    secret_key: str
    region: str
    dir: str
    log: str
    pid: int


class S3Server:
    def __init__(self, *, port: int | None = None) -> None:
        self.port = port
        self.info: S3Info | None = None

    def start(self) -> S3Info:
        port = self.port or free_port()
        root = Path(tempfile.mkdtemp(prefix="streamops-s3-"))
        log = root / "moto.log"
        env = {**os.environ, **client_env(f"http://{LOOPBACK}:{port}")}
        proc = spawn([sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)], log=log, env=env)
        url = f"http://{LOOPBACK}:{port}"

        def answers() -> bool:
            if proc.poll() is not None:
                return True
            try:
                with urllib.request.urlopen(url + "/moto-api/", timeout=1):  # noqa: S310 - loopback only
                    return True
            except OSError:
                return False

        try:
            wait_for(answers, timeout=60, what="moto S3 server", log=log, interval=0.1)
            if proc.poll() is not None:
                raise HarnessError(f"moto server exited with {proc.returncode}; is moto[server] installed?")
        except HarnessError:
            stop_pid(proc.pid)
            shutil.rmtree(root, ignore_errors=True)
            raise
        self.info = S3Info(endpoint_url=url, port=port, access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                           region=REGION, dir=str(root), log=str(log), pid=proc.pid)
        return self.info

    def client(self):
        import boto3  # noqa: PLC0415 - only the S3 users need boto3

        assert self.info is not None
        return boto3.client("s3", endpoint_url=self.info.endpoint_url, aws_access_key_id=self.info.access_key,
                            aws_secret_access_key=self.info.secret_key, region_name=self.info.region)

    def record(self) -> ServiceRecord:
        assert self.info is not None
        return ServiceRecord(name="s3", pid=self.info.pid, info=asdict(self.info))

    @classmethod
    def from_record(cls, record: ServiceRecord) -> S3Server:
        server = cls()
        server.info = S3Info(**record.info)
        return server

    def stop(self) -> None:
        if self.info is None:
            return
        if not stop_pid(self.info.pid):
            raise HarnessError(f"moto server pid {self.info.pid} did not stop")
        shutil.rmtree(self.info.dir, ignore_errors=True)
        self.info = None
