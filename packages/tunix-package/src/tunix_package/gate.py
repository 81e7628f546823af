"""``tunix gate RUN``: the judges' path. The run's exported ``model/params`` are loaded
with google-tunix's ``create_model_from_checkpoint`` (bfloat16, its default) and sampled
greedily with google-tunix's own ``Sampler`` on a fixed small set of prompts: the first
items of the run's eval data and of the ``judging-mix`` suite. The report,
``judges_path.json`` in the run directory, holds the format rate through that code, the
share of answers that agree with the run's own sampler, the longest output and whether
the format rate reached the threshold. Validation fails a bundle whose report did not.

Where google-tunix is not installed (or the run's backend cannot sample through it) the
gate says plainly that it did not run and writes that too (``ran: false``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import zip_longest
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tunix_core.config import load_run_config
from tunix_core.data.loading import load_split
from tunix_core.data.parse import parse_completion
from tunix_core.data.record import ReasoningExample, read_jsonl
from tunix_core.data.render import render_prompt
from tunix_core.errors import ConfigError
from tunix_core.jsonio import write_json_atomic
from tunix_core.protocols import Host, ModelSpec
from tunix_core.registry import UnknownNameError
from tunix_core.rundir import RunDirectory

GATE_FILE = "judges_path.json"
DEFAULT_THRESHOLD = 0.9
DEFAULT_ITEMS = 4  # from each source: the run's eval data and judging-mix
DEFAULT_MAX_NEW_TOKENS = 256
JUDGING_MIX = "judging-mix"


@runtime_checkable
class GoogleTunixSampling(Protocol):
    """A model backend that can sample an export through google-tunix (tunix-jax's)."""

    def sample_with_google_tunix(
        self, directory: Path, prompts: Sequence[str], *, max_new_tokens: int
    ) -> tuple[list[str], list[int]] | None: ...


def check_threshold(value: float) -> float:
    """``value`` when it is a share in [0, 1]; else one line naming ``--threshold``."""
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"--threshold: must be between 0 and 1, got {value}")
    return value


def gate_items(run: RunDirectory, host: Host, count: int, seed: int) -> list[ReasoningExample]:
    """The fixed prompts: the first ``count`` of the run's eval items, and ``count`` of
    judging-mix (when a plugin provides it) taken from its domains in turn, so the gate
    sees creative writing, coding, math and the rest, not ``count`` items of the first
    domain."""
    items = read_jsonl(run.eval_data_path)[:count] if run.eval_data_path.is_file() else []
    if JUDGING_MIX in host.datasets:
        suite = load_split(host.datasets, JUDGING_MIX, "eval", seed=seed, options={},
                           transforms=host.transforms)  # fmt: skip
        items += one_domain_at_a_time(suite)[:count]
    return items


def one_domain_at_a_time(items: Sequence[ReasoningExample]) -> list[ReasoningExample]:
    """``items`` reordered so each domain (``meta.category``) gives its first item, then
    each its second, and so on; domains keep their order of first appearance."""
    by_domain: dict[str, list[ReasoningExample]] = {}
    for item in items:
        by_domain.setdefault(item.meta.category, []).append(item)
    rounds = zip_longest(*by_domain.values())
    return [item for round_ in rounds for item in round_ if item is not None]


def _answer(completion: str) -> str | None:
    answer = parse_completion(completion).answer
    return answer.strip() if answer is not None else None


def run_gate(
    run_dir: Path,
    host: Host,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    count: int = DEFAULT_ITEMS,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run the judges' path on ``run_dir``'s export and write :data:`GATE_FILE`."""
    check_threshold(threshold)
    run = RunDirectory.open(run_dir)
    config = load_run_config(run.config_path)
    try:
        backend = host.backends.load(config.model.backend)()
    except UnknownNameError as exc:
        raise ConfigError(f"model.backend: {exc}") from None
    report: dict[str, Any] = {"ran": False, "threshold": threshold}
    items = gate_items(run, host, count, config.dataset.seed)
    prompts = [render_prompt(item.question, config.dataset.system_prompt) for item in items]
    sampled = (backend.sample_with_google_tunix(run.model_dir, prompts,
                                                max_new_tokens=max_new_tokens)
               if isinstance(backend, GoogleTunixSampling) else None)  # fmt: skip
    if sampled is None:
        why = ("google-tunix is not installed" if isinstance(backend, GoogleTunixSampling)
               else f"model backend {config.model.backend!r} cannot sample through google-tunix")  # fmt: skip
        report["reason"] = f"{why}: the judges' path did not run"
    else:
        theirs, lengths = sampled
        progress(f"[gate] google-tunix sampled {len(prompts)} prompt(s)")
        model = backend.load_export(run.model_dir, ModelSpec.from_config(config),
                                    progress=progress)  # fmt: skip
        ours = model.generate(prompts, max_new_tokens=max_new_tokens)
        per_item: list[dict[str, Any]] = [
            {"id": item.id, "format_ok": parse_completion(text).format_exact,
             "agrees": _answer(text) == _answer(own), "tokens": length,
             "answer": _answer(text), "tunix_answer": _answer(own)}
            for item, text, own, length in zip(items, theirs, ours, lengths, strict=True)
        ]  # fmt: skip
        n = len(per_item)
        format_rate = sum(bool(i["format_ok"]) for i in per_item) / n if n else 0.0
        report.update(
            ran=True,
            items=n,
            max_new_tokens=max_new_tokens,
            format_rate=format_rate,
            agreement_rate=sum(bool(i["agrees"]) for i in per_item) / n if n else 0.0,
            longest_output_tokens=max(lengths, default=0),
            passed=format_rate >= threshold,
            per_item=per_item,
        )
    write_json_atomic(run.path / GATE_FILE, report)
    return report


def gate_problems(report: Any, where: str) -> list[str]:
    """Validation's rule: a report that ran must have reached its threshold."""
    if not isinstance(report, dict) or report.get("ran") is not True:
        return []
    if report.get("passed") is not True:
        return [f"{where}: the format rate through google-tunix's Sampler, "
                f"{report.get('format_rate')}, is below the threshold {report.get('threshold')}"]  # fmt: skip
    return []


def format_report(report: dict[str, Any]) -> str:
    if not report["ran"]:
        return f"judges' path: NOT RUN ({report['reason']})"
    verdict = "passed" if report["passed"] else "FAILED"
    return (
        f"judges' path {verdict}: {report['items']} prompt(s) through google-tunix's loader "
        f"and Sampler; format {report['format_rate']:.1%} (threshold "
        f"{report['threshold']:.0%}), agreement with tunix's sampler "
        f"{report['agreement_rate']:.1%}, longest output {report['longest_output_tokens']} tokens"
    )
