#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_access_review
short_description: Access-control review of a Kubernetes cluster (bindings, service accounts, network policies, secrets)
version_added: 0.1.0
description:
  - "The Stream Systems guide's access-control review, read-only: what C(kubectl get rolebindings,clusterrolebindings),
    C(kubectl auth can-i --list --as=system:serviceaccount:...), C(kubectl get networkpolicies) and the guide's
    unused-secret loop show, judged against rules, one record per finding."
  - "V(bindings): every ClusterRoleBinding, and every RoleBinding of the reviewed namespaces (all of them are
    returned in RV(bindings)). A subject bound to C(cluster-admin), or to any role with a rule of verb C(*) or
    resource C(*) (aggregated roles as the API returns their rules), that is not on O(allowed_admins) is a
    V(breach); so is a ServiceAccount subject that does not exist (whoever creates an account by that name gets the
    role). The API server's own bindings (label C(kubernetes.io/bootstrapping=rbac-defaults)) are exempt for their
    built-in subjects: C(system:) users and groups and C(kube-system) service accounts (which kube-controller-manager
    creates only with C(--use-service-account-credentials)); any other subject added to them is judged like any
    binding."
  - "V(service_accounts): for each account of O(service_accounts), a SelfSubjectRulesReview made while impersonating
    C(system:serviceaccount:<namespace>:<name>) (the API server adds the account's groups), the API behind
    C(kubectl auth can-i --list --as=...). Every rule beyond the expected set and the rules of
    O(baseline_cluster_roles) is named in a V(breach); an incomplete review (a webhook authorizer, an
    evaluation error) or an account that does not exist is V(unknown)."
  - "V(network_policies): a reviewed namespace without any NetworkPolicy is a V(breach); so is one without a
    default-deny ingress policy (C(podSelector: {}), C(Ingress) among C(policyTypes), no ingress rule) when
    O(require_default_deny)."
  - "V(unused): a Secret or ConfigMap that no pod, no pod template of a workload (Deployment, ReplicaSet, StatefulSet,
    DaemonSet, Job, CronJob, ReplicationController, so a CronJob between runs or a Deployment scaled to zero still
    counts), no service account (C(secrets), C(imagePullSecrets)) and no Ingress TLS references is a V(breach).
    References are volumes, projected volumes, C(env) C(valueFrom), C(envFrom) and C(imagePullSecrets). A service
    account token Secret is used while its account exists. Ingresses are read from C(networking.k8s.io/v1), then
    v1beta1 and C(extensions/v1beta1); an API the server does not serve is noted in the V(ok) record."
  - "V(secret_age): a Secret whose last rotation (annotation C(streamops.io/rotated-at), ISO 8601, as the rotation
    writes it; else the last time a field manager wrote its C(data), from C(managedFields), which is what a
    renewal in place such as cert-manager's leaves; else its creation time) is more than O(secret_max_age_days) ago
    is a V(breach)."
  - Secrets are listed as metadata only (the API's Table form), so their values are never read.
  - A list the API server refuses (403) makes that check V(unknown) for that scope, with the reason; never a clean result.
  - Every V(breach) and V(unknown) record carries C(after.remedy), what the operator should do about it.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.attributes.read_only
  - streamops.maintenance.kubernetes
options:
  namespaces:
    description:
      - The namespaces to review (their RoleBindings, NetworkPolicies, Secrets and ConfigMaps). ClusterRoleBindings
        are always reviewed with V(bindings).
      - Default is every namespace except O(exclude_namespaces). A namespace that does not exist fails the task
        naming it, before anything else is read. Named namespaces are reviewed even when O(exclude_namespaces) lists them.
    type: list
    elements: str
  exclude_namespaces:
    description: Namespaces left out when O(namespaces) is not set.
    type: list
    elements: str
    default: [kube-system, kube-public, kube-node-lease]
  checks:
    description: The checks to run.
    type: list
    elements: str
    choices: [bindings, service_accounts, network_policies, unused, secret_age]
    default: [bindings, service_accounts, network_policies, unused, secret_age]
  allowed_admins:
    description:
      - Subjects that may be bound to an admin role, as C(Kind:name) with Kind C(User), C(Group) or
        C(ServiceAccount) (C(ServiceAccount:namespace/name)).
    type: list
    elements: str
    default: ["Group:system:masters"]
  service_accounts:
    description:
      - Service accounts whose permissions are compared with what they are expected to have.
    type: list
    elements: dict
    suboptions:
      name:
        description: The account, C(namespace/name).
        type: str
        required: true
      namespaces:
        description: Namespaces to review its permissions in (cluster-wide rights show in each). Default its own.
        type: list
        elements: str
      expected:
        description:
          - The rules it is expected to have; anything beyond them (and O(baseline_cluster_roles)) is a breach.
            An empty list expects nothing but the baseline.
          - A granted rule is covered when each of its verbs, API groups, resources (and names) is listed by one
            expected rule; V(*) in an expected rule matches anything, V(pods/*) every subresource of pods, a
            trailing V(*) in a URL a prefix.
        type: list
        elements: dict
        default: []
        suboptions:
          verbs:
            description: Verbs, for example V(get), V(list), V(watch).
            type: list
            elements: str
            required: true
          api_groups:
            description: API groups; V("") is the core group.
            type: list
            elements: str
            default: [""]
          resources:
            description: Resources, for example V(pods), V(pods/log), V(deployments).
            type: list
            elements: str
          resource_names:
            description: Object names the rule is limited to; empty means every object.
            type: list
            elements: str
          non_resource_urls:
            description: Non-resource URLs, for example V(/healthz).
            type: list
            elements: str
  baseline_cluster_roles:
    description:
      - ClusterRoles the API server grants every authenticated identity; their rules are never counted against
        a service account.
    type: list
    elements: str
    default: [system:basic-user, system:discovery, system:public-info-viewer, system:service-account-issuer-discovery]
  require_default_deny:
    description: A namespace without a default-deny ingress NetworkPolicy is a breach.
    type: bool
    default: true
  secret_max_age_days:
    description: Days since rotation (or the last write of its data, or creation) after which a Secret is a breach.
    type: int
    default: 90
  exclude_secret_types:
    description: Secret types neither V(unused) nor V(secret_age) reviews (Helm's release records are not credentials).
    type: list
    elements: str
    default: [helm.sh/release.v1]
  secret_age_exclude_types:
    description:
      - Secret types V(secret_age) does not review. Legacy service account tokens are replaced by recreating the
        account; set V([]) to review their age too.
    type: list
    elements: str
    default: [kubernetes.io/service-account-token]
  exclude_configmaps:
    description: ConfigMap names never reported as unused (C(kube-root-ca.crt) is published into every namespace).
    type: list
    elements: str
    default: [kube-root-ca.crt]
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: The guide's monthly access-control review (connection from kubernetes_login through module_defaults)
  streamops.maintenance.k8s_access_review:
    namespaces: [production]
    allowed_admins: ["Group:system:masters", "Group:platform-admins"]
    service_accounts:
      - name: production/stream-systems
        expected:
          - {verbs: [get, list, watch], resources: [pods, services, endpoints, configmaps]}
          - {verbs: [get], resources: [secrets], resource_names: [stream-systems-db]}
    secret_max_age_days: 90
  register: access_review

- name: Only the network policies, without requiring a default-deny policy
  streamops.maintenance.k8s_access_review:
    kubeconfig: /etc/streamops/stream-systems.kubeconfig
    checks: [network_policies]
    require_default_deny: false
"""

RETURN = r"""
changed:
  description: Always V(false).
  returned: always
  type: bool
  sample: false
msg:
  description: How many namespaces were reviewed and how many breaches and unknown checks were found.
  returned: always
  type: str
  sample: "Kubernetes access review of 1 namespace(s): 3 breach"
records:
  description:
    - "One record per finding and one V(ok) record per check and scope when it is clean; see C(docs/records.md).
      Names: C(clusterrolebinding/<name>), C(rolebinding/<namespace>/<name>), C(clusterrolebindings) and
      C(namespace/<namespace>) (clean scopes, unreadable lists), C(serviceaccount <namespace>/<name>),
      C(secret <namespace>/<name>), C(configmap <namespace>/<name>)."
    - Actions V(binding), V(rules), V(network_policy), V(unused), V(secret_age).
    - C(status) is V(ok), V(breach), V(unknown) (could not decide, for example a 403) or V(failed) (a read failed).
      Every V(breach) and V(unknown) has C(after.remedy).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: clusterrolebinding/ci-deployer, action: binding, status: breach,
       detail: "binds ClusterRole/ci-everything (verbs *) to ServiceAccount:ci/deployer, not on allowed_admins",
       before: null, after: {role: ClusterRole/ci-everything, admin: "verbs *", subjects: ["ServiceAccount:ci/deployer"],
                             not_allowed: ["ServiceAccount:ci/deployer"], missing_service_accounts: [],
                             unknown_service_accounts: [],
                             remedy: "Bind ServiceAccount:ci/deployer to a narrower role (or remove the binding)."},
       seconds: null}
    - {name: namespace/production, action: network_policy, status: ok,
       detail: "2 NetworkPolicy(ies); default-deny ingress default-deny", before: null,
       after: {policies: [allow-api, default-deny], default_deny_ingress: [default-deny]}, seconds: null}
    - {name: secret production/api-keys, action: secret_age, status: breach,
       detail: "200 days since rotation (2025-06-01T00:00:00+00:00), over 90", before: null,
       after: {age_days: 200, since: "2025-06-01T00:00:00+00:00", source: rotated-at, max_age_days: 90,
               type: Opaque, remedy: "Rotate the Secret."}, seconds: null}
bindings:
  description: Every ClusterRoleBinding and every RoleBinding of the reviewed namespaces, as C(kubectl get
    rolebindings,clusterrolebindings -o wide) shows them; empty when O(checks) leaves out V(bindings).
  returned: always
  type: list
  elements: dict
  sample:
    - {kind: ClusterRoleBinding, namespace: null, name: cluster-admin, role: ClusterRole/cluster-admin,
       subjects: ["Group:system:masters"], builtin: true}
namespaces:
  description: The namespaces reviewed.
  returned: always
  type: list
  elements: str
  sample: [production]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.k8s_access_review import (
    CHECKS,
    DEFAULT_ALLOWED_ADMINS,
    DEFAULT_BASELINE_CLUSTER_ROLES,
    DEFAULT_EXCLUDED_CONFIGMAPS,
    DEFAULT_EXCLUDED_NAMESPACES,
    DEFAULT_EXCLUDED_SECRET_TYPES,
    DEFAULT_SECRET_AGE_EXCLUDED_TYPES,
    DEFAULT_SECRET_MAX_AGE_DAYS,
    run_k8s_access_review,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.k8s_conn import (
    KUBERNETES_IMPORT_ERROR,
    kubernetes_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit


def _strings(default: tuple | None = None, **extra) -> dict:
    spec = dict(type="list", elements="str", **extra)
    if default is not None:
        spec["default"] = list(default)
    return spec


def argument_spec() -> dict:
    spec = kubernetes_argument_spec()
    spec.update(
        namespaces=_strings(),
        exclude_namespaces=_strings(DEFAULT_EXCLUDED_NAMESPACES),
        checks=_strings(CHECKS, choices=list(CHECKS)),
        allowed_admins=_strings(DEFAULT_ALLOWED_ADMINS),
        service_accounts=dict(type="list", elements="dict", options=dict(
            name=dict(type="str", required=True),
            namespaces=_strings(),
            expected=dict(type="list", elements="dict", default=[], options=dict(
                verbs=_strings(required=True),
                api_groups=_strings(("",)),
                resources=_strings(),
                resource_names=_strings(),
                non_resource_urls=_strings(),
            )),
        )),
        baseline_cluster_roles=_strings(DEFAULT_BASELINE_CLUSTER_ROLES),
        require_default_deny=dict(type="bool", default=True),
        # Names of Secret types and an age, not secrets: no_log=False says so to the no-log heuristic.
        secret_max_age_days=dict(type="int", default=DEFAULT_SECRET_MAX_AGE_DAYS, no_log=False),
        exclude_secret_types=_strings(DEFAULT_EXCLUDED_SECRET_TYPES, no_log=False),
        secret_age_exclude_types=_strings(DEFAULT_SECRET_AGE_EXCLUDED_TYPES, no_log=False),
        exclude_configmaps=_strings(DEFAULT_EXCLUDED_CONFIGMAPS),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_k8s_access_review, {"kubernetes": KUBERNETES_IMPORT_ERROR})


if __name__ == "__main__":
    main()
