"""The built-in dataset providers. Importing this package imports none of them: the
registry names each lazily, and the optional ones import their extras when loaded."""

from __future__ import annotations

from tunix_core.protocols import AnswerCheckRegistry, DatasetRegistry

BUILTIN_DATASETS = (
    ("dev-reasoning-v2", "tunix_datasets.providers.dev_reasoning:DevReasoningV2",
     "Seeded worked problems (arithmetic with the work shown, rates, percentages, strings, "
     "syllogisms, edge cases): 1000 train / 200 eval / 322 ood"),
    ("dev-reasoning-v3", "tunix_datasets.providers.dev_reasoning_v3:DevReasoningV3",
     "dev-reasoning-v2's problems with steps a small model can follow: digit-by-digit "
     "arithmetic with carries and borrows, letters spelled one by one: 1000 train / 200 eval "
     "/ 322 ood"),
    ("judging-mix", "tunix_datasets.providers.judging_mix:JudgingMix",
     "142 held-out prompts in the competition's domains (creative writing, ideation, "
     "summarisation, math, science, coding, other): answers or rubrics, eval only"),
    ("golden-v2", "tunix_datasets.providers.golden:GoldenV2",
     "100 tiny fixed sanity items; train and eval are the same items (a can-it-learn check)"),
    ("jsonl", "tunix_datasets.providers.files:JsonlProvider",
     "Your own JSONL file: jsonl:PATH (columns, chat messages, prompt/completion or a "
     "transform; eval_fraction or eval_path in options)"),
    ("hf", "tunix_datasets.providers.files:HfProvider",
     "A local Hugging Face dataset: hf:PATH to parquet/arrow/json/jsonl or a save_to_disk "
     "folder (needs tunix-datasets[hf])"),
    ("champ", "tunix_datasets.providers.champ:ChampProvider",
     "CHAMP competition mathematics with step-by-step solutions, 270 problems "
     "(needs tunix-datasets[champ])"),
    ("gsm-symbolic", "tunix_datasets.providers.gsm_symbolic:GsmSymbolicProvider",
     "GSM-Symbolic grade-school word problems from reasoning-gym, with worked solutions "
     "(needs tunix-datasets[gsm-symbolic])"),
    ("humaneval", "tunix_datasets.providers.humaneval:HumanEvalProvider",
     "OpenAI HumanEval: 164 Python functions to complete, with unit tests for the code-exec "
     "evaluator (needs tunix-datasets[humaneval])"),
    ("reasoning-gym", "tunix_datasets.providers.reasoning_gym_tasks:ReasoningGymProvider",
     "reasoning-gym:NAME[,NAME...]: any reasoning-gym tasks, generated offline, each judged "
     "by its own scorer (needs tunix-datasets[reasoning-gym])"),
)  # fmt: skip

# Answer checks that the built-in datasets' items name in meta.answer_match.
BUILTIN_ANSWER_CHECKS = (
    ("code", "tunix_datasets.providers.humaneval:check_code",
     "Python code: the item's entry-point function compared as a syntax tree (code-exec "
     "runs the tests)"),
    ("reasoning-gym", "tunix_datasets.providers.reasoning_gym_tasks:check_reasoning_gym",
     "the item's reasoning-gym task scores the answer (score 1 is correct)"),
    ("rubric", "tunix_datasets.providers.judging_mix:check_rubric",
     "an open item judged by its rubric: never correct by string match (needs a judge)"),
)  # fmt: skip


def register_builtin_datasets(registry: DatasetRegistry) -> None:
    """Register every built-in provider (what the plugin's hook does)."""
    for name, target, description in BUILTIN_DATASETS:
        registry.register(name, target, description=description)


def register_builtin_answer_checks(registry: AnswerCheckRegistry) -> None:
    """Register the answer checks the built-in datasets name (``code``, ``reasoning-gym``, ``rubric``)."""
    for name, target, description in BUILTIN_ANSWER_CHECKS:
        registry.register(name, target, description=description)
