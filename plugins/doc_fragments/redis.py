# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Paired with plugins/module_utils/redis_conn.py redis_connection_argument_spec(); a unit test keeps them equal.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
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
    description: Path of the server's unix socket; takes precedence over O(login_host).
    type: str
    aliases: [unix_socket]
  login_user:
    description: ACL user name (Redis 6+). Without it the C(default) user is used.
    type: str
    aliases: [user, username]
  login_password:
    description:
      - Password of O(login_user) (or C(requirepass)). When unset, E(REDISCLI_AUTH) is used.
      - Never passed on a command line, never logged.
    type: str
    aliases: [password]
  db:
    description: Database number the keys are in.
    type: int
    default: 0
  tls:
    description: Connect with TLS.
    type: bool
    default: false
  validate_certs:
    description: With O(tls), verify the server's certificate against O(ca_certs).
    type: bool
    default: true
  ca_certs:
    description: CA certificate file for O(tls).
    type: path
  client_cert_file:
    description: Client certificate file for O(tls).
    type: path
  client_key_file:
    description: Client private key file for O(tls).
    type: path
  socket_timeout:
    description: Seconds to wait for a reply before failing.
    type: float
    default: 10
  connect_timeout:
    description: Seconds to wait for the connection before failing.
    type: float
    default: 5
requirements:
  - redis (redis-py) >= 4.2
"""
