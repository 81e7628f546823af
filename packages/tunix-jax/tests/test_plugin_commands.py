"""tunix-jax's commands are lazy, and ``bench`` asks for huge pages (it runs a model)."""

from tunix_core.command_group import TunixGroup
from tunix_jax import plugin


def test_bench_wants_huge_pages_and_export_does_not():
    group = TunixGroup("tunix")
    plugin.tunix_register_commands(cli=group)
    assert set(group.lazy_commands) == {"bench", "export"}
    assert group.huge_page_commands == {"bench"}
