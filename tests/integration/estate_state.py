"""What the lab estate's services really hold, read straight from them (not from any report).

``snapshot(lab_services, state_dir)`` is compared before and after a --check run:
any difference is a change check mode must not make.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import boto3
import psycopg
import redis

TABLE_STATE_SQL = """
SELECT c.relname, c.relfilenode, COALESCE(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0),
       COALESCE(s.vacuum_count, 0), COALESCE(s.analyze_count, 0)
FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')
ORDER BY c.relname
"""


def tls_options(pg: dict) -> dict:
    """sslmode and the CA of lab_services.postgres (the lab's server is TLS-only); none for a plain server."""
    return {key: pg[fact] for key, fact in (("sslmode", "sslmode"), ("sslrootcert", "ca_cert")) if pg.get(fact)}


def estate_conn(lab_services: dict, estate: str) -> psycopg.Connection:
    pg = lab_services["postgres"]
    facts = pg["estates"][estate]
    return psycopg.connect(host=pg["host"], port=pg["port"], user=facts["user"], password=facts["password"],
                           dbname=facts["database"], autocommit=True, **tls_options(pg))


def postgres_state(lab_services: dict) -> dict:
    state = {}
    for estate in lab_services["postgres"]["estates"]:
        with estate_conn(lab_services, estate) as conn:
            # Rows written, and what only VACUUM/ANALYZE/REINDEX/VACUUM FULL moves (relfilenode changes on a
            # rewrite). Not n_dead_tup: any read prunes pages and lowers it.
            state[estate] = {"relations": [list(row) for row in conn.execute(TABLE_STATE_SQL).fetchall()],
                             "sequences": conn.execute(
                                 "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1").fetchall()}
    pg = lab_services["postgres"]
    with psycopg.connect(host=pg["host"], port=pg["port"], user=pg["admin_user"], password=pg["admin_password"],
                         dbname="postgres", **tls_options(pg)) as conn:
        state["databases"] = sorted(r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall())
    return state


def dead_tuples(lab_services: dict, estate: str, table: str) -> int:
    with estate_conn(lab_services, estate) as conn:
        row = conn.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = %s", (table,)).fetchone()
    return int(row[0])


def redis_client(lab_services: dict, db: int = 0) -> redis.Redis:
    facts = lab_services["redis"]
    return redis.Redis(host=facts["host"], port=facts["port"], password=facts.get("password"), db=db)


def redis_state(lab_services: dict) -> dict:
    """Per estate its maxmemory, and the server's keys: the lab's session keys expire (TTL 30 min) while tests run,
    so a key count alone changes by itself; keys left plus keys expired by TTL does not, unless a command deleted
    one (the lab's Redis is the lab's alone)."""
    state = {}
    client = None
    for estate, facts in lab_services["redis"]["estates"].items():
        client = redis_client(lab_services, facts["db"])
        state[estate] = {"config_maxmemory": client.config_get("maxmemory")}
    if client is not None:
        info = client.info()  # one INFO: keyspace and stats of the same instant
        keys = sum(value["keys"] for name, value in info.items() if name.startswith("db") and isinstance(value, dict))
        state["keys_plus_expired"] = keys + info["expired_keys"]
        state["evicted_keys"] = info["evicted_keys"]
    return state


def s3_client(lab_services: dict):
    facts = lab_services["s3"]
    return boto3.client("s3", endpoint_url=facts["endpoint_url"], region_name=facts["region"],
                        aws_access_key_id=facts["access_key"], aws_secret_access_key=facts["secret_key"])


def s3_state(lab_services: dict) -> dict:
    client = s3_client(lab_services)
    state = {}
    for estate, facts in lab_services["s3"]["estates"].items():
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=facts["bucket"])
        state[estate] = sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))
    return state


def kubectl_json(lab_services: dict, *args: str) -> dict:
    k8s = lab_services["k8s"]
    out = subprocess.run([k8s["kubectl"], f"--kubeconfig={k8s['kubeconfig']}", *args, "-o", "json"],  # noqa: S603
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def k8s_state(lab_services: dict) -> dict:
    namespace = lab_services["k8s"]["namespace"]
    service = kubectl_json(lab_services, "-n", namespace, "get", "service", lab_services["k8s"]["service"])
    deployments = kubectl_json(lab_services, "-n", namespace, "get", "deployments")
    return {
        "selector": service["spec"].get("selector"),
        "annotations": {k: v for k, v in (service["metadata"].get("annotations") or {}).items()
                        if k.startswith("streamops.io/")},
        "deployments": sorted((d["metadata"]["name"], d["spec"].get("replicas"), d["metadata"].get("generation"),
                               [c["image"] for c in d["spec"]["template"]["spec"]["containers"]])
                              for d in deployments["items"]),
    }


def files_state(root: Path) -> list[tuple[str, int, int]]:
    if not root.exists():
        return []
    return sorted((str(p.relative_to(root)), p.stat().st_size, int(p.stat().st_mtime_ns))
                  for p in root.rglob("*") if p.is_file() or p.is_symlink())


def served_serial(lab_services: dict) -> str:
    """The serial of the certificate VitalStream's TLS front serves, asked over TLS."""
    from lab.harness.tls_nginx import served_certificate  # noqa: PLC0415

    tls = lab_services["tls"]
    port = int(tls["tls_nginx_address"].rsplit(":", 1)[1])
    return format(served_certificate(port, tls["tls_nginx_server_name"]).serial_number, "x")


def prometheus_state(lab_services: dict) -> dict:
    """Per estate: the rule files and snapshots on the server's disk, and the rule groups it has loaded."""
    import urllib.request  # noqa: PLC0415

    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    found = {}
    for estate, server in lab_services["prometheus"].items():
        with direct.open(f"{server['url']}/api/v1/rules", timeout=10) as answer:
            groups = sorted(g["name"] for g in json.load(answer)["data"]["groups"])
        snapshots = Path(server["data_dir"]) / "snapshots"
        found[estate] = {"rules": files_state(Path(server["rules_dir"])), "groups": groups,
                         "snapshots": sorted(p.name for p in snapshots.iterdir()) if snapshots.is_dir() else []}
    return found


def snapshot(lab_services: dict, state_dir: Path, extra_files: list[Path] = ()) -> dict:
    return {
        "postgres": postgres_state(lab_services),
        "redis": redis_state(lab_services),
        "s3": s3_state(lab_services),
        "k8s": k8s_state(lab_services),
        "prometheus": prometheus_state(lab_services),
        "tls": {"served_serial": served_serial(lab_services),
                "files": files_state(Path(lab_services["tls"]["tls_nginx_cert_path"]).parent)},
        "files": {str(state_dir): files_state(state_dir),
                  **{str(path): files_state(path) for path in extra_files}},
    }
