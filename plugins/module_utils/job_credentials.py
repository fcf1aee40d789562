# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The connections that AWX/Tower credentials carry into a job, defined once.

Each service's credential type is generated from the table below (its input fields and its
injectors), and the ``job_credentials`` lookup reads the same table back on the controller to
overlay what the credential injected onto the inventory's connection dict. Secrets travel only in
the environment of the job (and a CA certificate in a file AWX writes), never in extra vars: AWX
keeps extra vars with the job and shows them to everyone who may read it.

The environment is read on the controller (inside the execution environment), so the connection
reaches modules on any host, local or over SSH, as module arguments marked ``no_log``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import MaintenanceError

PGSSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
S3_ENCRYPTIONS = ("AES256", "aws:kms")


class CredentialError(MaintenanceError):
    """A credential attached to the job does not fit this host, or one of its values is invalid."""


@dataclass(frozen=True)
class CredentialField:
    """One input of a credential type, the environment variable it is injected as, and the option it sets."""

    id: str
    label: str
    option: str
    help_text: str
    secret: bool = False
    boolean: bool = False
    integer: bool = False
    file: bool = False  # the text is written to a file by AWX; the option gets the file's path
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConnectionCredential:
    """A credential type: which connection variable it fills, and from which fields."""

    key: str  # short name; also the lookup's term
    title: str
    variable: str
    env_prefix: str
    fields: tuple[CredentialField, ...]
    required: tuple[str, ...]
    description: str

    @property
    def name(self) -> str:
        """The credential type's name in AWX."""
        return f"streamops {self.title}"

    @property
    def marker(self) -> str:
        """An environment variable whose presence says this credential is attached to the job."""
        return f"{self.env_prefix}_CREDENTIAL"

    def env_name(self, field: CredentialField) -> str:
        return f"{self.env_prefix}_{field.id.upper()}"

    def file_label(self, field: CredentialField) -> str:
        return f"{self.key}_{field.id}"


_ESTATE = CredentialField(
    "estate", "Estate", "estate", "The estate this credential belongs to (the hosts' variable estate). A job refuses to use it "
    "on a host of another estate. Empty: any estate.")


def _postgres_fields(*, database: bool) -> tuple[CredentialField, ...]:
    fields = [
        _ESTATE,
        CredentialField("host", "Host", "login_host", "Host name or address of the PostgreSQL server."),
        CredentialField("port", "Port", "login_port", "Port of the server (5432 when empty).", integer=True),
        CredentialField("username", "Role", "login_user", "Role to connect as."),
        CredentialField("password", "Password", "login_password", "Password of the role.", secret=True),
        CredentialField("sslmode", "SSL mode", "sslmode", "libpq SSL mode; verify-full in production.",
                        choices=PGSSLMODES),
        CredentialField("ca_cert", "CA certificate (PEM)", "ca_cert",
                        "CA certificate the server's certificate must verify against (verify-ca, verify-full).",
                        file=True),
    ]
    if database:
        fields.insert(3, CredentialField("database", "Database", "database", "Database of the estate."))
    return tuple(fields)


CREDENTIALS: tuple[ConnectionCredential, ...] = (
    ConnectionCredential(
        key="postgres", title="PostgreSQL", variable="postgres_login", env_prefix="STREAMOPS_POSTGRES",
        fields=_postgres_fields(database=True), required=("host", "username", "password", "database"),
        description="The estate's PostgreSQL connection (postgres_login): maintenance, backups, health checks."),
    ConnectionCredential(
        key="restore_test", title="PostgreSQL restore-test server", variable="backup_verify_login",
        env_prefix="STREAMOPS_RESTORE_TEST",
        fields=_postgres_fields(database=False), required=("host", "username", "password"),
        description="The server and role (allowed to CREATE DATABASE) where backup_verify restores a set into a "
                    "scratch database (backup_verify_login)."),
    ConnectionCredential(
        key="redis", title="Redis", variable="redis_login", env_prefix="STREAMOPS_REDIS",
        fields=(
            _ESTATE,
            CredentialField("host", "Host", "login_host", "Host name or address of the Redis server."),
            CredentialField("port", "Port", "login_port", "Port of the server (6379 when empty).", integer=True),
            CredentialField("db", "Database number", "db", "Database number of the estate's keys.", integer=True),
            CredentialField("username", "ACL user", "login_user", "ACL user (Redis 6+); empty for the default user."),
            CredentialField("password", "Password", "login_password", "Password of the user (or requirepass).",
                            secret=True),
            CredentialField("tls", "TLS", "tls", "Connect with TLS.", boolean=True),
            CredentialField("ca_cert", "CA certificate (PEM)", "ca_certs", "CA certificate for TLS.", file=True),
        ),
        required=("host",),
        description="The estate's Redis connection (redis_login)."),
    ConnectionCredential(
        key="s3", title="S3 backups", variable="s3_login", env_prefix="STREAMOPS_S3",
        fields=(
            _ESTATE,
            CredentialField("bucket", "Bucket", "bucket", "Bucket the backup sets go to."),
            CredentialField("prefix", "Key prefix", "prefix", "Key prefix of this estate's sets, no leading or "
                            "trailing /."),
            CredentialField("endpoint_url", "Endpoint URL", "endpoint_url",
                            "URL of an S3-compatible endpoint; empty for AWS."),
            CredentialField("region", "Region", "region", "Region of the bucket."),
            CredentialField("access_key", "Access key id", "access_key", "Access key id."),
            CredentialField("secret_key", "Secret access key", "secret_key", "Secret access key.", secret=True),
            CredentialField("server_side_encryption", "Server-side encryption", "server_side_encryption",
                            "Encryption at rest of the uploaded objects.", choices=S3_ENCRYPTIONS),
        ),
        required=("bucket", "access_key", "secret_key"),
        description="Where the estate's backup sets are kept in S3 (s3_login)."),
)


