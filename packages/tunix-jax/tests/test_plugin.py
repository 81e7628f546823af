import subprocess
import sys

from tunix_core.protocols import BackendRegistry, TrainerRegistry
from tunix_jax import plugin


def test_registers_the_jax_trainer_lazily():
    registry = TrainerRegistry()
    plugin.tunix_register_trainers(registry)
    entry = registry.entry("jax")
    assert entry.target == "tunix_jax.sft.trainer:JaxTrainer"
    from tunix_core.protocols import Trainer

    assert isinstance(entry.load()(), Trainer)


def test_registers_the_jax_backend_lazily():
    registry = BackendRegistry()
    plugin.tunix_register_backends(registry)
    entry = registry.entry("jax")
    assert entry.target == "tunix_jax.backend:JaxBackend"
    from tunix_core.protocols import ModelBackend

    backend = entry.load()()
    assert isinstance(backend, ModelBackend) and backend.name == "jax"


def test_loading_the_plugin_and_registration_do_not_import_jax():
    code = (
        "import sys; from tunix_core.protocols import BackendRegistry, TrainerRegistry;"
        "import tunix_jax.plugin as p; p.tunix_register_trainers(TrainerRegistry());"
        "p.tunix_register_backends(BackendRegistry()); import tunix_jax.training.bench;"
        "import tunix_jax.options; import tunix_jax.backend; print('jax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": ":".join(sys.path)})  # fmt: skip
    assert out.stdout.strip() == "False"
