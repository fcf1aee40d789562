"""free_port: ports outside the kernel's ephemeral range, never handed to two harness processes at once."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from lab.harness import base

HOLDER = """
import sys
from lab.harness import base
base._CLAIMS.cursor = int(sys.argv[1]) - base.harness_port_range().start
print(base.free_port(), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def claims(tmp_path, monkeypatch):
    """This process's claims, fresh, in a claims file of the test's own (TMPDIR for the child processes)."""
    monkeypatch.setattr(base, "PORT_CLAIMS", tmp_path / "streamops-harness-ports.lock")
    monkeypatch.setattr(base, "_CLAIMS", base._PortClaims())
    return tmp_path


def start_holder(tmp_path, port):
    """A second harness process that claims ``port`` and holds it until its stdin closes."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    return proc, int(proc.stdout.readline())


def test_ports_come_from_outside_the_ephemeral_range(claims):
    low, high = (int(v) for v in base.EPHEMERAL_RANGE.read_text().split())
    span = base.harness_port_range()
    assert span is not None and (span.stop <= low or span.start > high)
    ports = [base.free_port() for _port in range(50)]
    assert len(set(ports)) == 50, "one process handed a port out twice"
    assert all(port in span for port in ports)


def test_a_port_something_listens_on_is_skipped(claims):
    start = base.harness_port_range().start
    with socket.socket() as listener:
        listener.bind((base.LOOPBACK, start))
        listener.listen()
        base._CLAIMS.cursor = 0
        assert base.free_port() == start + 1
    assert start not in base._CLAIMS.ports, "a port it did not hand out stays claimed"


def test_a_port_another_harness_process_holds_is_skipped_until_it_exits(claims):
    wanted = base.harness_port_range().start + 7
    holder, held = start_holder(claims, wanted)
    try:
        assert held == wanted
        base._CLAIMS.cursor = 7
        assert base.free_port() == wanted + 1
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    base._CLAIMS.cursor = 7
    assert base.free_port() == wanted, "a port whose holder exited stays claimed"


def test_a_forked_child_claims_its_own_ports(claims):
    first = base.free_port()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its parent's claims are not its own, and its parent still holds them
        os.close(read)
        base._CLAIMS.cursor -= 1
        port = base.free_port()
        os.write(write, str(port).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        assert int(pipe.read()) == first + 1, "a child got its parent's port"
