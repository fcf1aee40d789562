# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Paired with plugins/module_utils/k8s_conn.py kubernetes_argument_spec(); a unit test keeps them equal.

from __future__ import annotations


class ModuleDocFragment:
    # The options a play sets once with module_defaults group/streamops.maintenance.kubernetes: kubernetes_login.
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file to connect with. When unset, E(K8S_AUTH_KUBECONFIG) is used.
      - With neither O(kubeconfig) nor O(context), the pod's own service account is used when running
        inside a cluster, else the default kubeconfig (E(KUBECONFIG), then C(~/.kube/config)).
    type: path
  context:
    description:
      - Context of the kubeconfig to use. When unset, E(K8S_AUTH_CONTEXT) is used, then the kubeconfig's
        current context.
    type: str
  request_timeout:
    description:
      - Seconds to wait for each reply of the API server before failing.
    type: int
    default: 30
requirements:
  - kubernetes (the Python client) >= 28.1
"""
