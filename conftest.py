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
