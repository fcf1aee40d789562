#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_renew
short_description: Renew TLS certificates through ACME when they near expiry and install them without a gap
version_added: 0.1.0
description:
  - "The guides' C(certbot renew) then C(docker-compose restart nginx) (VitalStream) and C(certbot renew --nginx) plus
    replacing the C(stream-systems-tls) Secret (Stream Systems), done safely: only a certificate whose whole days left
    are under O(renew_before_days) is renewed, the others are V(unchanged) records with their days left."
  - "A due certificate is ordered from the ACME server of O(acme) with an http-01 challenge (token files written into
    O(acme.webroot), removed afterwards) with a new private key, for O(certificates[].domains) (default: the DNS
    names of the current certificate)."
  - "File target (nginx): the new key and full chain are written next to the old ones and renamed into place (the old
    contents kept in memory), C(nginx -t) tests the configuration, C(nginx -s reload) reloads it gracefully, then a
    TLS connection to O(nginx.verify.address) with SNI O(nginx.verify.server_name) must show the new serial within
    O(nginx.verify.timeout) seconds. A failed test, reload or proof puts the old files back (and reloads nginx when it
    had been reloaded): the old certificate keeps serving and the record is V(failed) with nginx's message."
  - "Secret target (Kubernetes): C(tls.crt) and C(tls.key) of a C(kubernetes.io/tls) Secret are replaced in ONE update
    carrying the Secret's resourceVersion (never delete and create), with the annotation C(streamops.io/rotated-at);
    the Secret is read back and must hold the new serial. O(certificates[].restart_deployments) are then restarted
    (rollout restart) and waited for."
  - "Ordering, installing, reloading and restarting happen only inside a maintenance window (O(windows)) or with an
    O(emergency) approval: a due certificate with the window closed is a V(skipped) record saying it is due, its days
    left and why it was not renewed. No certificate is ordered that could not be installed."
  - "A certificate that fails (ACME server down or refusing, nginx rejecting, a Secret that cannot be written) is a
    V(failed) record and leaves its old certificate in place; the others are still tried, and the task fails at the
    end with all records."
  - Check mode reads the current certificates and the window and returns the plan (V(planned) with days left against
    the threshold and the window's decision); it makes no ACME call at all.
notes:
  - "ACME client: the PyPI C(acme) library (certbot's own protocol layer) runs in-process. Unlike the certbot CLI it
    needs no command line (so no secret on one), no certbot state directory of its own and no random sleep; an error is
    the server's problem document (for example C(urn:ietf:params:acme:error:rateLimited: ...)), which the record
    quotes with the directory URL."
  - Only the http-01 challenge is supported, so no wildcard names (they need dns-01) and no IP addresses.
  - The ACME account key (O(acme.account_key_path)) is created (RSA 2048, mode 0600) when missing and is never
    printed. The certificate's new private key is RSA 2048; files keep the mode and owner of the files they replace
    (a new key file is 0600, a new certificate 0644).
  - Renewed certificates are from the ACME server of O(acme); the days left are counted on the leaf certificate.
requirements:
  - acme (the Python ACME library, certbot's) >= 2.0
  - cryptography
  - kubernetes (only for Secret targets)
  - python-dateutil (only for rrule O(windows))
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.kubernetes
  - streamops.maintenance.window_guard
attributes:
  check_mode:
    support: full
    details: Returns which certificates would renew and why (days left against the threshold, the window); no ACME call.
  diff_mode:
    support: partial
    details: A real run in diff mode returns the serial, expiry and days left of each renewed certificate before and after.
  idempotent:
    support: full
    details: A renewed certificate is no longer due, so a second run reports it V(unchanged).
options:
  certificates:
    description:
      - The certificates to renew, one record each. Each has exactly one target, files (O(certificates[].cert_path) and
        O(certificates[].key_path)) or a Secret (O(certificates[].secret)).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Label of the certificate in the records (unique).
        type: str
        required: true
      domains:
        description:
          - The names to order the certificate for (the first is the subject). Default is the DNS names of the
            subjectAltName of the current certificate (its common name when it has none).
          - Needed when there is no current certificate yet. Wildcards and IP addresses are refused (http-01 only).
        type: list
        elements: str
      cert_path:
        description: Absolute path of the full chain file nginx serves (C(ssl_certificate)).
        type: path
      key_path:
        description: Absolute path of the private key file (C(ssl_certificate_key)).
        type: path
      secret:
        description: A Kubernetes Secret of type C(kubernetes.io/tls) whose C(tls.crt) and C(tls.key) are replaced.
        type: dict
        suboptions:
          namespace:
            description: Namespace of the Secret.
            type: str
            required: true
          name:
            description: Name of the Secret.
            type: str
            required: true
      restart_deployments:
        description: Deployments of the Secret's namespace restarted (rollout restart) after the Secret is renewed.
        type: list
        elements: str
        default: []
  renew_before_days:
    description: A certificate is renewed when its whole days left are fewer than this (or it has expired).
    type: int
    default: 30
  acme:
    description: The ACME server and account.
    type: dict
    required: true
    suboptions:
      directory_url:
        description: The https URL of the ACME directory, for example V(https://acme-v02.api.letsencrypt.org/directory).
        type: str
        required: true
      ca_bundle:
        description: CA certificates (PEM) to trust for the ACME server's own TLS (a private ACME server); default the system's.
        type: path
      account_key_path:
        description: The account's private key (PEM, RSA). Created with mode 0600 when missing; never printed.
        type: path
        required: true
      email:
        description: Contact address of the account (used when the account is created).
        type: str
      challenge:
        description: The challenge type. Only V(http-01).
        type: str
        default: http-01
        choices: [http-01]
      webroot:
        description:
          - The directory the web server serves at C(/.well-known/acme-challenge/) over plain HTTP on port 80 of each
            name (for nginx, C(location /.well-known/acme-challenge/ { alias <webroot>/; })). Token files are written
            there during an order and removed after.
        type: path
        required: true
      timeout:
        description: Seconds for each request to the ACME server, and for an order's validation and issuance.
        type: int
        default: 90
  nginx:
    description: The nginx that serves the file targets; required when a certificate has O(certificates[].cert_path).
    type: dict
    suboptions:
      binary:
        description: The nginx executable, for an nginx on the host.
        type: str
        default: nginx
      command:
        description:
          - For an nginx in a container (VitalStream's compose project), the argv that runs nginx there, for example
            V([docker, exec, vitalstream-nginx-1, nginx]); C(-t), C(-s reload) and C(-c conf) are appended. Replaces
            O(nginx.binary).
          - The certificate files are then the host's side of the container's bind mount, and O(nginx.conf) is the
            path inside the container.
        type: list
        elements: str
      conf:
        description:
          - The main configuration file (C(nginx -t -c) and C(nginx -s reload -c) use it); with O(nginx.command), as
            the container sees it.
        type: path
        required: true
      verify:
        description: Where the new certificate must be served after the reload.
        type: dict
        default: {}
        suboptions:
          address:
            description: The TLS listener, C(host:port).
            type: str
            default: "127.0.0.1:443"
          server_name:
            description: The SNI name to ask for; default the certificate's first domain.
            type: str
          timeout:
            description: Seconds to wait for the new serial to be served (old workers drain first).
            type: int
            default: 10
  rollout_timeout:
    description: Seconds to wait for the restarted Deployments' rollouts to complete.
    type: int
    default: 300
seealso:
  - module: streamops.maintenance.certificate_expiry
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: VitalStream - renew the nginx certificate in the monthly window (compose host)
  streamops.maintenance.certificate_renew:
    certificates:
      - name: vitalstream-web
        cert_path: /etc/nginx/ssl/vitalstream.crt
        key_path: /etc/nginx/ssl/vitalstream.key
    renew_before_days: 30
    acme:
      directory_url: https://acme-v02.api.letsencrypt.org/directory
      account_key_path: /etc/streamops/acme/account.key
      email: ops@vitalstream.example
      webroot: /var/www/acme-challenge
    nginx:
      conf: /etc/nginx/nginx.conf
      verify: {address: "127.0.0.1:443", server_name: vitalstream.example}
    windows: "{{ maintenance_windows }}"
  register: renewal

- name: Stream Systems - renew the stream-systems-tls Secret and restart its consumers
  streamops.maintenance.certificate_renew:
    certificates:
      - name: stream-systems-tls
        secret: {namespace: production, name: stream-systems-tls}
        domains: [api.stream-systems.example]
        restart_deployments: [stream-systems]
    acme:
      directory_url: https://acme-v02.api.letsencrypt.org/directory
      account_key_path: /etc/streamops/acme/account.key
      webroot: /var/www/acme-challenge
    windows: "{{ maintenance_windows }}"
"""

RETURN = r"""
changed:
  description: Whether a certificate was renewed (or, in check mode, would be).
  returned: always
  type: bool
msg:
  description: How many certificates were renewed, not due, skipped and failed, and why each failure.
  returned: always
  type: str
  sample: "2 certificate(s): 1 renewed (vitalstream-web); 1 not due (stream-systems-tls)"
records:
  description:
    - One record per certificate (action V(renew)), then one per restarted Deployment (action V(restart)).
      See C(docs/records.md) and C(docs/certificates.md).
    - "V(done): renewed and proven served (or held by the Secret); V(planned): check mode, would renew;
      V(unchanged): not due; V(skipped): due but the window is closed; V(failed): not renewed, the old one in place."
    - C(before) and C(after) hold C(serial) (hex), C(not_after), C(days_left), C(domains) and C(target).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: vitalstream-web, action: renew, status: done,
       detail: "renewed (12 days left < renew_before_days 30): nginx at 127.0.0.1:443 (SNI vitalstream.example) serves
                serial 4f2a; expires 2027-03-06T14:00:00Z",
       before: {serial: "1c9e", not_after: "2026-12-18T14:00:00Z", days_left: 12, domains: [vitalstream.example],
                target: "/etc/nginx/ssl/vitalstream.crt (key /etc/nginx/ssl/vitalstream.key)"},
       after: {serial: "4f2a", not_after: "2027-03-06T14:00:00Z", days_left: 90, domains: [vitalstream.example],
               target: "/etc/nginx/ssl/vitalstream.crt (key /etc/nginx/ssl/vitalstream.key)"},
       seconds: 3.2}
    - {name: stream-systems-tls, action: renew, status: skipped,
       detail: "due (12 days left < renew_before_days 30) but not renewed: outside any maintenance window",
       before: {serial: "77aa", not_after: "2026-12-18T14:00:00Z", days_left: 12, domains: [api.stream-systems.example],
                target: "Secret production/stream-systems-tls"}, after: null, seconds: null}
executed:
  description: What was run, in order (ACME orders, nginx commands, Secret updates, rollout restarts); no key material.
  returned: always
  type: list
  elements: str
window:
  description:
    - The maintenance-window decision (the same dict as M(streamops.maintenance.maintenance_window) returns), made
      when a certificate is due; V(null) when none is.
  returned: always
  type: dict
diff:
  description: In diff mode (real run), C(before) and C(after) per renewed certificate (serial, not_after, days_left).
  returned: when diff mode is on and a certificate was renewed
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.acme_order import ACME_IMPORT_ERROR
from ansible_collections.streamops.maintenance.plugins.module_utils.cert_renew import (
    certificate_renew_argument_spec,
    run_certificate_renew,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.k8s_conn import kubernetes_argument_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.window import window_guard_argument_spec


def argument_spec() -> dict:
    spec = certificate_renew_argument_spec()
    spec.update(kubernetes_argument_spec())
    spec.update(window_guard_argument_spec())
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_certificate_renew, {"acme": ACME_IMPORT_ERROR})


if __name__ == "__main__":
    main()
