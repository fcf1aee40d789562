#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_expiry
short_description: Days left before X.509 certificates expire, from files or PEM texts
version_added: 0.1.0
description:
  - Reads certificates from files on the target (PEM, a PEM bundle, or DER) and from PEM texts given
    with a name (for example the C(tls.crt) of a Kubernetes TLS secret), and returns for each its
    subject, issuer, validity dates and whole days left.
  - For a bundle (a leaf with its chain) the certificate that expires first is reported, which is
    the leaf unless a chain certificate expires sooner.
  - Each certificate with fewer than O(min_days) days left is a breach. The module reports breaches;
    it fails on them only with O(fail_on_breach=true).
  - A file that is missing, unreadable or holds no certificate fails the task with a message naming
    it, after every other certificate was read (the result keeps all records).
extends_documentation_fragment:
  - streamops.maintenance.attributes
attributes:
  check_mode:
    support: full
    details:
      - Only reads; check mode runs exactly like a normal run.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Never changes anything; days left depend on the time of the run.
options:
  paths:
    description:
      - Certificate files on the target. Each is named by its path in the result.
    type: list
    elements: path
    default: []
  texts:
    description:
      - PEM texts, each with the name it is reported under.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the certificate in the result, for example V(secret stream-systems/api-tls).
        type: str
        required: true
      pem:
        description:
          - The PEM text. Blocks other than C(CERTIFICATE) (a private key of a bundle) are ignored.
          - Not logged.
        type: str
        required: true
  min_days:
    description:
      - A certificate with fewer whole days left than this is a breach (V(0) flags only expired ones).
    type: int
    default: 0
  fail_on_breach:
    description: Fail the task when any certificate breaches O(min_days) (after all were read).
    type: bool
    default: false
requirements:
  - cryptography (on the target; ansible-core already depends on it)
notes:
  - Days left are whole days rounded down, from the target's clock in UTC; C(13.9) days is V(13).
seealso:
  - module: community.crypto.x509_certificate_info
    description: Every field of one certificate, when more than its expiry is needed.
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Days left of the nginx certificates, 14 days warning
  streamops.maintenance.certificate_expiry:
    paths:
      - /etc/nginx/ssl/vitalstream.crt
      - /etc/nginx/ssl/vitalstream-chain.pem
    min_days: 14
  register: certs

- name: The tls.crt of a Kubernetes TLS secret, failing under 30 days
  streamops.maintenance.certificate_expiry:
    texts:
      - name: secret stream-systems/stream-api-tls
        pem: "{{ secret_tls_crt_base64 | b64decode }}"
    min_days: 30
    fail_on_breach: true
"""

RETURN = r"""
changed:
  description: Always V(false).
  returned: always
  type: bool
  sample: false
msg:
  description: How many certificates, the breaches with their days left, and what could not be read.
  returned: always
  type: str
  sample: "2 certificate(s); 1 under 14 days: /etc/nginx/ssl/vitalstream.crt (9)"
records:
  description:
    - One record per path and text, in the order given (paths first), as every module of the collection returns
      them (see C(docs/records.md)); action V(expiry).
    - C(status) is V(ok), V(breach) (under O(min_days) or expired) or V(failed) (could not be read); C(detail) has
      the days left, the date and the limit, or why it could not be read.
    - C(after) holds C(source) (V(file) or V(text)), C(subject) and C(issuer) (RFC 4514), C(serial) (hexadecimal),
      C(not_before) and C(not_after) (ISO 8601 UTC), C(days_left) (whole days, negative once expired),
      C(certificates) (how many the file or text holds) and C(position) (the one reported; V(0) is the leaf).
  returned: always
  type: list
  elements: dict
  sample:
    - name: /etc/nginx/ssl/vitalstream.crt
      action: expiry
      status: breach
      detail: 9 days left, until 2026-04-01T00:00:00Z (limit 14)
      before: null
      after:
        source: file
        subject: CN=vitalstream.example.com
        issuer: CN=Example CA
        serial: 1f3a
        not_before: "2026-01-01T00:00:00Z"
        not_after: "2026-04-01T00:00:00Z"
        days_left: 9
        certificates: 1
        position: 0
      seconds: null
breaches:
  description: Names of the certificates under O(min_days).
  returned: always
  type: list
  elements: str
  sample: [/etc/nginx/ssl/vitalstream.crt]
executed:
  description: Always empty; nothing is run.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.certs import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    certificate_expiry_argument_spec,
    run_certificate_expiry,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit


def main() -> None:
    module = AnsibleModule(argument_spec=certificate_expiry_argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_certificate_expiry, {"cryptography": CRYPTOGRAPHY_IMPORT_ERROR})


if __name__ == "__main__":
    main()
