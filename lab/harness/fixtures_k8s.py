"""pytest plugin: a real single-node Kubernetes 1.20 cluster and a fresh namespace per test.

Register with ``pytest_plugins = ["lab.harness.fixtures_k8s"]``. Tests that use
it are marked ``k8s`` (select with ``-m k8s``). The binaries come from the
build cache (``make test`` builds them first; a bare ``pytest`` builds them in
the fixture, about 5 minutes once). The cluster is stopped at session end, also
when tests fail, and the teardown fails when anything of it is left running.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..k8s.cluster import ClusterInfo, KubernetesCluster
from ..k8s.control import kubectl
from .base import HarnessError, pid_alive, wait_for
from .docker_engine import _mounts_under


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "k8s: needs the real local Kubernetes cluster (lab/k8s, built once and cached)")


@dataclass
class K8sCluster:
    """The session's cluster: its ClusterInfo plus a kubectl and a Python client bound to it."""

    info: ClusterInfo
    cluster: KubernetesCluster
    _api_client: object = field(default=None, repr=False)

    @property
    def kubeconfig(self) -> str:
        return self.info.kubeconfig

    @property
    def image(self) -> str:
        """The local busybox image pods can run (``imagePullPolicy: Never``)."""
        return self.info.image

    def kubectl(self, *args: str, namespace: str | None = None, stdin: str | None = None,
                check: bool = True, timeout: float = 120) -> str:
        argv = ([f"--namespace={namespace}"] if namespace else []) + list(args)
        result = kubectl(self.info, argv, stdin=stdin, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(argv)} failed ({result.returncode}): "
                                 f"{result.stderr.strip()}")
        return result.stdout

    def api_client(self):
        """The session's kubernetes.client.ApiClient for this cluster (admin), made once."""
        from kubernetes import config  # noqa: PLC0415

        if self._api_client is None:
            self._api_client = config.new_client_from_config(config_file=self.info.kubeconfig)
        return self._api_client


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8sCluster]:
    del tmp_path_factory  # the state dir must be short (unix sockets): /tmp/streamops-k8s-*
    cluster = KubernetesCluster(progress=print)
    try:
        info = cluster.start()
        handle = K8sCluster(info, cluster)
        yield handle
        if handle._api_client is not None:
            handle._api_client.close()
    finally:
        state_dir = cluster.state_dir
        pids = dict(cluster.pids)
        cluster.stop()
        _assert_nothing_left(state_dir, pids)


def _assert_nothing_left(state_dir: Path | None, pids: dict[str, int]) -> None:
    alive = {name: pid for name, pid in pids.items() if pid_alive(pid)}
    mounts = _mounts_under(state_dir) if state_dir else []
    if alive or mounts or (state_dir and state_dir.exists()):
        raise HarnessError(f"the Kubernetes lab cluster left {alive or ''} {mounts or ''} "
                           f"{state_dir if state_dir and state_dir.exists() else ''} behind")


@pytest.fixture
def k8s_namespace(request: pytest.FixtureRequest, k8s_cluster: K8sCluster) -> Iterator[str]:
    """A fresh namespace for one test (its default service account ready); deleted afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40] or "test"
    name = f"t-{slug}-{uuid.uuid4().hex[:6]}"
    k8s_cluster.kubectl("create", "namespace", name)
    try:
        wait_for(lambda: k8s_cluster.cluster.service_account_ready(name), timeout=30,
                 what=f"service account 'default' in namespace {name}")
        yield name
    finally:
        k8s_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
