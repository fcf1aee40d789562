"""The estates of an inventory, read with Ansible's own inventory and templating.

Values are templated key by key, and the secret ones never: the generator must run without the
vault and never write a password (the credentials it makes point at vault variables instead).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .sources import SourceError

_MISSING = object()


def _trusted(value: Any) -> Any:
    """ansible-core 2.19 templates only text it trusts; YAML the generator loads itself is ours to trust."""
    try:
        from ansible.template import trust_as_template  # noqa: PLC0415 - ansible-core >= 2.19
    except ImportError:
        return value
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, Mapping):
        return {key: _trusted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_trusted(item) for item in value]
    return value


@dataclass(frozen=True)
class Estate:
    name: str
    hosts: tuple[str, ...]
    limit: str  # the host pattern of the estate: its group when one holds exactly its hosts


class InventoryReader:
    """Hosts grouped by their ``estate`` variable, and their variables templated as a play would see them."""

    def __init__(self, path: Path, *, defaults: Mapping[str, Any] | None = None) -> None:
        # Imported here: the rest of the package (and its unit tests) needs no Ansible.
        from ansible.inventory.manager import InventoryManager  # noqa: PLC0415
        from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415
        from ansible.vars.manager import VariableManager  # noqa: PLC0415

        if not Path(path).exists():
            raise SourceError(f"inventory {path} does not exist")
        self.path = Path(path)
        self._loader = DataLoader()
        self._inventory = InventoryManager(loader=self._loader, sources=[str(path)])
        self._variables = VariableManager(loader=self._loader, inventory=self._inventory)
        self._defaults = _trusted(dict(defaults or {}))
        self._host_vars: dict[str, Mapping[str, Any]] = {}

    def render(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """``value`` templated with ``variables``, both text the generator read itself (a playbook's vars)."""
        return self._render(_trusted(value), _trusted(dict(variables)))

    def _render(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """Templated with ``variables`` as they are: the inventory's are Ansible's own, trusted already."""
        from ansible.template import Templar  # noqa: PLC0415

        return Templar(loader=self._loader, variables=dict(variables)).template(value)

    def _vars(self, host: str) -> Mapping[str, Any]:
        if host not in self._host_vars:
            self._host_vars[host] = self._variables.get_vars(host=self._inventory.get_host(host))
        return self._host_vars[host]

    def _context(self, estate: Estate, extra: Mapping[str, Any] | None) -> dict[str, Any]:
        return {**self._defaults, **self._vars(estate.hosts[0]), **_trusted(dict(extra or {}))}

    def estates(self) -> list[Estate]:
        by_estate: dict[str, list[str]] = {}
        for host in sorted(h.name for h in self._inventory.get_hosts()):
            raw = self._vars(host).get("estate")
            if raw is None:
                continue
            by_estate.setdefault(str(self._render(raw, self._vars(host))), []).append(host)
        if not by_estate:
            raise SourceError(f"no host of inventory {self.path} has an estate variable")
        groups = self._inventory.groups
        estates = []
        for name, hosts in sorted(by_estate.items()):
            group = groups.get(name)
            exact = group is not None and sorted(h.name for h in group.get_hosts()) == hosts
            estates.append(Estate(name, tuple(hosts), name if exact else ":".join(hosts)))
        return estates

    def value(self, estate: Estate, name: str, extra: Mapping[str, Any] | None = None, default: Any = _MISSING) -> Any:
        """``name`` templated for the estate's first host, play variables ``extra`` over the inventory's."""
        context = self._context(estate, extra)
        if name not in context:
            if default is _MISSING:
                raise SourceError(f"estate {estate.name}: variable {name} is not defined in {self.path}")
            return default
        try:
            return self._render(context[name], context)
        except Exception as exc:  # noqa: BLE001 - Ansible raises many kinds; the message says which variable
            raise SourceError(f"estate {estate.name}: cannot template {name}: {exc}") from None

    def connection(self, estate: Estate, name: str, *, skip: set[str]) -> dict[str, Any] | None:
        """A connection dict without the keys in ``skip`` (never templated), or None when it is not defined."""
        context = self._context(estate, None)
        raw = context.get(name)
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raw = self.value(estate, name)
            if not isinstance(raw, Mapping):
                raise SourceError(f"estate {estate.name}: {name} must be a dict")
        found = {}
        for key, value in raw.items():
            if key in skip:
                continue
            try:
                found[key] = self._render(value, context)
            except Exception as exc:  # noqa: BLE001 - see value()
                raise SourceError(f"estate {estate.name}: cannot template {name}.{key}: {exc}") from None
        return found


def quiet_ansible() -> None:
    """Files beside an inventory that are not one (inventory/example/vault.yml.example) are not the generator's news.

    Called before Ansible is imported: its configuration is read once, at import.
    """
    os.environ.setdefault("ANSIBLE_INVENTORY_IGNORE", "~, .orig, .bak, .cfg, .retry, .pyc, .pyo, .md, .example")
