"""A real single-node Kubernetes 1.20 cluster on 127.0.0.1.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and a kubelet
(dockershim) on a Docker engine of the cluster's own, all under one state
directory. The own engine matters: a kubelet kills every pod container on its
engine that its API server does not know, so the lab's cluster and a test
session's cluster must never share one.

Nothing listens beyond loopback and nothing is sent beyond it: every server
binds 127.0.0.1; the kubelet makes no iptables chains, leaves the kernel
tunables alone (patch 0005), gets pods a resolv.conf that points at loopback,
and runs with AWS_EC2_METADATA_DISABLED; the API server reaches the kubelet by
its InternalIP (127.0.0.1), never by a name the system resolver would look up.
There is no kube-proxy: ClusterIPs are records only.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import docker.errors

from ..harness.base import (
    LOOPBACK,
    HarnessError,
    ServiceRecord,
    free_port,
    log_tail,
    pid_alive,
    spawn,
    stop_pid,
)
from ..harness.docker_engine import (
    APPLETS,
    DockerEngine,
    _cmdline,
    _mounts_under,
    _umount,
    build_rootfs_tar,
    find_binary,
)
from .build import KUBERNETES_VERSION, ensure_binaries

RECORD_NAME = "k8s"
NODE_NAME = "streamops-lab-node"
SERVICE_CIDR = "10.96.0.0/16"
PAUSE_REPO = "streamops-lab/pause"
# The pod sandbox: sleeps, and exits at once on SIGTERM so a pod stops quickly.
PAUSE_COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; sleep 2147483647 & wait"]
# Order of stopping: the kubelet first (no more pod changes), etcd last.
COMPONENT_ORDER = ("kubelet", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")
# The device-plugin socket directory is the one host path kubelet 1.20
# hard-codes that no flag or patch moves; stop() removes it when it made it.
# (Pod logs would be the others: patch 0006 keeps them in the state dir.)
HOST_KUBELET_DIRS = (Path("/var/lib/kubelet"), Path("/var/lib/kubelet/device-plugins"))


@dataclass
class ClusterInfo:
    """What a client of the cluster needs: kubeconfig, API URL, admin token, CA, images."""

    kubeconfig: str
    server: str
    token: str
    ca_file: str
    node_name: str
    state_dir: str
    bin_dir: str
    kubectl: str
    docker_host: str
    image: str
    pause_image: str
    version: str = KUBERNETES_VERSION


class KubernetesCluster:
    """Start and stop one cluster. ``start()`` returns a ClusterInfo; ``stop()`` undoes everything.

    ``state_dir`` defaults to a fresh ``/tmp/streamops-k8s-*`` (short: unix
    socket paths under it must stay below 108 bytes).
    """

    def __init__(self, state_dir: Path | None = None, *, bin_dir: Path | None = None,
                 start_timeout: float = 120.0, progress=None) -> None:
        self.state_dir = Path(state_dir) if state_dir else None
        self.bin_dir = Path(bin_dir) if bin_dir else None
        self.start_timeout = start_timeout
        self.progress = progress or (lambda message: None)
        self.pids: dict[str, int] = {}
        self.ports: dict[str, int] = {}
        self.engine: DockerEngine | None = None
        self.info: ClusterInfo | None = None
        self.host_dirs_created: list[str] = []
        self._token: str | None = None
        self.timings: dict[str, float] = {}

    # -- paths ---------------------------------------------------------------

    def _path(self, *parts: str) -> Path:
        assert self.state_dir is not None
        return self.state_dir.joinpath(*parts)

    def _bin(self, name: str) -> str:
        assert self.bin_dir is not None
        return str(self.bin_dir / name)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> ClusterInfo:
        started = time.monotonic()
        if self.bin_dir is None:
            self.bin_dir = ensure_binaries(self.progress)
        etcd = shutil.which("etcd", path="/usr/bin:/usr/sbin:" + os.environ.get("PATH", ""))
        if etcd is None:
            raise HarnessError("`etcd` not found: install the Debian package etcd-server "
                               "(apt-get install etcd-server)")
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="streamops-k8s-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        self.host_dirs_created = [str(p) for p in HOST_KUBELET_DIRS if not p.exists()]
        try:
            # Record first: a start that fails half-way can still be undone by `lab down`.
            self._record()
            self._start_engine()
            tokens = self._write_pki_and_tokens()
            self._start_etcd(etcd)
            self._start_apiserver()
            self._wait("kube-apiserver", lambda: self._api_ok("/readyz"))
            self.timings["apiserver_ready"] = time.monotonic() - started
            self._start_controller_manager()
            self._start_scheduler()
            images = self._make_images()
            self._start_kubelet(images["pause"])
            self._wait("node Ready", self._node_ready, component="kubelet")
            self.timings["node_ready"] = time.monotonic() - started
            self._wait("service account 'default' in namespace default",
                       lambda: self.service_account_ready("default"), component="kube-controller-manager")
        except BaseException:
            self.stop()
            raise
        self.info = ClusterInfo(
            kubeconfig=str(self._path("admin.kubeconfig")),
            server=f"https://{LOOPBACK}:{self.ports['apiserver']}",
            token=tokens["admin"], ca_file=str(self._path("pki", "ca.crt")), node_name=NODE_NAME,
            state_dir=str(self.state_dir), bin_dir=str(self.bin_dir), kubectl=self._bin("kubectl"),
            docker_host=self.engine.host if self.engine else "", image=images["base"],
            pause_image=images["pause"])
        self.timings["ready"] = time.monotonic() - started
        self._record()
        return self.info

    def stop(self) -> None:
        """Stop everything this cluster started, by PID, and remove its state directory."""
        if self.state_dir is None:
            return
        problems: list[str] = []
        self._stop_component("kubelet", problems)
        # The kubelet does not stop pods when it exits: remove them from our own engine.
        self._remove_pod_containers(problems)
        for name in COMPONENT_ORDER[1:]:
            self._stop_component(name, problems)
        self._clean_host_paths(problems)
        # Secret and token volumes are tmpfs mounts under the kubelet's root dir.
        for mountpoint in _mounts_under(self.state_dir):
            if self.engine is not None and mountpoint.startswith(str(self.engine.state_dir)):
                continue
            try:
                _umount(mountpoint)
            except HarnessError as exc:
                problems.append(str(exc))
        if self.engine is None and (self._path("docker") / "dockerd.json").exists():
            self.engine = self._engine()
        if self.engine is not None:
            try:
                self.engine.stop()
            except HarnessError as exc:
                problems.append(str(exc))
        # Never delete through a mount point: rmtree would descend into it.
        problems.extend(f"still mounted: {m}" for m in _mounts_under(self.state_dir))
        if problems:
            raise HarnessError("Kubernetes lab cluster: stop left something behind: " + "; ".join(problems))
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.pids.clear()

    def _stop_component(self, name: str, problems: list[str]) -> None:
        pid = self.pids.get(name)
        if pid is None:
            return
        argv = _cmdline(pid)
        # Only ever a process of ours: its command line names our state dir.
        if pid_alive(pid) and any(str(self.state_dir) in arg for arg in argv):
            if not stop_pid(pid, timeout=20):
                problems.append(f"{name} (pid {pid}) survived SIGKILL")
                return
        self.pids.pop(name, None)
        self._record()

    def _remove_pod_containers(self, problems: list[str]) -> None:
        """Force-remove every pod container of our engine (SIGKILL: the cluster is going away)."""
        engine = self.engine
        if engine is None or not (self._path("docker") / "dockerd.json").exists():
            return
        try:
            client = engine.client()
            for container in client.containers.list(all=True, filters={"label": "io.kubernetes.pod.uid"}):
                container.remove(force=True, v=True)
        except (docker.errors.DockerException, HarnessError, OSError) as exc:
            problems.append(f"removing pod containers: {exc}")

    def _clean_host_paths(self, problems: list[str]) -> None:
        """The device-plugin socket, and the host directories we created for it."""
        if not _other_kubelets_running():
            for leftover in ("kubelet.sock", "DEPRECATION"):
                (HOST_KUBELET_DIRS[-1] / leftover).unlink(missing_ok=True)
        for created in sorted(self.host_dirs_created, key=len, reverse=True):
            try:
                Path(created).rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                # Not empty: another cluster (the lab, a test session) still uses it.
                if _other_kubelets_running():
                    continue
                problems.append(f"{created} is not empty after stop")

    # -- pieces --------------------------------------------------------------

    def _engine(self) -> DockerEngine:
        docker_dir = self._path("docker")
        return DockerEngine(docker_dir, host=f"unix://{docker_dir / 'docker.sock'}",
                            data_root=docker_dir / "data", shutdown_timeout=5)

    def _start_engine(self) -> None:
        self.engine = self._engine()
        self.engine.ensure()
        if not self.engine.owned:
            raise HarnessError(f"the cluster's Docker engine {self.engine.host} belongs to someone else")

    def _make_images(self) -> dict[str, str]:
        assert self.engine is not None
        base = self.engine.base_image()
        tag = base.rsplit(":", 1)[1]
        pause = f"{PAUSE_REPO}:{tag}"
        client = self.engine.client()
        try:
            client.images.get(pause)
        except docker.errors.ImageNotFound:
            busybox = find_binary("busybox", "busybox-static")
            available = subprocess.run([busybox, "--list"],  # noqa: S603
                                       capture_output=True, text=True, check=True).stdout.split()
            rootfs = build_rootfs_tar(Path(busybox).read_bytes(), [a for a in APPLETS if a in available])
            client.api.import_image_from_data(
                rootfs, repository=PAUSE_REPO, tag=tag,
                changes=[f"CMD {json.dumps(PAUSE_COMMAND)}", "LABEL org.streamops.lab.image=pause"])
            client.images.get(pause)
        return {"base": base, "pause": pause}

    def _write_pki_and_tokens(self) -> dict[str, str]:
        pki = self._path("pki")
        pki.mkdir(exist_ok=True)
        write_pki(pki)
        tokens = {name: secrets.token_urlsafe(24) for name in
                  ("admin", "kubelet", "controller-manager", "scheduler")}
        # token,user,uid,"groups"
        rows = [
            f'{tokens["admin"]},streamops-admin,streamops-admin,"system:masters"',
            f'{tokens["kubelet"]},system:node:{NODE_NAME},kubelet,"system:nodes"',
            f'{tokens["controller-manager"]},system:kube-controller-manager,kube-controller-manager',
            f'{tokens["scheduler"]},system:kube-scheduler,kube-scheduler',
        ]
        token_file = self._path("tokens.csv")
        token_file.write_text("\n".join(rows) + "\n")
        token_file.chmod(0o600)
        self.ports["apiserver"] = free_port()
        server = f"https://{LOOPBACK}:{self.ports['apiserver']}"
        for name, token in tokens.items():
            path = self._path(f"{name}.kubeconfig")
            path.write_text(kubeconfig_yaml(server, str(pki / "ca.crt"), token, user=name))
            path.chmod(0o600)
        self._token = tokens["admin"]
        # Pods resolve through loopback only: nothing leaves the machine.
        self._path("resolv.conf").write_text(f"nameserver {LOOPBACK}\noptions ndots:1\n")
        return tokens

    def _start_etcd(self, etcd: str) -> None:
        client, peer, metrics = free_port(), free_port(), free_port()
        self.ports.update(etcd=client, etcd_peer=peer, etcd_metrics=metrics)
        argv = [
            etcd, "--name=lab", f"--data-dir={self._path('etcd')}",
            f"--listen-client-urls=http://{LOOPBACK}:{client}",
            f"--advertise-client-urls=http://{LOOPBACK}:{client}",
            f"--listen-peer-urls=http://{LOOPBACK}:{peer}",
            f"--initial-advertise-peer-urls=http://{LOOPBACK}:{peer}",
            f"--initial-cluster=lab=http://{LOOPBACK}:{peer}",
            f"--listen-metrics-urls=http://{LOOPBACK}:{metrics}",
            "--initial-cluster-state=new", "--logger=zap", "--log-outputs=stderr",
        ]
        self._spawn("etcd", argv)
        self._wait("etcd", lambda: _http_ok(f"http://{LOOPBACK}:{metrics}/health"))

    def _start_apiserver(self) -> None:
        pki = self._path("pki")
        argv = [
            self._bin("kube-apiserver"),
            f"--etcd-servers=http://{LOOPBACK}:{self.ports['etcd']}",
            f"--bind-address={LOOPBACK}", f"--advertise-address={LOOPBACK}",
            f"--secure-port={self.ports['apiserver']}", "--insecure-port=0",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={self._path('tokens.csv')}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            # Reach the kubelet at 127.0.0.1, never by resolving the node name.
            "--kubelet-preferred-address-types=InternalIP",
            # The 'kubernetes' Service would otherwise point at the advertise address.
            "--endpoint-reconciler-type=none",
            "--profiling=false", "--v=1",
        ]
        self._spawn("kube-apiserver", argv)

    def _controller_argv(self, name: str) -> list[str]:
        """What kube-controller-manager and kube-scheduler share: their own kubeconfig, no leader
        election, the secure port only, on loopback."""
        port = free_port()
        self.ports[name] = port
        return [
            self._bin(f"kube-{name}"), f"--kubeconfig={self._path(f'{name}.kubeconfig')}",
            "--leader-elect=false", f"--bind-address={LOOPBACK}", f"--secure-port={port}", "--port=0",
            f"--cert-dir={self._path(name)}", "--profiling=false", "--v=1",
        ]

    def _start_controller_manager(self) -> None:
        pki = self._path("pki")
        argv = self._controller_argv("controller-manager") + [
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}", "--use-service-account-credentials=true",
            f"--flex-volume-plugin-dir={self._path('flex-volume-plugins')}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
        ]
        self._spawn("kube-controller-manager", argv)

    def _start_scheduler(self) -> None:
        self._spawn("kube-scheduler", self._controller_argv("scheduler"))

    def _start_kubelet(self, pause_image: str) -> None:
        assert self.engine is not None
        pki = self._path("pki")
        root = self._path("kubelet")
        root.mkdir(exist_ok=True)
        port, healthz = free_port(), free_port()
        self.ports.update(kubelet=port, kubelet_healthz=healthz)
        cgroup_driver = self.engine.client().info().get("CgroupDriver") or "cgroupfs"
        argv = [
            self._bin("kubelet"),
            f"--kubeconfig={self._path('kubelet.kubeconfig')}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={LOOPBACK}", f"--address={LOOPBACK}", f"--port={port}", "--read-only-port=0",
            f"--healthz-bind-address={LOOPBACK}", f"--healthz-port={healthz}",
            f"--root-dir={root}", f"--cert-dir={root / 'pki'}",
            f"--volume-plugin-dir={root / 'volume-plugins'}",
            f"--experimental-dockershim-root-directory={self._path('dockershim')}",
            "--container-runtime=docker", f"--docker-endpoint={self.engine.host}",
            f"--container-runtime-endpoint=unix://{self._path('dockershim.sock')}",
            # cAdvisor's own engine lookup, pointed at our engine too, and its
            # containerd lookup at nothing.
            f"--docker={self.engine.host}", f"--containerd={self._path('no-containerd.sock')}",
            f"--cgroup-driver={cgroup_driver}",
            f"--pod-infra-container-image={pause_image}",
            f"--client-ca-file={pki / 'ca.crt'}", "--anonymous-auth=false",
            "--authorization-mode=AlwaysAllow",
            "--cgroups-per-qos=false", "--enforce-node-allocatable=", "--fail-swap-on=false",
            # The sandbox refuses negative OOM scores; nor may we touch the host's iptables.
            "--oom-score-adj=0", "--make-iptables-util-chains=false",
            f"--resolv-conf={self._path('resolv.conf')}",
            "--cluster-domain=cluster.local",
            # A nearly full disk must not evict the lab's pods or delete its images.
            "--eviction-hard=memory.available<50Mi,nodefs.available<1%,imagefs.available<1%",
            "--image-gc-high-threshold=100", "--image-gc-low-threshold=99",
            "--node-status-update-frequency=4s", "--sync-frequency=10s",
            "--v=1",
        ]
        env = dict(os.environ)
        # The AWS credential provider probes the instance-metadata address at start.
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        # Patch 0006: pod and container logs stay in the state dir, not /var/log.
        env["STREAMOPS_KUBELET_LOG_ROOT"] = str(self._path("logs", "pods-and-containers"))
        self._spawn("kubelet", argv, env=env)

    # -- process and API helpers ----------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        proc = spawn(argv, log=self._path("logs", f"{name}.log"), env=env, cwd=self.state_dir)
        self.pids[name] = proc.pid
        self._record()

    def _wait(self, what: str, check, *, component: str | None = None) -> None:
        component = component or what
        log = self._path("logs", f"{component}.log")
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if check():
                return
            for name, pid in self.pids.items():
                if not pid_alive(pid):
                    raise HarnessError(f"{name} exited during start{log_tail(self._path('logs', f'{name}.log'), 25)}")
            time.sleep(0.2)
        raise HarnessError(f"{what} not ready after {self.start_timeout:.0f}s{log_tail(log, 25)}")

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self._path("pki", "ca.crt")))

    def api_get(self, path: str) -> tuple[int, dict | str]:
        """GET on the API server as the admin; (status, parsed JSON or text)."""
        request = urllib.request.Request(
            f"https://{LOOPBACK}:{self.ports['apiserver']}{path}",
            headers={"Authorization": f"Bearer {self._token}"})
        try:
            with urllib.request.urlopen(request, context=self._ssl_context(), timeout=5) as response:  # noqa: S310
                body = response.read().decode()
                status = response.status
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (urllib.error.URLError, OSError):
            return 0, ""
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    def _api_ok(self, path: str) -> bool:
        return self.api_get(path)[0] == 200

    def _node_ready(self) -> bool:
        status, node = self.api_get(f"/api/v1/nodes/{NODE_NAME}")
        if status != 200 or not isinstance(node, dict):
            return False
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in node.get("status", {}).get("conditions", []))

    def service_account_ready(self, namespace: str) -> bool:
        """True once the namespace's 'default' service account has its token (pods can be created)."""
        status, account = self.api_get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
        return status == 200 and isinstance(account, dict) and bool(account.get("secrets"))

    # -- records ---------------------------------------------------------------

    def _record(self) -> None:
        if self.state_dir is None:
            return
        ServiceRecord(RECORD_NAME, None, {
            "state_dir": str(self.state_dir), "bin_dir": str(self.bin_dir) if self.bin_dir else None,
            "pids": self.pids, "ports": self.ports, "host_dirs_created": self.host_dirs_created,
            "info": asdict(self.info) if self.info else None, "timings": self.timings,
        }).save(self.state_dir)

    @classmethod
    def from_record(cls, record: ServiceRecord) -> KubernetesCluster:
        cluster = cls(Path(record.info["state_dir"]),
                      bin_dir=Path(record.info["bin_dir"]) if record.info.get("bin_dir") else None)
        cluster.pids = {name: int(pid) for name, pid in record.info.get("pids", {}).items()}
        cluster.ports = dict(record.info.get("ports", {}))
        cluster.host_dirs_created = list(record.info.get("host_dirs_created", []))
        cluster._token = (record.info.get("info") or {}).get("token")
        if (cluster._path("docker") / "dockerd.json").exists():
            cluster.engine = cluster._engine()
            cluster.engine.owned = True
        return cluster

    def alive(self) -> bool:
        return bool(self.pids) and all(pid_alive(pid) for pid in self.pids.values())


