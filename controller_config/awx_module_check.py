"""Run awx.awx modules on given parameters without a controller (a separate interpreter; see validate.py).

stdin: {"host": "https://127.0.0.1:<closed port>", "objects": [[module, params], ...]}
stdout: one verdict per object: null when the module accepted its parameters (it then fails to
reach the closed port), else the module's message.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import sys

from ansible.module_utils.testing import patch_module_args

# Not a secret: the modules need some login to get as far as the (refused) connection.
LOGIN = {"controller_username": "offline-validation", "controller_password": "offline-validation"}


def verdict(module: str, params: dict, host: str) -> str | None:
    code = importlib.import_module(f"ansible_collections.awx.awx.plugins.modules.{module}")
    out = io.StringIO()
    with patch_module_args({**params, **LOGIN, "controller_host": host}), contextlib.redirect_stdout(out):
        try:
            code.main()
        except SystemExit:
            pass
    try:
        result = json.loads(out.getvalue())
    except ValueError:
        return f"printed no result: {out.getvalue()[:500]!r}"
    message = str(result.get("msg", ""))
    return None if "Connection refused" in message else message or json.dumps(result)[:500]


def main() -> None:
    request = json.load(sys.stdin)
    json.dump([verdict(module, params, request["host"]) for module, params in request["objects"]], sys.stdout)


if __name__ == "__main__":
    main()
