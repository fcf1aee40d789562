#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: service_latency
short_description: Measure the latency from the target host to PostgreSQL, Redis and HTTP endpoints
version_added: 0.1.0
description:
  - Probes each target O(probes) times, O(interval) seconds apart, from the target host, and judges the
    95th percentile against a threshold; the guides' C(ping), C(curl) timing and C(redis-cli --latency-history)
    as one module. Every target is one record with its figures.
  - PostgreSQL - the connect latency of a fresh connection per probe (TCP, TLS with O(postgres.sslmode), SCRAM
    and the session start, which a client without a pool pays each time), and the request latency of C(SELECT 1) on an open
    connection. The first connection is kept for the requests, so each probe is one connect and one request.
  - Redis - the connect latency of a fresh connection per probe (TCP, TLS with O(redis.tls), C(AUTH), C(SELECT) of a
    database other than 0, C(CLIENT SETNAME); no retry, so a refused connection is no answer rather than a slow one)
    and the latency of C(PING) on an open connection.
  - HTTP(S) - the TCP connect latency (a connection opened and closed at once), and the request latency, the time
    to the full answer of a C(GET) on a new connection (TCP, TLS, the request and the whole body), never through
    a proxy named in the environment. An answer with another status than O(http[].status) is no answer.
  - Percentiles are nearest-rank, always a measured sample (the smallest one with at least that share of the
    samples at or below it); with 5 probes p50 is the 3rd fastest and p95 is the slowest, the maximum; it takes
    20 probes or more for p95 to leave the slowest one out.
  - A target that does not answer (refused, timed out, a login or TLS verification that fails, a wrong HTTP status)
    is a V(breach) record with the error, and its remaining probes are not made; the module itself fails only on
    bad input, before anything is probed, so a play can collect every breach before it fails.
  - Only reads; RV(ignore:changed) is always V(false). Passwords are never in the records, RV(msg) or an error.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.attributes.read_only
attributes:
  check_mode:
    details:
      - Check mode measures for real; probing changes nothing.