# -- PKI ------------------------------------------------------------------------

def write_pki(pki: Path) -> None:
    """A throwaway CA, the API server's serving cert, its kubelet client cert, the service-account keys."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    now = datetime.datetime.now(datetime.timezone.utc)
    lifetime = datetime.timedelta(days=7)

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def name(common: str, org: str | None = None) -> x509.Name:
        parts = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
        if org:
            parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(parts)

    def write_key(path: Path, private: rsa.RSAPrivateKey) -> None:
        path.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.TraditionalOpenSSL,
                                               serialization.NoEncryption()))
        path.chmod(0o600)

    ca_key = key()
    ca_name = name("streamops-lab-ca")
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + lifetime)
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    write_key(pki / "ca.key", ca_key)
    (pki / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def issue(stem: str, subject: x509.Name, usage, san: list | None = None) -> None:
        private = key()
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
                   .public_key(private.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + lifetime)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        write_key(pki / f"{stem}.key", private)
        (pki / f"{stem}.crt").write_bytes(builder.sign(ca_key, hashes.SHA256())
                                          .public_bytes(serialization.Encoding.PEM))

    first_service_ip = next(ipaddress.ip_network(SERVICE_CIDR).hosts())
    issue("apiserver", name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, [
        x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.IPAddress(first_service_ip),
        x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"), x509.DNSName("kubernetes.default.svc.cluster.local"),
    ])
    # The API server's identity towards the kubelet (logs, exec).
    issue("apiserver-kubelet-client", name("kube-apiserver-kubelet-client", "system:masters"),
          ExtendedKeyUsageOID.CLIENT_AUTH)
    sa_key = key()
    write_key(pki / "sa.key", sa_key)
    (pki / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def kubeconfig_yaml(server: str, ca_file: str, token: str, *, user: str) -> str:
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "streamops-lab", "cluster": {"server": server, "certificate-authority": ca_file}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "streamops-lab", "context": {"cluster": "streamops-lab", "user": user}}],
        "current-context": "streamops-lab",
    }
    # JSON is valid YAML; no YAML dependency for the harness's own files.
    return json.dumps(config, indent=2) + "\n"


def _other_kubelets_running() -> bool:
    """True when a kubelet process is alive (ours are stopped by the time this is asked)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = _cmdline(int(entry.name))
            if argv and Path(argv[0]).name == "kubelet" and pid_alive(int(entry.name)):
                return True
    return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