def credential(key: str) -> ConnectionCredential:
    for one in CREDENTIALS:
        if one.key == key:
            return one
    raise CredentialError(msg=f"unknown credential {key!r}; known: {', '.join(c.key for c in CREDENTIALS)}")


# --------------------------------------------------------------------------- AWX credential types


def credential_type(cred: ConnectionCredential) -> dict[str, Any]:
    """The AWX credential type (name, kind, inputs, injectors) of one connection.

    Injector values are AWX templates (AWX renders them with the credential's inputs); whoever loads
    them through Ansible must keep Ansible from templating them first (``!unsafe``).
    """
    fields = []
    env: dict[str, str] = {cred.marker: cred.name}
    files: dict[str, str] = {}
    for field in cred.fields:
        entry: dict[str, Any] = {"id": field.id, "label": field.label, "type": "boolean" if field.boolean else "string",
                                 "help_text": field.help_text}
        if field.secret:
            entry["secret"] = True
        if field.file:
            entry["multiline"] = True
        if field.choices:
            entry["choices"] = list(field.choices)
        fields.append(entry)
        if field.file:
            label = cred.file_label(field)
            files[f"template.{label}"] = "{{ %s }}" % field.id
            # The path only when a certificate was given: an empty file would not verify anything.
            env[cred.env_name(field)] = "{%% if %s %%}{{ tower.filename.%s }}{%% endif %%}" % (field.id, label)
        elif field.boolean:
            # AWX renders an unticked box as false: that must not switch off TLS the inventory asks for.
            env[cred.env_name(field)] = "{%% if %s %%}true{%% endif %%}" % field.id
        else:
            env[cred.env_name(field)] = "{{ %s }}" % field.id
    injectors: dict[str, Any] = {"env": env}
    if files:
        injectors["file"] = files
    return {
        "name": cred.name,
        "description": cred.description,
        "kind": "cloud",  # the kind AWX gives custom credential types that jobs may use
        "inputs": {"fields": fields, "required": list(cred.required)},
        "injectors": injectors,
    }


# --------------------------------------------------------------------------- the controller side


def _field_value(cred: ConnectionCredential, field: CredentialField, text: str) -> Any:
    name = cred.env_name(field)
    if field.integer:
        try:
            return int(text)
        except ValueError:
            raise CredentialError(msg=f"the {field.label.lower()} of the {cred.title} credential ({name}) must be a "
                                      f"whole number, got {text!r}") from None
    if field.boolean:
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise CredentialError(msg=f"{name} must be true or false, got {text!r}")
        return lowered in ("true", "1", "yes")
    if field.choices and text not in field.choices:
        raise CredentialError(msg=f"the {field.label.lower()} of the {cred.title} credential ({name}) must be one of "
                                  f"{', '.join(field.choices)}, got {text!r}")
    if field.file:
        try:
            if not os.path.getsize(text):
                return None  # an empty certificate field: keep the inventory's
        except OSError as exc:
            raise CredentialError(msg=f"the {field.label} of the {cred.title} credential ({name}={text}) cannot be "
                                      f"read on the controller: {exc.strerror}") from None
    return text


def injected_values(cred: ConnectionCredential, environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The options one credential sets (None when it is not attached), its ``estate`` included."""
    if cred.marker not in environ:
        return None
    values: dict[str, Any] = {}
    for field in cred.fields:
        text = environ.get(cred.env_name(field), "")
        if text == "":
            continue
        value = _field_value(cred, field, text)
        if value is not None:
            values[field.option] = value
    return values


def check_estate(cred: ConnectionCredential, credential_estate: Any, host_estate: Any) -> None:
    if credential_estate and host_estate and str(credential_estate) != str(host_estate):
        raise CredentialError(
            msg=f"the {cred.title} credential attached to this job is for estate {credential_estate!r}, but this host "
                f"is in estate {host_estate!r}: attach that estate's credential, or limit the job to estate "
                f"{credential_estate!r}")


def overlay_connections(environ: Mapping[str, str], current: Callable[[str, tuple[str, ...]], dict[str, Any]],
                        host_estate: Any = None) -> list[dict[str, Any]]:
    """``[{variable, connection}]`` for each credential attached to the job, in the table's order.

    ``current(variable, overridden)`` gives the inventory's connection dict for ``variable``
    without the keys the credential overrides (so an inventory that leaves the secret to the
    credential need not define it); the credential's values win key by key.
    """
    found = []
    for cred in CREDENTIALS:
        values = injected_values(cred, environ)
        if values is None:
            continue
        check_estate(cred, values.pop("estate", None), host_estate)
        connection = dict(current(cred.variable, tuple(values)))
        connection.update(values)
        found.append({"variable": cred.variable, "connection": connection})
    return found
