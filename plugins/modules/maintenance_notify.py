#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: maintenance_notify
short_description: Send a maintenance notice by mail (SMTP with STARTTLS) and to webhooks
version_added: 0.1.0
description:
  - Sends one message - a subject, a plain-text body and a JSON O(summary) - to every channel of O(channels);
    mail through an SMTP server (STARTTLS with a verified certificate, optional login), or a JSON C(POST)
    to a webhook.
  - The guides' pre-maintenance notice (48 hours ahead, from a check-mode run) and completion notice;
    the C(streamops.maintenance.notify) role builds both from the run's records and calls this module.
  - Every channel is checked before any is tried; bad input fails the task naming the channel, and nothing is sent.
  - A channel that does not take the message is a V(failed) record; the task does not fail (the maintenance must
    not fail because mail is down) unless O(fail_on_error=true). RV(msg) says which channels got the notice and why
    the others did not.
  - Webhooks are posted directly, never through a proxy named in the environment, and a redirect is not followed
    (a redirected C(POST) would lose its body); it is a failure naming the status.
  - Passwords and header values never show in records, messages or errors; of a webhook URL only the scheme,
    host and port are shown, as its path often is its token.
extends_documentation_fragment:
  - streamops.maintenance.attributes
attributes:
  check_mode:
    support: full
    details:
      - With O(when_check_mode=skip) (the default) nothing is sent in check mode; with V(send) the notice is sent,
        as the 48-hour plan notice is sent from a check-mode run.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A notice changes nothing in the estate, so RV(changed) is always V(false), also when it was sent
        (each run sends its notice again).
options:
  channels:
    description:
      - Where to send the notice. Each channel is a dict with C(name) and C(type), and the keys of its type.
      - A key the channel's type does not use is refused, naming the channel.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The channel's name; the record is named C(<type> <name>).
        type: str
        required: true
      type:
        description: V(smtp) (mail) or V(webhook) (a JSON C(POST) of C(subject), C(text) and C(summary)).
        type: str
        required: true
        choices: [smtp, webhook]
      timeout:
        description: Seconds to wait for the connection and each answer. Default V(10).
        type: float
      validate_certs:
        description: Verify the server's TLS certificate (STARTTLS, C(https)). Default V(true).
        type: bool
      ca_cert:
        description: A CA bundle (PEM) to verify the server's certificate with, instead of the system's.
        type: path
      host:
        description: (smtp) The mail server.
        type: str
      port:
        description: (smtp) Its port. Default V(587) (submission).
        type: int
      from:
        description: (smtp) The sender address.
        type: str
      to:
        description: (smtp) The recipient addresses; a recipient the server refuses makes the channel V(failed).
        type: list
        elements: str
      starttls:
        description:
          - (smtp) Upgrade the connection with STARTTLS before logging in or sending. Default V(true);
            a server that does not offer it is a failure.
          - V(false) with a C(password) is refused as bad input - the password would cross the network in the
            clear; a relay that needs no login may be used without TLS.
        type: bool
      username:
        description: (smtp) The login, with C(password); none for a relay that needs no login.
        type: str
      password:
        description: (smtp) The login's password.
        type: str
      url:
        description: (webhook) The C(http) or C(https) URL to post to.
        type: str
      headers:
        description:
          - (webhook) Extra request headers, for example C(Authorization). Their values are treated as secrets.
        type: dict
  subject:
    description: The notice's subject (the mail's Subject, C(subject) of the webhook body).
    type: str
    required: true
  text:
    description: The notice's plain-text body.
    type: str
    required: true
  summary:
    description: The notice's data, sent as JSON (a mail attachment C(summary.json), C(summary) of the webhook body).
    type: dict
    default: {}
  when_check_mode:
    description:
      - In check mode, V(skip) sends nothing (each channel an V(unchanged) record); V(send) sends the notice.
    type: str
    choices: [send, skip]
    default: skip
  fail_on_error:
    description: Fail the task when any channel did not take the notice (after trying every channel).
    type: bool
    default: false
notes:
  - The C(streamops.maintenance.notify) role and C(docs/notifications.md) show how the 48-hour notice is sent.
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Tell the operators and the chat room that maintenance is complete
  streamops.maintenance.maintenance_notify:
    channels:
      - name: operators
        type: smtp
        host: smtp.example.com
        from: maintenance@example.com
        to: [ops@example.com]
        username: maintenance@example.com
        password: "{{ vault_smtp_password }}"
      - name: chat
        type: webhook
        url: "{{ vault_chat_webhook_url }}"
        headers:
          Authorization: "Bearer {{ vault_chat_token }}"
    subject: "[stream_systems] Maintenance MAINT-2026-0118-020000 completed"
    text: "Weekly maintenance completed: 12 change(s), no issues."
    summary: {status: COMPLETED, changes: 12, issues: 0}
  register: notice

- name: The 48-hour notice is sent from a check-mode run
  streamops.maintenance.maintenance_notify:
    channels: "{{ notify_channels }}"
    subject: "{{ plan.subject }}"
    text: "{{ plan.text }}"
    summary: "{{ plan.summary }}"
    when_check_mode: send
"""

RETURN = r"""
changed:
  description: Always V(false); a notice changes nothing in the estate.
  returned: always
  type: bool
  sample: false
msg:
  description: Which channels got the notice, and which did not and why.
  returned: always
  type: str
  sample: "notice '[stream_systems] Maintenance completed' sent to 1 of 2 channel(s): smtp operators;
    not sent to webhook chat (http://127.0.0.1:8080 answered HTTP 500)"
records:
  description:
    - One record per channel (see C(docs/records.md)), named C(<type> <name>), action V(notify).
    - C(status) V(ok) when the channel took the notice (the mail server accepted every recipient, the webhook answered
      2xx), V(failed) when it did not (the C(detail) says why), V(unchanged) in check mode with O(when_check_mode=skip).
    - C(after) holds, for smtp, C(server), C(recipients), C(starttls), C(login) and C(bytes); for a webhook
      C(origin), C(http_status) and C(bytes).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: smtp operators, action: notify, status: ok,
       detail: "sent to ops@example.com via smtp.example.com:587 (STARTTLS, as maintenance@example.com)",
       before: null, after: {server: "smtp.example.com:587", recipients: [ops@example.com], starttls: true,
                             login: maintenance@example.com, bytes: 2412}, seconds: 0.31}
    - {name: webhook chat, action: notify, status: failed,
       detail: "not sent: https://chat.example.com answered HTTP 500: internal error",
       before: null, after: null, seconds: 0.05}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.notify import notify_argument_spec, run_notify


def main() -> None:
    module = AnsibleModule(argument_spec=notify_argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_notify, {})


if __name__ == "__main__":
    main()
