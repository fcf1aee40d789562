"""The whole lab estate as a pytest fixture: what `python -m lab up` starts, for playbooks and molecule.

``lab_services`` is the same dict `python -m lab up` writes into
inventory/lab/group_vars/all/lab_services.yml, so a playbook or a molecule
scenario sees the lab in the shape the lab inventory reads. PostgreSQL and
Redis are servers of their own (seeded with both estates' data, which other
tests must not disturb); S3, the Docker engine and the Kubernetes cluster are
the session's. Everything is stopped at session end, also when tests fail.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .. import estate, seed
from ..monitoring import start_estate_prometheus, start_tls_front, tls_facts
from .bluegreen import BlueGreenCompose
from .compose_app import ComposeApp
from .postgres import PostgresServer
from .redis import RedisServer
from .smtp import SmtpServer
from .webhook import WebhookReceiver


@pytest.fixture(scope="session")
def lab_services(s3_server, k8s_cluster, docker_engine, lab_image,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    import boto3  # noqa: PLC0415
    import redis  # noqa: PLC0415

    from ..k8s import control  # noqa: PLC0415

    pg, cache = PostgresServer(ssl=True), RedisServer()  # TLS only, as `python -m lab up`
    pg_dr = PostgresServer(ssl=True)  # the DR test's other server (lab_services.postgres_dr), empty
    app = ComposeApp(docker_engine, lab_image, project=f"vs-lab-{uuid.uuid4().hex[:6]}",
                     state_dir=tmp_path_factory.mktemp("lab-compose"))
    # Its own app name: the compose projects <app>-blue/-green must not meet another session's.
    web = BlueGreenCompose(docker_engine, lab_image, tmp_path_factory.mktemp("lab-bluegreen"),
                           app=f"vs-web-{uuid.uuid4().hex[:6]}")
    prometheus: dict = {}
    tls_front: tuple = ()
    smtp = SmtpServer(tmp_path_factory.mktemp("lab-smtp"))
    webhook = WebhookReceiver(tmp_path_factory.mktemp("lab-webhook"))
    try:
        smtp.start()
        webhook.start()
        tls_front = start_tls_front(tmp_path_factory.mktemp("lab-tls"))
        for one in seed.ESTATES:
            prometheus[one.name] = start_estate_prometheus(tmp_path_factory.mktemp(f"lab-prometheus-{one.name}"),
                                                           one.name)
        pg_info = pg.start()
        redis_info = cache.start()
        pg_facts = estate.postgres_facts(pg_info, seed.seed_postgres(pg_info))
        pg_dr_facts = estate.postgres_dr_facts(pg_dr.start())
        seed.seed_redis(lambda db: redis.Redis(host=redis_info.host, port=redis_info.port, db=db,
                                               password=redis_info.password))
        s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name=s3_server.region,
                          aws_access_key_id=s3_server.access_key, aws_secret_access_key=s3_server.secret_key)
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for one in seed.ESTATES:
            if one.bucket not in existing:
                s3.create_bucket(Bucket=one.bucket)
        app.up()
        web.up()
        stream = control.deploy_stream_systems(k8s_cluster.info)
        k8s = estate.k8s_facts(k8s_cluster.info, stream)
        yield {
            "postgres": pg_facts,
            "postgres_dr": pg_dr_facts,
            "redis": estate.redis_facts(redis_info),
            "s3": estate.s3_facts(s3_server),
            "compose": estate.compose_facts(app),
            "k8s": k8s,
            "bluegreen": estate.bluegreen_facts(k8s, web),
            "prometheus": {name: server.facts() for name, server in prometheus.items()},
            "tls": tls_facts(*tls_front),
            "notify": {"smtp": smtp.facts(), "webhook": webhook.facts()},
        }
    finally:
        try:
            web.down()
        finally:
            app.down()
            cache.stop()
            pg.stop()
            pg_dr.stop()
            for server in [*prometheus.values(), *reversed(tls_front), webhook, smtp]:
                server.stop()


@pytest.fixture(scope="session")
def lab_services_file(lab_services: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lab_services as a vars file (mode 0600: it holds the throwaway passwords)."""
    path = tmp_path_factory.mktemp("lab-services") / "lab_services.yml"
    path.write_text(yaml.safe_dump({"lab_services": lab_services}, sort_keys=False))
    path.chmod(0o600)
    return path