options:
  probes:
    description: Probes per target (1-100), each one connect and one request.
    type: int
    default: 5
  interval:
    description: Seconds between two probes of a target (0-60).
    type: float
    default: 0.2
  timeout:
    description:
      - Seconds to wait for each HTTP connection and answer. PostgreSQL and Redis use their own
        O(postgres.connect_timeout), O(redis.connect_timeout) and O(redis.socket_timeout).
    type: float
    default: 5
  postgres:
    description:
      - The PostgreSQL server to measure, with the options of the C(streamops.maintenance.postgres) doc fragment
        (the estate's C(postgres_login) dict as it is, O(postgres.sslmode) and O(postgres.ca_cert) included).
        Unset measures no PostgreSQL.
      - The record is named C(postgres <host>:<port>/<database>).
    type: dict
    suboptions:
      login_host:
        description:
          - Host name or IP address of the PostgreSQL server.
          - When unset, E(PGHOST) is used, then libpq's default (the local unix socket).
        type: str
        aliases: [host]
      login_port:
        description:
          - Port of the server. When unset, E(PGPORT) is used, then 5432.
        type: int
        aliases: [port]
      login_user:
        description:
          - Role to connect as. When unset, E(PGUSER) is used, then the operating-system user.
        type: str
        aliases: [user]
      login_password:
        description:
          - Password of O(postgres.login_user). When unset, E(PGPASSWORD) is used, then C(~/.pgpass).
          - Never passed on a command line, never logged.
        type: str
        aliases: [password]
      login_unix_socket:
        description:
          - Directory of the server's unix socket; takes precedence over O(postgres.login_host).
        type: str
        aliases: [unix_socket]
      database:
        description:
          - Database to connect to. When unset, E(PGDATABASE) is used, then a database named like the user.
        type: str
        aliases: [db, login_db]
      sslmode:
        description:
          - libpq SSL mode. When unset, E(PGSSLMODE) is used, then V(prefer).
        type: str
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      ca_cert:
        description:
          - CA certificate file to verify the server with (V(verify-ca), V(verify-full)). Falls back to E(PGSSLROOTCERT).
        type: path
        aliases: [ssl_rootcert]
      ssl_cert:
        description:
          - Client certificate file. Falls back to E(PGSSLCERT).
        type: path
      ssl_key:
        description:
          - Client private key file. Falls back to E(PGSSLKEY).
        type: path
      connect_timeout:
        description:
          - Seconds to wait for each connection before the probe counts as no answer.
        type: int
        default: 10
  postgres_max_p95_ms:
    description:
      - The p95 of C(SELECT 1) on an open connection above this many milliseconds is a V(breach).
      - C(SELECT 1) does no work, so this is the round trip plus the server's scheduling; under a millisecond on
        one network, so 50 ms is a server or network in trouble.
    type: float
    default: 50
  postgres_max_connect_p95_ms:
    description:
      - The p95 of opening a connection above this many milliseconds is a V(breach).
      - A connection forks a backend and runs the TLS and SCRAM-SHA-256 handshakes (a few round trips and 4096
        hash iterations on each side), 5 to 30 ms on one network; 250 ms leaves room for a busy server and
        flags one that is too slow for an application without a pool.
    type: float
    default: 250
  redis:
    description:
      - The Redis server to measure, with the options of the C(streamops.maintenance.redis) doc fragment (the
        estate's C(redis_login) dict as it is). Unset measures no Redis.
      - The record is named C(redis <host>:<port>) (or C(redis <socket path>)).
    type: dict
    suboptions:
      login_host:
        description: Host name or IP address of the Redis server.
        type: str
        default: localhost
        aliases: [host]
      login_port:
        description: Port of the Redis server.
        type: int
        default: 6379
        aliases: [port]
      login_unix_socket:
        description: Path of the server's unix socket; takes precedence over O(redis.login_host).
        type: str
        aliases: [unix_socket]
      login_user:
        description: ACL user name (Redis 6+). Without it the C(default) user is used.
        type: str
        aliases: [user, username]
      login_password:
        description:
          - Password of O(redis.login_user) (or C(requirepass)). When unset, E(REDISCLI_AUTH) is used.
          - Never passed on a command line, never logged.
        type: str
        aliases: [password]
      db:
        description: Database number to select.
        type: int
        default: 0
      tls:
        description: Connect with TLS.
        type: bool
        default: false
      validate_certs:
        description: With O(redis.tls), verify the server's certificate against O(redis.ca_certs).
        type: bool
        default: true
      ca_certs:
        description: CA certificate file for O(redis.tls).
        type: path
      client_cert_file:
        description: Client certificate file for O(redis.tls).
        type: path
      client_key_file:
        description: Client private key file for O(redis.tls).
        type: path
      socket_timeout:
        description: Seconds to wait for a reply before the probe counts as no answer.
        type: float
        default: 10
      connect_timeout:
        description: Seconds to wait for each connection before the probe counts as no answer.
        type: float
        default: 5
  redis_max_p95_ms:
    description:
      - The p95 of C(PING) on an open connection above this many milliseconds is a V(breach).
      - Redis answers a C(PING) in well under a millisecond on one network; 10 ms means a blocking command, a
        fork or a saturated host (what C(redis-cli --latency-history) shows).
    type: float
    default: 10
  redis_max_connect_p95_ms:
    description:
      - The p95 of opening a connection above this many milliseconds is a V(breach).
      - A connection is a TCP handshake and a few round trips (C(AUTH), C(SELECT), C(CLIENT SETNAME)), a
        millisecond or two on one network, more with TLS; 50 ms flags a slow network, name resolution or host.
    type: float
    default: 50
  http:
    description:
      - HTTP(S) endpoints to measure, one record each, named C(http <name>).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Names the record (C(http <name>)), so it must be unique; defaults to the URL.
        type: str
      url:
        description: The C(http://) or C(https://) URL to C(GET). Required.
        type: str
      status:
        description: The status the endpoint must answer with.
        type: int
        default: 200
      validate_certs:
        description: Verify the TLS certificate of an C(https) URL.
        type: bool
        default: true
      max_p95_ms:
        description: The p95 of the time to the full answer above this many milliseconds is a V(breach).
        type: float
        default: 500
      max_connect_p95_ms:
        description:
          - The p95 of the TCP connect above this many milliseconds is a V(breach).
          - A TCP handshake is one round trip, under a millisecond on one network and tens of milliseconds
            across a continent; 100 ms flags a slow path or a listener whose accept queue is full.
        type: float
        default: 100
requirements:
  - psycopg >= 3.1 (the C(psycopg) or C(psycopg[binary]) package), for O(postgres)
  - redis (redis-py) >= 4.2, for O(redis)
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Latency from the application host to its database, cache and API
  streamops.maintenance.service_latency:
    postgres: "{{ postgres_login }}"
    redis: "{{ redis_login }}"
    http:
      - name: active alarms API
        url: http://localhost:8081/api/alarms/active/count
        max_p95_ms: 200
    probes: 20
    interval: 0.5
  register: latency

- name: Fail when a service is slow or does not answer
  ansible.builtin.fail:
    msg: "{{ latency | streamops.maintenance.problems_text('service(s) slow or not answering') }}"
  when: latency | streamops.maintenance.problems | length > 0
"""

RETURN = r"""
changed:
  description: Always V(false).
  returned: always
  type: bool
  sample: false
msg:
  description: How many targets were measured and which are over a threshold or do not answer.
  returned: always
  type: str
  sample: "3 target(s) measured over 5 probe(s), all within their thresholds"
records:
  description:
    - One record per target (see C(docs/records.md)), action V(latency), PostgreSQL first, then Redis, then the
      HTTP endpoints in their order; named C(postgres <host>:<port>/<database>), C(redis <host>:<port>) and
      C(http <name>).
    - C(status) is V(ok), V(breach) (a p95 over its threshold - the detail names the figure and the threshold - or
      no answer, with the error), or V(unknown) when the Python library the target needs is not installed.
    - C(after) holds C(request_p50_ms), C(request_p95_ms) and C(max_ms) (the slowest request), C(connect_p50_ms),
      C(connect_p95_ms) and C(connect_max_ms), C(probes) (the probes that answered), C(threshold_ms) (the request
      p95 threshold) and C(connect_threshold_ms); a figure nothing was measured for is null. A V(breach) or
      V(unknown) record also has C(remedy), one sentence on what to look at.
  returned: always
  type: list
  elements: dict
  sample:
    - name: postgres 127.0.0.1:5432/streamsystems
      action: latency
      status: ok
      detail: "SELECT 1 p50 0.08 ms, p95 0.12 ms (limit 50 ms); connect p50 9.41 ms, p95 11.02 ms (limit 250 ms);
        5 of 5 probe(s)"
      before: null
      after: {connect_p50_ms: 9.41, connect_p95_ms: 11.02, connect_max_ms: 11.02, request_p50_ms: 0.08,
              request_p95_ms: 0.12, max_ms: 0.12, probes: 5, threshold_ms: 50.0, connect_threshold_ms: 250.0}
      seconds: 0.86
    - name: http active alarms API
      action: latency
      status: breach
      detail: "GET p95 612.40 ms is over 500 ms (GET p50 320.11 ms, p95 612.40 ms (limit 500 ms); connect p50 0.21 ms,
        p95 0.30 ms (limit 100 ms); 5 of 5 probe(s))"
      before: null
      after: {connect_p50_ms: 0.21, connect_p95_ms: 0.3, connect_max_ms: 0.3, request_p50_ms: 320.11,
              request_p95_ms: 612.4, max_ms: 612.4, probes: 5, threshold_ms: 500.0, connect_threshold_ms: 100.0,
              remedy: "Look at the service's own response time (its log and the calls it makes), the proxy in front
                of it, and the network path from this host."}
      seconds: 2.41
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.pg import pg_connection_argument_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.redis_conn import redis_connection_argument_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.service_latency import run_service_latency


def argument_spec() -> dict:
    return dict(
        probes=dict(type="int", default=5),
        interval=dict(type="float", default=0.2),
        timeout=dict(type="float", default=5),
        # The connection dicts are the doc fragments' options, from the same helpers, so they cannot drift.
        postgres=dict(type="dict", options=pg_connection_argument_spec()),
        postgres_max_p95_ms=dict(type="float", default=50),
        postgres_max_connect_p95_ms=dict(type="float", default=250),
        redis=dict(type="dict", options=redis_connection_argument_spec()),
        redis_max_p95_ms=dict(type="float", default=10),
        redis_max_connect_p95_ms=dict(type="float", default=50),
        http=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str"),
            url=dict(type="str"),
            status=dict(type="int", default=200),
            validate_certs=dict(type="bool", default=True),
            max_p95_ms=dict(type="float", default=500),
            max_connect_p95_ms=dict(type="float", default=100),
        )),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    # A missing psycopg or redis-py is an unknown record of the target that needs it, not a failed module.
    run_and_exit(module, run_service_latency, {})


if __name__ == "__main__":
    main()
