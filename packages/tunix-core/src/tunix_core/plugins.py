"""The plugin host: loads entry points of group ``tunix`` and fills the registries.

We iterate the entry points ourselves instead of ``load_setuptools_entrypoints`` because
pluggy's loader stops at the first plugin that fails to import; here a broken plugin is
skipped and recorded (or, with ``TUNIX_STRICT_PLUGINS=1``, is an error). A plugin is broken
when its import or one of its registration hooks raises or calls ``sys.exit``; whatever
it registered before failing is withdrawn, so no registry keeps half a plugin. Ctrl-C
(``KeyboardInterrupt``) is never contained.

Environment variables:
  ``TUNIX_STRICT_PLUGINS=1``  a plugin that fails to load is an error
  ``TUNIX_PLUGINS_ALLOW``     comma-separated entry-point or distribution names; only these load
  ``TUNIX_PLUGINS_BLOCK``     comma-separated entry-point or distribution names that never load
"""

from __future__ import annotations

import os
import traceback
import types
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import metadata
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from tunix_core import hookspecs
from tunix_core.errors import ConfigError, PluginError
from tunix_core.protocols import (
    AnswerCheckRegistry,
    BackendRegistry,
    DatasetRegistry,
    EvaluatorRegistry,
    PackagerRegistry,
    RewardRegistry,
    TrainerRegistry,
    TransformRegistry,
)
from tunix_core.registry import Registry, RegistryError, RegistryView

if TYPE_CHECKING:
    from tunix_core.protocols import ModelBackend, ModelSpec

ENTRY_POINT_GROUP = "tunix"
# What a plugin may raise without taking the host down: any error, and sys.exit.
PLUGIN_FAILURES = (Exception, SystemExit)


@attrs.frozen
class PluginInfo:
    """An entry point of group ``tunix`` and what became of it."""

    name: str
    value: str
    distribution: str
    version: str
    status: str  # "loaded", "failed" or "blocked"
    error: str = ""
    hooks: tuple[str, ...] = ()


def _env_names(variable: str) -> set[str]:
    return {part.strip() for part in os.environ.get(variable, "").split(",") if part.strip()}


