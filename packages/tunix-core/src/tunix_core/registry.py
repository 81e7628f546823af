"""The registry machinery that plugins fill through the ``tunix_register_*`` hooks; each
kind's registry (typed by what it holds) is in :mod:`tunix_core.protocols`.

An entry names its implementation lazily as ``"package.module:attribute"`` so that
listing what is installed never imports the heavy libraries behind it (JAX, Flax, ...).
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import attrs

from tunix_core.errors import TunixError

T = TypeVar("T")


class RegistryError(TunixError):
    """A registry lookup or registration that the user can act on."""


class UnknownNameError(RegistryError, LookupError):
    """A name that no installed plugin registered."""


class DuplicateNameError(RegistryError):
    """Two plugins registered the same name."""


@attrs.frozen
class Entry:
    """One registered implementation.

    ``target`` is ``"module:attribute"``; ``distribution`` is the installed distribution
    that registered it (filled in by the plugin manager).
    """

    name: str
    target: str
    description: str = ""
    distribution: str = "unknown"
    extras: dict[str, Any] = attrs.field(factory=dict)

    def load(self) -> Any:
        """Import and return the object behind ``target``."""
        module_name, _, attribute = self.target.partition(":")
        if not module_name or not attribute:
            raise RegistryError(
                f"{self.name!r} from {self.distribution} has target {self.target!r}; "
                "expected 'package.module:attribute'"
            )
        module = importlib.import_module(module_name)
        obj: Any = module
        for part in attribute.split("."):
            obj = getattr(obj, part)
        return obj


class Registry(Generic[T]):
    """Names to lazily imported implementations of one kind (``datasets``, ``trainers``, ...).

    ``kind`` is singular ("trainer") and is used in error messages; ``install_hint``
    says how to get more implementations of this kind. A registry whose names are written
    in configs or data (answer checks, rewards) narrows them with ``name_rule``.
    """

    name_rule: re.Pattern[str] | None = None

    def __init__(self, kind: str, install_hint: str = "") -> None:
        self.kind = kind
        self.install_hint = install_hint
        self._entries: dict[str, Entry] = {}
        self._conflicts: dict[str, list[Entry]] = {}
        # Every registration in order, so a withdrawn one can be undone exactly.
        self._registered: list[Entry] = []

    def register(
        self,
        name: str,
        target: str,
        *,
        description: str = "",
        distribution: str = "unknown",
        **extras: Any,
    ) -> Entry:
        """Register ``name`` -> ``target`` (``"module:attribute"``, imported on first use)
        on behalf of ``distribution``; plugins do it through a :class:`RegistryView`."""
        self.check_name(name, distribution)
        if not isinstance(target, str) or ":" not in target:
            raise RegistryError(
                f"{self.kind} {name!r} from {distribution}: target {target!r} must look like "
                "'package.module:attribute'"
            )
        entry = Entry(name, target, description, distribution, dict(extras))
        self._registered.append(entry)
        self._add(entry)
        return entry

    def check_name(self, name: object, distribution: str) -> None:
        """Raise :class:`RegistryError` unless ``name`` can be registered and looked up:
        a non-empty string without surrounding whitespace or ``:`` (``:`` separates an
        argument, as in ``jsonl:data.jsonl``)."""
        if not isinstance(name, str) or not name or name != name.strip() or ":" in name:
            raise RegistryError(
                f"invalid {self.kind} name {name!r} from {distribution}: a name is a non-empty "
                "string without ':' (it separates an argument) or surrounding whitespace"
            )
        if self.name_rule is not None and not self.name_rule.fullmatch(name):
            raise RegistryError(
                f"invalid {self.kind} name {name!r} from {distribution}: use lowercase "
                "letters, digits, '_' and '-', starting with a letter"
            )

    def withdraw(self, entries: list[Entry]) -> None:
        """Undo these registrations (a plugin that failed half-way), as if never made."""
        gone = {id(entry) for entry in entries}
        kept = [entry for entry in self._registered if id(entry) not in gone]
        self._registered, self._entries, self._conflicts = kept, {}, {}
        for entry in kept:
            self._add(entry)

    def _add(self, entry: Entry) -> None:
        name = entry.name
        previous = self._entries.get(name)
        if previous is None:
            self._entries[name] = entry
        else:
            # Kept, not raised: one bad pair must not break the whole CLI; using the name fails.
            self._conflicts.setdefault(name, [previous]).append(entry)

    def conflicts(self) -> list[str]:
        """One message per name that more than one distribution registered."""
        return [self._duplicate_message(name) for name in sorted(self._conflicts)]

    def _duplicate_message(self, name: str) -> str:
        claims = " and ".join(f"{e.distribution} ({e.target})" for e in self._conflicts[name])
        return (
            f"{self.kind} {name!r} is registered by {claims}; uninstall one or block it "
            "with TUNIX_PLUGINS_BLOCK=<entry point or distribution>"
        )

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: str) -> Entry:
        """The entry for ``name``, or an :class:`UnknownNameError` that lists what is installed."""
        if name in self._conflicts:
            raise DuplicateNameError(self._duplicate_message(name))
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def load(self, name: str) -> T:
        """Import and return the implementation registered as ``name``."""
        loaded: T = self.entry(name).load()
        return loaded

    def unknown_message(self, name: str) -> str:
        installed = ", ".join(self.names()) or "none"
        message = f"Unknown {self.kind} {name!r}. Installed: {installed}."
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.5)
        if close:
            message += f" Did you mean {close[0]!r}?"
        if self.install_hint:
            message += f" {self.install_hint}"
        return message


R = TypeVar("R", bound=Registry[Any])


class RegistryView(Generic[R]):
    """What one plugin's registration hook is handed: ``registry`` as that plugin sees it,
    where everything it registers is attributed to its ``distribution``. Reading goes
    straight to the registry."""

    def __init__(self, registry: R, distribution: str) -> None:
        self.registry = registry
        self.distribution = distribution
        # What this view registered, so the host can withdraw it if the plugin fails.
        self.registered: list[Entry] = []

    def register(self, name: str, target: str, *, description: str = "", **extras: Any) -> None:
        self.registered.append(self.registry.register(
            name, target, description=description, distribution=self.distribution, **extras
        ))  # fmt: skip

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.registry, attribute)

    def __contains__(self, name: object) -> bool:  # dunders bypass __getattr__
        return name in self.registry


# What an item may write in ``meta.answer_match``; a check registered under any other
# name could never be picked.
ANSWER_CHECK_NAME = re.compile(r"[a-z][a-z0-9_-]*")
# Rewards are weighted by name in a config mapping, so names follow the answer checks' shape.
REWARD_NAME = ANSWER_CHECK_NAME
# Transforms are named in ``dataset.options.transform``, so names follow the same shape.
TRANSFORM_NAME = ANSWER_CHECK_NAME
