"""maintenance_notify's pure parts: channel checking (every refusal names the channel, never a secret), the mail
built, redaction. Sending is tested against real servers in tests/integration/test_notify.py."""
from __future__ import annotations

import json

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils import notify
from ansible_collections.streamops.maintenance.plugins.module_utils.notify import NotifyError, parse_channel, run_notify

MAIL = {"name": "ops", "type": "smtp", "host": "127.0.0.1", "from": "m@lab.test", "to": ["ops@lab.test"],
        "username": "m@lab.test", "password": "s3cret-pass"}
HOOK = {"name": "chat", "type": "webhook", "url": "https://127.0.0.1:8443/hooks/T0/B0/tok", "headers": {"X-Token": "abc123"}}


def with_nones(channel: dict) -> dict:
    """As Ansible passes a channel: every suboption present, None when not set."""
    return {**{key: None for key in notify.channel_suboptions()}, **channel}


def test_defaults_of_each_type():
    mail = parse_channel(with_nones(MAIL), 1)
    assert (mail["port"], mail["starttls"], mail["validate_certs"], mail["timeout"]) == (587, True, True, 10.0)
    hook = parse_channel(with_nones(HOOK), 2)
    assert hook["headers"] == {"X-Token": "abc123"} and hook["validate_certs"]


@pytest.mark.parametrize(("channel", "message"), [
    ({**MAIL, "starttls": False}, "channel 'ops': refusing to log in without TLS"),
    ({**MAIL, "password": None}, "channel 'ops': username and password go together"),
    ({**MAIL, "to": []}, "channel 'ops': to must list at least one mail address"),
    ({**MAIL, "to": ["ops"]}, "channel 'ops': to 'ops' is not a mail address"),
    ({**MAIL, "from": "nobody"}, "channel 'ops': from 'nobody' must be a mail address"),
    ({**MAIL, "host": " "}, "channel 'ops': host is required"),
    ({**MAIL, "port": 70000}, "channel 'ops': port 70000 is not a TCP port"),
    ({**MAIL, "url": "http://x"}, "channel 'ops': key(s) url are not used by a smtp channel"),
    ({**MAIL, "timeout": 0}, "channel 'ops': timeout must be above 0"),
    ({**MAIL, "ca_cert": "/nonexistent/ca.pem"}, "channel 'ops': ca_cert /nonexistent/ca.pem is not a file"),
    ({**HOOK, "url": "ftp://127.0.0.1/x"}, "channel 'chat': url must be an http(s) URL with a host (got scheme 'ftp')"),
    ({**HOOK, "headers": {"X-On": True}}, "channel 'chat': headers must map header names to text values"),
    ({**HOOK, "to": ["a@b"]}, "channel 'chat': key(s) to are not used by a webhook channel"),
    ({**HOOK, "name": ""}, "channels[3]: name is required"),
    ({**HOOK, "type": "pager"}, "channel 'chat': type 'pager' is not one of smtp, webhook"),
])
def test_bad_channels_are_refused_naming_them(channel, message):
    with pytest.raises(NotifyError) as raised:
        parse_channel(with_nones(channel), 3)
    assert raised.value.msg.startswith(message), raised.value.msg
    assert "s3cret-pass" not in raised.value.msg and "B0/tok" not in raised.value.msg


def test_a_relay_without_login_may_go_without_tls():
    channel = parse_channel(with_nones({**MAIL, "starttls": False, "username": None, "password": None}), 1)
    assert channel["starttls"] is False and channel["password"] is None


def test_every_channel_is_checked_before_any_is_tried():
    good, bad = with_nones(MAIL), with_nones({**HOOK, "url": "nope"})
    with pytest.raises(NotifyError, match="channel 'chat'"):
        run_notify({"channels": [good, bad], "subject": "s", "text": "t", "summary": {}})
    with pytest.raises(NotifyError, match="two smtp channels have this name"):
        notify.parse_channels([good, good])
    with pytest.raises(NotifyError, match="channels is empty"):
        notify.parse_channels([])


def test_check_mode_with_skip_sends_nothing_and_says_so():
    result = run_notify({"channels": [with_nones(MAIL), with_nones(HOOK)], "subject": "plan", "text": "t",
                         "summary": {}, "when_check_mode": "skip"}, check_mode=True)
    assert [(r["name"], r["status"]) for r in result["records"]] == [
        ("smtp ops", "unchanged"), ("webhook chat", "unchanged")]
    assert result["changed"] is False and "not sent to 2 channel(s)" in result["msg"]


def test_the_mail_is_text_with_the_summary_attached():
    channel = parse_channel(with_nones(MAIL), 1)
    message = notify.build_mail(channel, "Subject line", "Body\n", {"status": "COMPLETED", "n": 2})
    assert message["Subject"] == "Subject line" and message["To"] == "ops@lab.test"
    assert message.get_body(("plain",)).get_content() == "Body\n"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/json"
    assert json.loads(attachment.get_content()) == {"status": "COMPLETED", "n": 2}


def test_secrets_are_masked_and_a_url_shows_only_its_origin():
    hook = parse_channel(with_nones({**HOOK, "url": "https://user:pa55word@hooks.test:8443/T0/B0/tok?x=1"}), 1)
    assert notify.url_origin(hook["url"]) == "https://hooks.test:8443"
    text = notify.redact("answer echoed abc123 and pa55word", notify.secrets_of(hook))
    assert text == "answer echoed ******** and ********"
    # one or two characters are no secret: masking them would garble every message
    short = parse_channel(with_nones({**HOOK, "headers": {"X-Retry": "1"}}), 1)
    assert notify.redact("HTTP 1.1 answer", notify.secrets_of(short)) == "HTTP 1.1 answer"
