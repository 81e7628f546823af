"""Settings every test process shares: CPU JAX, no hub access, heavy tests opt-in."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Converted tokenizers are cached between processes; tests keep theirs out of ~/.cache.
if "TUNIX_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["TUNIX_CACHE_DIR"] = tempfile.mkdtemp(prefix="tunix-test-cache-")


import pytest


@pytest.fixture(autouse=True)
def _own_baseline_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test gets an empty baseline cache (tunix_core.baseline_cache): a baseline one
    test measured must not turn into another's cache hit."""
    monkeypatch.setenv("TUNIX_BASELINE_CACHE_DIR", str(tmp_path_factory.mktemp("baselines")))
