"""The built-in dataset providers. Importing this package imports none of them: the
registry names each lazily, and the optional ones import their extras when loaded."""

from __future__ import annotations

from tunix_core.registry import AnswerCheckRegistry, DatasetRegistry

BUILTIN_DATASETS = (
    ("dev-reasoning-v2", "tunix_core.data.providers.dev_reasoning:DevReasoningV2",
     "Seeded worked problems (arithmetic with the work shown, rates, percentages, strings, "
     "syllogisms, edge cases): ~1000 train / 200 eval"),
    ("golden-v2", "tunix_core.data.providers.golden:GoldenV2",
     "100 tiny fixed sanity items; train and eval are the same items (a can-it-learn check)"),
    ("jsonl", "tunix_core.data.providers.files:JsonlProvider",
     "Your own JSONL file: jsonl:PATH (columns, chat messages, prompt/completion or a "
     "transform; eval_fraction or eval_path in options)"),
    ("hf", "tunix_core.data.providers.files:HfProvider",
     "A local Hugging Face dataset: hf:PATH to parquet/arrow/json/jsonl or a save_to_disk "
     "folder (needs tunix-core[hf])"),
    ("champ", "tunix_core.data.providers.champ:ChampProvider",
     "CHAMP competition mathematics with step-by-step solutions, 270 problems "
     "(needs tunix-core[champ])"),
    ("gsm-symbolic", "tunix_core.data.providers.gsm_symbolic:GsmSymbolicProvider",
     "GSM-Symbolic grade-school word problems from reasoning-gym, with worked solutions "
     "(needs tunix-core[gsm-symbolic])"),
    ("humaneval", "tunix_core.data.providers.humaneval:HumanEvalProvider",
     "OpenAI HumanEval: 164 Python functions to complete, with unit tests for the code-exec "
     "evaluator (needs tunix-core[humaneval])"),
    ("reasoning-gym", "tunix_core.data.providers.reasoning_gym_tasks:ReasoningGymProvider",
     "reasoning-gym:NAME[,NAME...]: any reasoning-gym tasks, generated offline, each judged "
     "by its own scorer (needs tunix-core[reasoning-gym])"),
)  # fmt: skip

# Answer checks that the built-in datasets' items name in meta.answer_match.
BUILTIN_ANSWER_CHECKS = (
    ("code", "tunix_core.data.providers.humaneval:check_code",
     "Python code: the item's entry-point function compared as a syntax tree (code-exec "
     "runs the tests)"),
    ("reasoning-gym", "tunix_core.data.providers.reasoning_gym_tasks:check_reasoning_gym",
     "the item's reasoning-gym task scores the answer (score 1 is correct)"),
)  # fmt: skip


def register_builtin_datasets(registry: DatasetRegistry) -> None:
    """Register every built-in provider (what the core plugin's hook does)."""
    for name, target, description in BUILTIN_DATASETS:
        registry.register(name, target, description=description)


def register_builtin_answer_checks(registry: AnswerCheckRegistry) -> None:
    """Register the answer checks the built-in datasets name (``code``, ``reasoning-gym``)."""
    for name, target, description in BUILTIN_ANSWER_CHECKS:
        registry.register(name, target, description=description)
