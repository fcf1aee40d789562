# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Redis connection shared by the Redis modules; options documented by the ``redis`` doc fragment.

The password comes from a ``no_log`` option or E(REDISCLI_AUTH) (what redis-cli
reads), never a command line.
"""

from __future__ import annotations

import traceback
from typing import Any

from ansible.module_utils.basic import env_fallback

from .errors import MaintenanceError
from .timeouts import timeout_problem

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - reported by the module through missing_required_lib
    redis = None
    REDIS_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    REDIS_IMPORT_ERROR = None


class RedisError(MaintenanceError):
    """A connection, command or input problem; ``msg`` says which."""


def redis_connection_argument_spec() -> dict[str, Any]:
    """Connection options of every Redis module; documented by the ``redis`` doc fragment."""
    return dict(
        login_host=dict(type="str", default="localhost", aliases=["host"]),
        login_port=dict(type="int", default=6379, aliases=["port"]),
        login_unix_socket=dict(type="str", aliases=["unix_socket"]),
        login_user=dict(type="str", aliases=["user", "username"]),
        login_password=dict(type="str", no_log=True, aliases=["password"],
                            fallback=(env_fallback, ["REDISCLI_AUTH"])),
        db=dict(type="int", default=0),
        tls=dict(type="bool", default=False),
        validate_certs=dict(type="bool", default=True),
        ca_certs=dict(type="path"),
        client_cert_file=dict(type="path"),
        client_key_file=dict(type="path", no_log=False),
        socket_timeout=dict(type="float", default=10),
        connect_timeout=dict(type="float", default=5),
    )


def client_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """redis-py keyword arguments from the module options."""
    if params["db"] < 0:
        raise RedisError(msg=f"db must not be negative, got {params['db']}")
    for name in ("socket_timeout", "connect_timeout"):
        if params[name] <= 0:
            raise RedisError(msg=f"{name} must be positive, got {params[name]}")
        # NaN, inf or a huge value reached socket.settimeout and ended the module in a traceback.
        problem = timeout_problem(params[name], name)
        if problem:
            raise RedisError(msg=problem)
    socket_path = params.get("login_unix_socket")
    if socket_path is not None and not str(socket_path).strip():
        raise RedisError(msg=f"login_unix_socket {socket_path!r} is empty: give the socket's path, or leave it unset")
    if not socket_path and not str(params.get("login_host") or "").strip():
        raise RedisError(msg=f"login_host {params.get('login_host')!r} is empty: give the Redis server's host name "
                             "or address, or login_unix_socket")
    kwargs: dict[str, Any] = {
        "db": params["db"], "username": params.get("login_user"), "password": params.get("login_password"),
        "socket_timeout": params["socket_timeout"], "socket_connect_timeout": params["connect_timeout"],
        "client_name": "streamops.maintenance",
    }
    if params.get("login_unix_socket"):
        kwargs["unix_socket_path"] = params["login_unix_socket"]
    else:
        kwargs.update(host=params["login_host"], port=params["login_port"])
    if params["tls"]:
        kwargs.update(ssl=True, ssl_cert_reqs="required" if params["validate_certs"] else "none",
                      ssl_ca_certs=params.get("ca_certs"), ssl_certfile=params.get("client_cert_file"),
                      ssl_keyfile=params.get("client_key_file"))
    return kwargs


def describe(kwargs: dict[str, Any]) -> str:
    where = kwargs.get("unix_socket_path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
    # Said, because a TLS client meeting a plain server (or the reverse) only sees a timeout or a reset.
    over = " over TLS" if kwargs.get("ssl") else ""
    return f"{where} db {kwargs.get('db', 0)}{over}"


def connect(kwargs: dict[str, Any]) -> Any:
    """A client that has answered PING (so a wrong password or address fails here, clearly)."""
    if redis is None:
        raise RedisError(msg="the Python library redis (redis-py) is required")
    client = redis.Redis(**kwargs)
    # The first PING is tried once: redis-py's default retries (3, with backoff) turned a TLS client talking to a
    # plain server (tls: true by mistake) into a minute of handshake timeouts for a socket_timeout of 5 s.
    later_retry = client.get_retry()
    client.set_retry(Retry(NoBackoff(), 0))
    try:
        client.ping()
    except redis.exceptions.AuthenticationError as exc:
        raise RedisError(msg=f"Redis {describe(kwargs)}: authentication failed: {exc}") from exc
    except redis.exceptions.RedisError as exc:
        raise RedisError(msg=f"cannot connect to Redis {describe(kwargs)}: {exc}") from exc
    client.set_retry(later_retry)
    return client


def dropped_connection_cause(client: Any) -> str:
    """Why Redis dropped our connection, as far as a new one can tell afterwards: stopped, or closed it on purpose.

    Redis closes a client whose pending replies pass its client-output-buffer-limit (a big SCAN or MEMORY USAGE
    reply, a replica's stream) without a word to the client: the only sign is that the server still answers.
    """
    probe = one_attempt_client(client)
    try:
        probe.ping()
    except redis.exceptions.RedisError as exc:
        return f"the server does not answer now ({exc}): it stopped or restarted"
    try:
        limits = probe.config_get("client-output-buffer-limit").get("client-output-buffer-limit")
    except redis.exceptions.RedisError:
        limits = None  # CONFIG may be denied to this user by an ACL
    finally:
        if probe is not client:
            probe.close()
    limit_text = f" (now: {limits})" if limits else ""
    return ("the server still answers, so it closed this connection itself: most likely a reply went over its "
            f"client-output-buffer-limit{limit_text}, else a client timeout or CLIENT KILL")


def one_attempt_client(client: Any) -> Any:
    """A client to the same server that tries each command once: redis-py's default retries (with backoff, some
    seconds) only delay the answer to 'is the server there now?'. The client itself when no copy can be made."""
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return client
    try:
        from redis.backoff import NoBackoff  # pylint: disable=import-outside-toplevel
        from redis.retry import Retry  # pylint: disable=import-outside-toplevel

        kwargs = {**pool.connection_kwargs, "retry": Retry(NoBackoff(), 0)}
        return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))
    except (ImportError, TypeError, ValueError):  # another redis-py: its own retries are slower, not wrong
        return client
