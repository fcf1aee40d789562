# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Paired with plugins/module_utils/prometheus_conn.py prometheus_argument_spec(); a unit test keeps them equal.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the Prometheus server (with its C(--web.route-prefix), if any).
      - When unset, E(PROMETHEUS_URL) is used, then the default.
      - Requests never go through a proxy.
    type: str
    default: http://127.0.0.1:9090
  username:
    description: User name for HTTP basic auth (C(--web.config.file) C(basic_auth_users)).
    type: str
  password:
    description: Password of O(username). Never logged.
    type: str
  ca_cert:
    description: CA certificate file that signed the server's certificate, for an C(https) O(url).
    type: path
  validate_certs:
    description: For an C(https) O(url), verify the server's certificate and host name.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each answer of the server.
    type: int
    default: 30
"""
