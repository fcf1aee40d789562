# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""S3 for backup sets: one client helper, upload (multipart, manifest last), listing, streaming reads, removal.

A set lives under ``<prefix>/<YYYY>/<MM>/<DD>/<set_id>/``. Every object of a set
carries its sha256 in metadata; the manifest object is put last, so a prefix
without ``manifest.json`` is an unfinished upload.
"""

from __future__ import annotations

import hashlib
import math
import re
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import env_fallback

from .backup_set import CHUNK, MANIFEST, VERIFIED, BackupError, BackupRef, started_of

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    from boto3.s3.transfer import TransferConfig
except ImportError:
    boto3 = None
    BOTO3_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    BOTO3_IMPORT_ERROR = None

MIB = 1024 * 1024
DEFAULT_CONNECT_TIMEOUT = 10
# botocore's own default: a read that waits longer is retried (max_attempts), then the upload fails.
DEFAULT_READ_TIMEOUT = 60
DEFAULT_MAX_ATTEMPTS = 5
MAX_TIMEOUT = 24 * 3600
# What S3 (and moto, MinIO) can hold as a bucket name; AWS itself takes 3 to 63 lower-case ones.
BUCKET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$")


def s3_argument_spec() -> dict[str, Any]:
    """The ``s3`` option (a dict) of the backup modules; documented by the ``s3`` doc fragment."""
    return dict(s3=dict(type="dict", options=dict(
        bucket=dict(type="str", required=True),
        prefix=dict(type="str", default=""),
        endpoint_url=dict(type="str", fallback=(env_fallback, ["AWS_ENDPOINT_URL", "S3_ENDPOINT_URL"])),
        region=dict(type="str", fallback=(env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])),
        access_key=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_ACCESS_KEY_ID"])),
        secret_key=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY"])),
        session_token=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_SESSION_TOKEN"])),
        validate_certs=dict(type="bool", default=True),
        server_side_encryption=dict(type="str", choices=["AES256", "aws:kms"]),
        kms_key_id=dict(type="str", no_log=False),
        storage_class=dict(type="str", default="STANDARD"),
        multipart_chunk_mb=dict(type="int", default=64),
        max_concurrency=dict(type="int", default=4),
        connect_timeout=dict(type="float", default=DEFAULT_CONNECT_TIMEOUT),
        read_timeout=dict(type="float", default=DEFAULT_READ_TIMEOUT),
        max_attempts=dict(type="int", default=DEFAULT_MAX_ATTEMPTS, fallback=(env_fallback, ["AWS_MAX_ATTEMPTS"])),
    )))


def client_config(options: dict[str, Any]) -> Any:
    """Timeouts and attempts of every S3 request: an endpoint that stops answering fails the run in bounded time."""
    if boto3 is None:
        return None
    return botocore.config.Config(
        connect_timeout=options.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT,
        read_timeout=options.get("read_timeout") or DEFAULT_READ_TIMEOUT,
        retries={"total_max_attempts": options.get("max_attempts") or DEFAULT_MAX_ATTEMPTS})


def describe(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


def clean_prefix(prefix: str | None) -> str:
    parts = [part for part in (prefix or "").split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise BackupError(msg=f"s3.prefix {prefix!r} may not contain '.' or '..' parts")
    return "/".join(parts)


class S3Store:
    """The bucket and prefix of one estate's backups."""

    def __init__(self, options: dict[str, Any], *, client_factory: Callable[..., Any] | None = None) -> None:
        if boto3 is None and client_factory is None:
            raise BackupError(msg="the Python library boto3 is required for s3")
        self.options = options
        self.bucket = options["bucket"]
        # Checked here, before the work: a bucket name S3 cannot hold was found only by the upload, after the dump.
        if not isinstance(self.bucket, str) or not BUCKET_NAME.match(self.bucket):
            raise BackupError(msg=f"s3.bucket {self.bucket!r} is not an S3 bucket name (3 to 255 letters, digits, "
                                  "dots, hyphens or underscores; 3 to 63 lower-case ones on AWS)")
        self.prefix = clean_prefix(options.get("prefix"))
        if options.get("multipart_chunk_mb", 64) < 5:
            raise BackupError(msg=f"s3.multipart_chunk_mb {options['multipart_chunk_mb']} is below S3's 5 MiB minimum")
        if options.get("max_concurrency", 4) < 1:
            raise BackupError(msg=f"s3.max_concurrency {options['max_concurrency']} must be at least 1")
        if options.get("server_side_encryption") != "aws:kms" and options.get("kms_key_id"):
            raise BackupError(msg="s3.kms_key_id needs s3.server_side_encryption: aws:kms")
        for name in ("connect_timeout", "read_timeout"):
            value = options.get(name)
            # NaN, inf and huge values would reach socket.settimeout, which refuses or overflows on them.
            if value is not None and not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
                raise BackupError(msg=f"s3.{name} {value} must be above 0 and at most {MAX_TIMEOUT} seconds")
        if options.get("max_attempts") is not None and options["max_attempts"] < 1:
            raise BackupError(msg=f"s3.max_attempts {options['max_attempts']} must be at least 1")
        factory = client_factory or boto3.client
        try:
            self.client = factory(
                "s3", endpoint_url=options.get("endpoint_url") or None, region_name=options.get("region") or None,
                aws_access_key_id=options.get("access_key") or None,
                aws_secret_access_key=options.get("secret_key") or None,
                aws_session_token=options.get("session_token") or None, verify=options.get("validate_certs", True),
                config=client_config(options))
        except ValueError as exc:
            # botocore checks region and endpoint here (InvalidRegionError is a ValueError): a traceback before.
            raise BackupError(msg=f"s3 options refused (region {options.get('region')!r}, endpoint_url "
                                  f"{options.get('endpoint_url')!r}): {exc}") from exc

    def set_prefix(self, set_id: str, started: datetime) -> str:
        dated = started.strftime("%Y/%m/%d")
        return "/".join(part for part in (self.prefix, dated, set_id) if part) + "/"

    def url(self, key: str = "") -> str:
        return describe(self.bucket, key)

    def fail(self, what: str, exc: Exception, **details: Any) -> BackupError:
        return BackupError(msg=f"S3 {what} failed: {exc}", **details)

    def extra_args(self, sha256: str) -> dict[str, Any]:
        extra: dict[str, Any] = {"Metadata": {"sha256": sha256}}
        if self.options.get("storage_class"):
            extra["StorageClass"] = self.options["storage_class"]
        if self.options.get("server_side_encryption"):
            extra["ServerSideEncryption"] = self.options["server_side_encryption"]
        if self.options.get("kms_key_id"):
            extra["SSEKMSKeyId"] = self.options["kms_key_id"]
        return extra

    def upload_set(self, directory: Path, files: list[dict[str, Any]], set_prefix: str,
                   *, manifest: Path) -> list[str]:
        """Upload every file, then the manifest; on failure remove what this call uploaded and raise."""
        chunk = self.options.get("multipart_chunk_mb", 64) * MIB
        config = TransferConfig(multipart_threshold=chunk, multipart_chunksize=chunk,
                                max_concurrency=self.options.get("max_concurrency", 4))
        uploaded: list[str] = []
        key = set_prefix
        try:
            for record in [*files, {"name": MANIFEST, "sha256": None}]:
                key = set_prefix + record["name"]
                path = manifest if record["name"] == MANIFEST else directory / record["name"]
                extra = self.extra_args(record["sha256"] or "")
                if record["sha256"] is None:
                    extra["Metadata"] = {}
                    extra["ContentType"] = "application/json"
                self.client.upload_file(str(path), self.bucket, key, ExtraArgs=extra, Config=config)
                uploaded.append(key)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
                boto3.exceptions.S3UploadFailedError, OSError) as exc:
            leftover = self.remove_keys(uploaded)
            # s3transfer aborts the multipart upload it gave up on, unless that abort failed too; an open upload
            # is invisible to a listing of objects and its parts are stored (and billed) until aborted.
            unaborted = self.abort_open_uploads(set_prefix)
            left = []
            if leftover:
                left.append(f"{len(leftover)} object(s) could not be removed: {', '.join(leftover)}")
            if unaborted:
                left.append(f"multipart upload(s) may be left open: {', '.join(unaborted)}")
            raise BackupError(msg=f"S3 upload to {self.url(set_prefix)} failed at {key}: {exc}; "
                                  + ("; ".join(left) if left else "no object or open multipart upload of this backup "
                                                                  "is left in S3"),
                              step="upload") from exc
        return uploaded

    def abort_open_uploads(self, prefix: str) -> list[str]:
        """Abort the multipart uploads still open under ``prefix`` (one run's set); what could not be aborted."""
        failed: list[str] = []
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for upload in page.get("Uploads", []):
                    try:
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                           UploadId=upload["UploadId"])
                    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                        failed.append(f"{upload['Key']} (abort failed: {exc})")
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return failed  # no bucket, no upload in it
            failed.append(f"the open uploads under {self.url(prefix)} could not be listed ({exc})")
        except botocore.exceptions.BotoCoreError as exc:
            failed.append(f"the open uploads under {self.url(prefix)} could not be listed ({exc})")
        return failed

    def remove_keys(self, keys: list[str]) -> list[str]:
        """Delete these exact keys; the ones that could not be deleted."""
        failed = []
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            try:
                reply = self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": key} for key in batch], "Quiet": True})
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                failed.extend(batch)
                continue
            failed.extend(error["Key"] for error in reply.get("Errors", []))
        return failed

    def list_keys(self, prefix: str) -> dict[str, dict[str, Any]]:
        keys: dict[str, dict[str, Any]] = {}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    keys[item["Key"]] = {"bytes": item["Size"]}
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self.fail(f"listing of {self.url(prefix)}", exc) from exc
        return keys

    def sets(self, name: str) -> list[BackupRef]:
        """The sets of ``name`` under the prefix: ``.../<YYYY>/<MM>/<DD>/<set_id>/`` with its dated path."""
        base = f"{self.prefix}/" if self.prefix else ""
        found: dict[str, BackupRef] = {}
        for key in self.list_keys(base):
            parts = key[len(base):].split("/")
            if len(parts) < 5:
                continue
            set_id = parts[3]
            started = started_of(name, set_id)
            if started is None or "/".join(parts[:3]) != started.strftime("%Y/%m/%d"):
                continue
            where = base + "/".join(parts[:4]) + "/"
            ref = found.setdefault(set_id, BackupRef(set_id, started, False, False, "s3", self.url(where)))
            ref.complete = ref.complete or parts[4:] == [MANIFEST]
            ref.verified = ref.verified or parts[4:] == [VERIFIED]
        return list(found.values())

    def remove_set(self, ref: BackupRef) -> None:
        prefix = ref.where[len(self.url()):]
        if not prefix.startswith(f"{self.prefix}/" if self.prefix else "") or not prefix.endswith(f"/{ref.set_id}/"):
            raise BackupError(msg=f"{ref.where} is not a backup set under {self.url(self.prefix)}; refusing to delete")
        leftover = self.remove_keys(list(self.list_keys(prefix)))
        if leftover:
            raise BackupError(msg=f"S3 removal of {ref.where} left {len(leftover)} object(s): {', '.join(leftover[:5])}")

    def read_chunks(self, key: str) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            while True:
                chunk = body.read(CHUNK)
                if not chunk:
                    return
                yield chunk
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self.fail(f"read of {self.url(key)}", exc) from exc

    def hash_object(self, key: str) -> tuple[int, str]:
        digest, size = hashlib.sha256(), 0
        for chunk in self.read_chunks(key):
            digest.update(chunk)
            size += len(chunk)
        return size, digest.hexdigest()

    def download(self, key: str, path: Path) -> tuple[int, str]:
        digest, size = hashlib.sha256(), 0
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            for chunk in self.read_chunks(key):
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def put_bytes(self, key: str, data: bytes) -> None:
        extra = self.extra_args(hashlib.sha256(data).hexdigest())
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json", **extra)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self.fail(f"write of {self.url(key)}", exc) from exc
