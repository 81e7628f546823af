"""Plugin discovery through real ``*.dist-info`` folders on ``sys.path``."""

from pathlib import Path

import pytest

from tunix_core.errors import PluginError
from tunix_core.plugins import build_host
from tunix_core.registry import DuplicateNameError

GOOD = """
from tunix_core.hookspecs import hookimpl

@hookimpl
def tunix_register_datasets(registry):
    registry.register("alpha-data", "alpha_plugin:Provider", description="alpha")

@hookimpl
def tunix_register_evaluators(registry):
    registry.register("alpha-eval", "alpha_plugin:Evaluator")

class Provider:
    description = "alpha"

class Evaluator:
    name = "alpha-eval"
"""


def _info(host, name):
    return next(p for p in host.plugins if p.name == name)


def test_working_plugin_is_loaded_and_attributed(site):
    site("tunix-alpha", "alpha_plugin", GOOD, version="2.3")
    host = build_host()
    info = _info(host, "alpha_plugin")
    assert (info.status, info.distribution, info.version) == ("loaded", "tunix-alpha", "2.3")
    assert info.hooks == ("tunix_register_datasets", "tunix_register_evaluators")
    assert host.datasets.entry("alpha-data").distribution == "tunix-alpha"
    assert host.evaluators.load("alpha-eval").name == "alpha-eval"
    assert host.provides()["tunix-alpha"] == {"datasets": ["alpha-data"], "evaluators": ["alpha-eval"]}


def test_plugin_whose_import_raises_is_skipped_and_recorded(site):
    site("tunix-alpha", "alpha_plugin", GOOD)
    site("tunix-broken", "broken_plugin", "raise RuntimeError('no GPU driver')\n")
    host = build_host()
    failed = _info(host, "broken_plugin")
    assert failed.status == "failed" and failed.distribution == "tunix-broken"
    assert "RuntimeError: no GPU driver" in failed.error
    assert "alpha-data" in host.datasets  # the other plugin still works


def test_strict_mode_turns_a_failed_import_into_an_error(site, monkeypatch):
    site("tunix-broken", "broken_plugin", "import not_a_module_anywhere\n")
    monkeypatch.setenv("TUNIX_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"'broken_plugin' from tunix-broken 1.0 failed to load"):
        build_host()


def test_misspelled_hook_is_rejected(site):
    source = GOOD.replace("def tunix_register_datasets", "def tunix_register_dataset")
    site("tunix-typo", "typo_plugin", source)
    host = build_host()
    info = _info(host, "typo_plugin")
    assert info.status == "failed"
    assert "tunix_register_dataset" in info.error and "unknown hook" in info.error
    assert "alpha-data" not in host.datasets


def test_two_plugins_claiming_one_name_are_reported(site):
    site("tunix-alpha", "alpha_plugin", GOOD)
    site("tunix-beta", "beta_plugin", GOOD.replace("alpha_plugin:", "beta_plugin:"))
    host = build_host()
    with pytest.raises(DuplicateNameError) as info:
        host.datasets.entry("alpha-data")
    assert "tunix-alpha" in str(info.value) and "tunix-beta" in str(info.value)
    assert any("alpha-data" in c for c in host.conflicts())


def test_blocked_plugin_is_not_loaded(site, monkeypatch):
    site("tunix-alpha", "alpha_plugin", GOOD)
    monkeypatch.setenv("TUNIX_PLUGINS_BLOCK", "tunix-alpha")
    host = build_host()
    assert _info(host, "alpha_plugin").status == "blocked"
    assert "alpha-data" not in host.datasets


def test_allow_list_loads_only_the_named_plugins(site, monkeypatch):
    site("tunix-alpha", "alpha_plugin", GOOD)
    monkeypatch.setenv("TUNIX_PLUGINS_ALLOW", "alpha_plugin")
    host = build_host()
    assert _info(host, "alpha_plugin").status == "loaded"
    assert all(p.status == "blocked" for p in host.plugins if p.name != "alpha_plugin")


def test_an_object_pluggy_cannot_hash_is_refused_as_a_plugin(site):
    site("tunix-ns", "ns_plugin", "import types\nplugin = types.SimpleNamespace()\n")
    (Path(site.args[0]) / "tunix_ns-1.0.dist-info" / "entry_points.txt").write_text(
        "[tunix]\nns = ns_plugin:plugin\n"
    )
    info = _info(build_host(), "ns")
    assert info.status == "failed" and "a SimpleNamespace cannot be a plugin" in info.error


def test_a_registration_hook_may_leave_out_its_argument(site):
    source = "from tunix_core.hookspecs import hookimpl\n\n@hookimpl\ndef tunix_register_datasets():\n    CALLED.append(1)\n\nCALLED = []\n"
    site("tunix-quiet", "quiet_plugin", source)
    build_host()
    import quiet_plugin

    assert quiet_plugin.CALLED == [1]  # pluggy passes only the arguments a hook names
