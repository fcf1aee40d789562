# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Paired with plugins/module_utils/pg.py pg_connection_argument_spec(); a unit test keeps them equal.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
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
      - Password of O(login_user). When unset, E(PGPASSWORD) is used, then C(~/.pgpass).
      - Never passed on a command line, never logged.
    type: str
    aliases: [password]
  login_unix_socket:
    description:
      - Directory of the server's unix socket; takes precedence over O(login_host).
    type: str
    aliases: [unix_socket]
  database:
    description:
      - Database to work in. When unset, E(PGDATABASE) is used, then a database named like the user.
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
      - Seconds to wait for the connection before failing.
    type: int
    default: 10
requirements:
  - psycopg >= 3.1 (the C(psycopg) or C(psycopg[binary]) package)
"""
