"""Campaign class ``s3_errors``: S3 answering 500/503/SlowDown and timing out mid-multipart upload (pg_backup).

A FaultProxy (lab/harness/fault_proxy.py) stands between pg_backup and moto and answers one request of the
upload with the fault: the second part of the multipart upload of ``full.dump`` or its
CompleteMultipartUpload. The set is made to go multipart (``s3.multipart_chunk_mb`` 5, a dump of about
12 MiB, uncompressed). A transient fault (once) must be absorbed by the retries: the run succeeds and the
object in moto is byte for byte the local file. A persistent one must fail naming the bucket, the key and
the S3 error, leave no object and no open multipart upload, keep the local set whole and unmarked, and the
re-run through the healthy endpoint must upload a set that backup_verify's S3 copy check passes. The newest
verified set (written before the faults) must still be there and still verify after each of them.
Everything is asserted on what moto and the disk hold, not on what the module says.
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path

import boto3
import psycopg
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.pg import table_fingerprint
from ansible_collections.streamops.maintenance.plugins.modules import backup_verify, pg_backup
from lab.harness.fault_proxy import FaultProxy

# About 7 MiB of text, dumped uncompressed: two parts (5 MiB and the rest), so "part 2" exists.
ROWS = 100_000
PART_2 = r"[?&]partNumber=2(&|$)"
UPLOAD_ID = r"[?&]uploadId="
# Small bounds so a hang costs seconds: each request waits READ_TIMEOUT, MAX_ATTEMPTS times at most
# (one retry: enough for a fault that happens once).
READ_TIMEOUT = 2
MAX_ATTEMPTS = 2


def run(module, capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def estate(pg_server, s3_server, tmp_path_factory):
    """A 12 MiB database, a bucket, and the newest verified set (uploaded and marked) before any fault."""
    dbname = f"s3f_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(dbname)))
    with psycopg.connect(**pg_server.conninfo(dbname), autocommit=True) as conn:
        conn.execute("CREATE TABLE trades (id bigint PRIMARY KEY, note text NOT NULL)")
        conn.execute("INSERT INTO trades SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, %s) g",
                     (ROWS,))
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name=s3_server.region,
                      aws_access_key_id=s3_server.access_key, aws_secret_access_key=s3_server.secret_key)
    bucket = f"streamops-faults-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    state = Estate(pg_server, dbname, s3_server, s3, bucket, tmp_path_factory.mktemp("s3-faults") / "backup")
    yield state
    with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(dbname)))


class Estate:
    def __init__(self, pg_server, dbname, s3_server, s3, bucket, root):
        self.pg_server, self.dbname, self.s3_server, self.s3, self.bucket, self.root = (
            pg_server, dbname, s3_server, s3, bucket, root)
        self.verified: Path | None = None
        self.last_second = 0

    def s3_args(self, endpoint: str | None = None) -> dict:
        return {"bucket": self.bucket, "prefix": "db", "endpoint_url": endpoint or self.s3_server.endpoint_url,
                "access_key": self.s3_server.access_key, "secret_key": self.s3_server.secret_key,
                "region": self.s3_server.region, "multipart_chunk_mb": 5, "read_timeout": READ_TIMEOUT,
                "max_attempts": MAX_ATTEMPTS}

    def backup(self, capsys, endpoint: str | None = None) -> dict:
        # One set per second: a re-run right after a failure must not collide with the failed run's set. The
        # set's id is taken some time after the module starts (a CI run's took the next second), so the second
        # to leave behind is the one the previous backup ended in.
        if int(time.time()) <= self.last_second:
            time.sleep(self.last_second + 1.02 - time.time())
        info = self.pg_server
        try:
            return run(pg_backup, capsys, login_host=info.host, login_port=info.port, login_user=info.user,
                       login_password=info.password, database=self.dbname, name="trading",
                       backup_root=str(self.root), compress_level=0, critical_tables=["trades"],
                       s3=self.s3_args(endpoint))
        finally:
            self.last_second = int(time.time())

    def verify(self, capsys, path: Path, *, mark: bool) -> dict:
        return run(backup_verify, capsys, path=str(path), s3=self.s3_args(), mark=mark)

    def fingerprint(self) -> tuple:
        with psycopg.connect(**self.pg_server.conninfo(self.dbname)) as conn:
            return tuple(table_fingerprint(conn, "public", "trades"))

    def keys(self, prefix: str) -> dict[str, int]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return {item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])}

    def open_uploads(self) -> list[str]:
        return [f"open multipart upload {u['Key']}" for u in
                self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])]

    def object_sha256(self, key: str) -> str:
        return hashlib.sha256(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()).hexdigest()

    def copy_problems(self, set_dir: Path, prefix: str) -> list[str]:
        """Every file of the local set against its object in moto, by sha256."""
        manifest = json.loads((set_dir / "manifest.json").read_text())
        problems = []
        for entry in manifest["files"]:
            if self.object_sha256(prefix + entry["name"]) != sha256(set_dir / entry["name"]):
                problems.append(f"{prefix}{entry['name']} differs from the local file")
        return problems

    def set_whole(self, set_dir: Path) -> bool:
        manifest = json.loads((set_dir / "manifest.json").read_text())
        return all(sha256(set_dir / f["name"]) == f["sha256"] for f in manifest["files"])

    def newest_verified_still_verifies(self, capsys) -> bool:
        """backup_verify (checksums, archive read to its end, S3 copy) passes again on the newest verified set."""
        assert self.verified is not None
        result = self.verify(capsys, self.verified, mark=False)
        return bool(result.get("verified")) and (self.verified / "verified.json").is_file()

    def newest_verified_untouched(self) -> bool:
        """The cheaper check, where the fault can only have added: its files, its mark, its S3 copy by sha256."""
        assert self.verified is not None
        manifest = json.loads((self.verified / "manifest.json").read_text())
        prefix = manifest["s3"]["prefix"]
        return (self.set_whole(self.verified) and (self.verified / "verified.json").is_file()
                and prefix + "verified.json" in self.keys(prefix) and not self.copy_problems(self.verified, prefix))


@pytest.fixture
def proxy(estate):
    with FaultProxy(estate.s3_server.endpoint_url, hang_seconds=READ_TIMEOUT * 3) as running:
        yield running


def ensure_verified(estate, capsys) -> None:
    """The newest verified set the faults must not touch: made once, by the first case that needs it."""
    if estate.verified is not None:
        return
    result = estate.backup(capsys)
    assert not result.get("failed"), result["msg"]
    verified = estate.verify(capsys, Path(result["path"]), mark=True)
    assert verified.get("verified"), verified["msg"]
    estate.verified = Path(result["path"])


TRANSIENT = [
    pytest.param("500", "PUT", PART_2, id="500-on-part-2"),
    pytest.param("503", "PUT", PART_2, id="503-on-part-2"),
    pytest.param("slowdown", "PUT", PART_2, id="slowdown-on-part-2"),
    pytest.param("hang", "PUT", PART_2, id="timeout-on-part-2"),
    pytest.param("500", "POST", UPLOAD_ID, id="500-on-complete"),
]


@pytest.mark.parametrize(("action", "method", "target"), TRANSIENT)
def test_transient_fault_is_retried_and_the_copy_is_the_local_file(estate, proxy, campaign, capsys,
                                                                   action, method, target):
    ensure_verified(estate, capsys)
    with campaign.case("s3_errors", f"transient {action} on {method} {target} of full.dump (once)") as case:
        before = estate.fingerprint()
        rule = proxy.add(action, method=method, target=target, times=1)
        result = estate.backup(capsys, proxy.url)
        assert rule.fired == 1, f"the fault never fired: {proxy.requests}"
        ok = not result.get("failed")
        case.check_converged(ok, f"the upload did not survive one {action}: {result['msg']}")
        set_dir = Path(result["path"])
        prefix = result["manifest"]["s3"]["prefix"] if ok else ""
        case.check_no_partial(estate.copy_problems(set_dir, prefix) if ok else [], "S3 copy")
        case.check_no_partial(estate.open_uploads(), "bucket")
        case.check_data(estate.fingerprint() == before, "rows and checksum of public.trades")
        case.check_data(estate.set_whole(set_dir), f"the local set {set_dir.name} against its manifest")
        case.check_data(estate.newest_verified_untouched(),
                        f"the newest verified set {estate.verified.name}: files, mark and S3 copy")


PERSISTENT = [
    pytest.param("500", "PUT", PART_2, "InternalError", id="500-on-part-2"),
    pytest.param("slowdown", "PUT", PART_2, "SlowDown", id="slowdown-on-part-2"),
    pytest.param("hang", "PUT", PART_2, "timeout", id="timeout-on-part-2"),
    pytest.param("503", "POST", UPLOAD_ID, "ServiceUnavailable", id="503-on-complete"),
]


@pytest.mark.parametrize(("action", "method", "target", "error"), PERSISTENT)
def test_persistent_fault_fails_cleanly_keeps_the_local_set_and_the_rerun_uploads(
        estate, proxy, campaign, capsys, action, method, target, error):
    ensure_verified(estate, capsys)
    with campaign.case("s3_errors", f"persistent {action} on {method} {target} of full.dump") as case:
        before = estate.fingerprint()
        proxy.add(action, method=method, target=target, times=None)
        started = time.monotonic()
        result = estate.backup(capsys, proxy.url)
        took = time.monotonic() - started
        case.check_error(result, names=[estate.bucket, "full.dump", error, "kept"])
        assert took < READ_TIMEOUT * MAX_ATTEMPTS * 3 + 10, f"the failing upload held the run {took:.0f}s"
        failed_dir = Path(result.get("path") or "")
        prefix = (result.get("manifest") or {}).get("s3", {}).get("prefix", "")
        assert failed_dir.name.startswith("trading-") and prefix.endswith(failed_dir.name + "/"), result
        case.check_no_partial([f"object {k}" for k in estate.keys(prefix)], "S3 prefix of the failed set")
        case.check_no_partial(estate.open_uploads(), "bucket")
        case.check_data(failed_dir.is_dir() and estate.set_whole(failed_dir),
                        f"the local set {failed_dir.name} kept whole after the failed upload")
        case.check_data(estate.fingerprint() == before, "rows and checksum of public.trades")
        case.check_data(estate.newest_verified_still_verifies(capsys),
                        f"the newest verified set {estate.verified.name} still verifies")
        # Its S3 copy is missing: backup_verify must not mark the set, locally or in S3.
        verdict = estate.verify(capsys, failed_dir, mark=True)
        marks = [str(failed_dir / "verified.json")] if (failed_dir / "verified.json").exists() else []
        marks += [k for k in estate.keys(prefix) if k.endswith("verified.json")]
        case.check_no_partial(marks + (["backup_verify verified it"] if verdict.get("verified") else []),
                              "verified mark of a set whose upload failed")

        proxy.clear()
        again = estate.backup(capsys, proxy.url)
        converged = not again.get("failed")
        if converged:
            new_dir = Path(again["path"])
            checked = estate.verify(capsys, new_dir, mark=True)
            copy = next((r for r in checked["records"] if r["name"] == "s3 copy"), {})
            converged = bool(checked.get("verified")) and copy.get("status") == "ok" and not estate.copy_problems(
                new_dir, again["manifest"]["s3"]["prefix"])
            if converged:
                estate.verified = new_dir
        case.check_converged(converged, f"re-run: {again['msg']}")


def test_abort_that_fails_too_leaves_no_open_upload(estate, proxy, campaign, capsys):
    """Every part 2 fails and so does s3transfer's own abort of the upload: the open upload must not be left."""
    ensure_verified(estate, capsys)
    with campaign.case("s3_errors", "persistent 500 on part 2 and on the first aborts of the upload") as case:
        proxy.add("500", method="PUT", target=PART_2, times=None)
        proxy.add("500", method="DELETE", target=UPLOAD_ID, times=MAX_ATTEMPTS)
        result = estate.backup(capsys, proxy.url)
        case.check_error(result, names=[estate.bucket, "full.dump", "InternalError"])
        prefix = (result.get("manifest") or {}).get("s3", {}).get("prefix", "")
        case.check_no_partial([f"object {k}" for k in estate.keys(prefix)], "S3 prefix of the failed set")
        case.check_no_partial(estate.open_uploads(), "bucket")
        case.check_data(estate.set_whole(Path(result["path"])), "the local set kept whole")
        proxy.clear()
        again = estate.backup(capsys, proxy.url)
        case.check_converged(not again.get("failed") and not estate.copy_problems(
            Path(again["path"]), again["manifest"]["s3"]["prefix"]), f"re-run: {again['msg']}")