def _strict() -> bool:
    return os.environ.get("TUNIX_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


class PluginHost:
    """A pluggy manager plus the registries, filled by every loaded plugin."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.datasets = DatasetRegistry()
        self.trainers = TrainerRegistry()
        self.backends = BackendRegistry()
        self.evaluators = EvaluatorRegistry()
        self.packagers = PackagerRegistry()
        self.answer_checks = AnswerCheckRegistry()
        self.rewards = RewardRegistry()
        self.transforms = TransformRegistry()
        self._distribution_of: dict[str, str] = {}

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.status == "failed"]

    def load_entry_points(self) -> None:
        """Import and register every entry point of group ``tunix`` that is allowed."""
        allow, block = _env_names("TUNIX_PLUGINS_ALLOW"), _env_names("TUNIX_PLUGINS_BLOCK")
        seen: set[tuple[str, str]] = set()
        for entry_point in sorted(
            metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, ep.value)
        ):
            dist = entry_point.dist
            dist_name = dist.metadata["Name"] if dist is not None else "unknown"
            version = dist.version if dist is not None else "unknown"
            if (entry_point.name, dist_name) in seen:  # the same dist visible twice on sys.path
                continue
            seen.add((entry_point.name, dist_name))
            info = PluginInfo(entry_point.name, entry_point.value, dist_name, version, "loaded")
            names = {entry_point.name, dist_name}
            if (allow and not names & allow) or names & block:
                self.plugins.append(attrs.evolve(info, status="blocked"))
                continue
            try:
                plugin = entry_point.load()
                self.add_plugin(plugin, entry_point.name, dist_name)
            except PLUGIN_FAILURES as exc:  # a broken third-party plugin must not break the host
                self._record_failure(info, exc)
                continue
            self.plugins.append(attrs.evolve(info, hooks=self._hooks_of(entry_point.name)))

    def add_plugin(self, plugin: Any, name: str, distribution: str) -> None:
        """Register an already imported plugin object (modules from entry points, or tests)."""
        if getattr(type(plugin), "__hash__", None) is None:  # pluggy keeps plugins in sets
            raise PluginError(
                f"plugin {name!r} ({distribution}): a {type(plugin).__name__} cannot be a "
                "plugin; use a module (see plugin_module)"
            )
        self.manager.register(plugin, name=name)
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            self.manager.unregister(name=name)
            raise PluginError(f"plugin {name!r} ({distribution}): {exc}") from exc
        self._distribution_of[name] = distribution

    def _record_failure(self, info: PluginInfo, exc: BaseException, where: str = "") -> None:
        summary = f"{where}{type(exc).__name__}: {exc}".strip()
        if _strict():
            raise PluginError(
                f"plugin {info.name!r} from {info.distribution} {info.version} failed to "
                f"load ({summary}); unset TUNIX_STRICT_PLUGINS to skip it"
            ) from exc
        detail = where + "".join(traceback.format_exception_only(type(exc), exc)).strip()
        self.plugins.append(attrs.evolve(info, status="failed", error=detail, hooks=()))

    def _fail_loaded_plugin(self, plugin_name: str, exc: BaseException, where: str) -> None:
        """A plugin that imported but failed in a hook: record it as failed (strict: raise)
        and unregister it, so none of its other hooks is ever called."""
        info = next((p for p in self.plugins if p.name == plugin_name), None)
        if info is None:  # added with add_plugin, not from an entry point
            distribution = self._distribution_of.get(plugin_name, plugin_name)
            info = PluginInfo(plugin_name, "", distribution, "unknown", "loaded")
        else:
            self.plugins.remove(info)
        if self.manager.get_plugin(plugin_name) is not None:
            self.manager.unregister(name=plugin_name)
        self._record_failure(info, exc, where)

    def _hooks_of(self, name: str) -> tuple[str, ...]:
        plugin = self.manager.get_plugin(name)
        callers = self.manager.get_hookcallers(plugin) or []
        return tuple(sorted(caller.name for caller in callers))

    def registries(self) -> dict[str, Registry[Any]]:
        """Every registry by kind; kind ``x`` is filled by the hook ``tunix_register_x``."""
        return {
            "datasets": self.datasets,
            "trainers": self.trainers,
            "backends": self.backends,
            "evaluators": self.evaluators,
            "packagers": self.packagers,
            "answer_checks": self.answer_checks,
            "rewards": self.rewards,
            "transforms": self.transforms,
        }

    def fill_registries(self) -> None:
        """Call every plugin's registration hooks, attributing names to its distribution.
        A plugin whose hook fails is skipped whole: what its earlier hooks registered is
        withdrawn and it is recorded as failed (with ``TUNIX_STRICT_PLUGINS=1``, an error)."""
        registered: dict[str, list[tuple[Registry[Any], RegistryView[Any]]]] = {}
        for kind, registry in self.registries().items():
            hook_name = f"tunix_register_{kind}"
            for plugin_name, call in self._each_plugin(hook_name):
                view = RegistryView(registry, self._distribution_of.get(plugin_name, plugin_name))
                done = registered.setdefault(plugin_name, [])
                done.append((registry, view))
                try:
                    call(registry=view)
                except PLUGIN_FAILURES as exc:
                    for filled, filled_view in registered.pop(plugin_name):
                        filled.withdraw(filled_view.registered)
                    self._fail_loaded_plugin(plugin_name, exc, f"in {hook_name}: ")

    def conflicts(self) -> list[str]:
        """Names claimed by two distributions, across all registries."""
        registries = self.registries().values()
        return [message for registry in registries for message in registry.conflicts()]

    def _each_plugin(self, hook_name: str) -> Iterator[tuple[str, Any]]:
        """(plugin name, a pluggy caller of ``hook_name`` that reaches only that plugin), in
        pluggy's call order: each plugin gets its own arguments and its own failure."""
        impls = list(reversed(getattr(self.manager.hook, hook_name).get_hookimpls()))
        for impl in impls:
            others = [other.plugin for other in impls if other is not impl]
            yield impl.plugin_name, self.manager.subset_hook_caller(hook_name, others)

    def register_commands(self, cli: Any) -> None:
        """Let every plugin add its click commands to ``cli``; a plugin whose commands fail
        to load is recorded like one that failed to import, and the commands it added
        before failing are removed."""
        for plugin_name, call in self._each_plugin("tunix_register_commands"):
            commands = dict(cli.commands)
            lazy_commands = dict(getattr(cli, "lazy_commands", {}))
            huge_page_commands = set(getattr(cli, "huge_page_commands", ()))
            try:
                call(cli=cli)
            except PLUGIN_FAILURES as exc:
                cli.commands = commands
                if hasattr(cli, "lazy_commands"):
                    cli.lazy_commands = lazy_commands
                    cli.huge_page_commands = huge_page_commands
                self._fail_loaded_plugin(plugin_name, exc, "in tunix_register_commands: ")

    def provides(self) -> dict[str, dict[str, list[str]]]:
        """distribution -> registry kind -> names it registered."""
        result: dict[str, dict[str, list[str]]] = {}
        for kind, registry in self.registries().items():
            for entry in registry.entries():
                result.setdefault(entry.distribution, {}).setdefault(kind, []).append(entry.name)
        return result


def plugin_module(name: str, **hooks: Any) -> types.ModuleType:
    """A plugin made of loose hook functions (a notebook's or a test's), as a module."""
    module = types.ModuleType(name)
    vars(module).update(hooks)
    return module


def build_host() -> PluginHost:
    """A host with every installed plugin loaded and the registries filled."""
    host = PluginHost()
    host.load_entry_points()
    host.fill_registries()
    if _strict() and host.conflicts():
        raise PluginError("; ".join(host.conflicts()))
    return host


@cache
def get_host() -> PluginHost:
    """The process-wide plugin host, built on first use."""
    return build_host()


def backend_for(host: PluginHost, name: str, field: str) -> ModelBackend:
    """A fresh instance of the backend ``name``; an unknown one is a ConfigError naming
    ``field`` (a config field or a command-line flag) and listing the installed ones."""
    try:
        backend: ModelBackend = host.backends.load(name)()
    except RegistryError as exc:
        raise ConfigError(f"{field}: {exc}") from None
    return backend


def validate_spec(backend: ModelBackend, spec: ModelSpec, flag_of_field: Mapping[str, str]) -> None:
    """``backend.validate(spec)`` for a command whose flags set the spec: an error about a
    ``model.*`` field names the flag instead (``model.weights: ...`` -> ``--weights: ...``)."""
    try:
        backend.validate(spec)
    except ConfigError as exc:
        message = str(exc)
        for field, flag in flag_of_field.items():
            if message.startswith(f"{field}:"):
                message = flag + message.removeprefix(field)
        raise ConfigError(message) from None
