import subprocess
import sys

from tunix_core.registry import TrainerRegistry
from tunix_jax import plugin


def test_registers_the_jax_trainer_lazily():
    registry = TrainerRegistry()
    plugin.tunix_register_trainers(registry)
    entry = registry.entry("jax")
    assert entry.target == "tunix_jax.trainer:JaxTrainer"
    from tunix_core.protocols import Trainer

    assert isinstance(entry.load()(), Trainer)


def test_loading_the_plugin_and_trainer_registration_do_not_import_jax():
    code = (
        "import sys; from tunix_core.registry import TrainerRegistry; import tunix_jax.plugin as p;"
        "p.tunix_register_trainers(TrainerRegistry()); import tunix_jax.train.bench;"
        "import tunix_jax.train.options; print('jax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": ":".join(sys.path)})  # fmt: skip
    assert out.stdout.strip() == "False"
