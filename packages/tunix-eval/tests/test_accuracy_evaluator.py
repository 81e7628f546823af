"""Answer accuracy on hand-written completions."""

import pytest

import tunix_eval.plugin
from tunix_core.errors import DataError
from tunix_core.plugins import PluginHost, get_host
from tunix_core.protocols import AnswerVerdict, Prediction, RunContext
from tunix_eval.accuracy import AccuracyEvaluator


def wrap(answer: str) -> str:
    return f"<reasoning>Work it out.</reasoning><answer>{answer}</answer>"


ITEMS = [
    # id, completion, expected, category
    ("thousands", wrap("1,234"), "1234", "arithmetic"),
    ("currency", wrap("$12.50"), "12.5", "arithmetic"),
    ("percent", wrap("25%"), "0.25", "arithmetic"),
    ("fraction", wrap("3/4"), "0.75", "arithmetic"),
    ("wrong", wrap("13"), "12", "arithmetic"),
    ("yes", wrap("Yes, it is prime."), "yes", "logic"),
    ("list", wrap("2, 3 and 5"), "2, 3, 5", "logic"),
    ("unicode", wrap("Zürich"), "zürich", "geography"),
    ("no_tags", "The answer is 4.", "4", "arithmetic"),  # no answer block: never credited
    ("empty", wrap(""), "4", "arithmetic"),
    ("unclosed", "<reasoning>ok</reasoning><answer>4", "4", "arithmetic"),
    (
        "two_answers",
        "<reasoning>r</reasoning><answer>5</answer><answer>4</answer>",
        "4",
        "arithmetic",
    ),
    ("nested", "<reasoning>r <answer>4</answer></reasoning>", "4", "arithmetic"),
    ("after_answer", wrap("4") + " Let me know!", "4", "arithmetic"),
]


@pytest.fixture(scope="module")
def report():
    predictions = [Prediction(i, "", c, e, {"category": cat}) for i, c, e, cat in ITEMS]
    return AccuracyEvaluator().evaluate(predictions, context=RunContext(get_host()))


def test_per_item_verdicts(report):
    correct = {item_id for item_id, item in report.per_item.items() if item["correct"]}
    assert correct == {
        "thousands", "currency", "percent", "fraction", "yes", "list", "unicode",
        "two_answers",  # the last answer block counts
        "nested",  # an answer block inside the reasoning is still the only answer block
        "after_answer",  # text after </answer> costs format, not accuracy
    }  # fmt: skip
    assert report.per_item["no_tags"] == {
        "extracted_answer": None,
        "correct": False,
        "answer_match": "auto",
        "rule": "missing",
    }
    assert report.per_item["unclosed"]["rule"] == "missing"
    assert report.per_item["empty"]["rule"] == "empty"
    assert report.per_item["two_answers"]["extracted_answer"] == "4"
    assert report.per_item["yes"]["rule"] == "yes_no"
    assert report.per_item["currency"]["rule"] == "number"


def test_metrics_overall_and_per_category(report):
    metrics = report.metrics
    assert (metrics["n"], metrics["correct"]) == (14, 10)
    assert metrics["answer_accuracy"] == pytest.approx(10 / 14)
    assert metrics["answered"] == 11  # no_tags, empty and unclosed have no usable answer
    assert metrics["accuracy_when_answered"] == pytest.approx(10 / 11)
    arithmetic = metrics["by_category"]["arithmetic"]
    assert (arithmetic["n"], arithmetic["correct"]) == (11, 7)
    assert metrics["by_category"]["logic"]["answer_accuracy"] == 1.0
    assert metrics["correct_by_rule"] == {"casefold": 4, "list": 1, "number": 4, "yes_no": 1}
    assert metrics["by_answer_match"] == {
        "auto": {"n": 14, "correct": 10, "answer_accuracy": pytest.approx(10 / 14),
                 "answer_accuracy_stderr": pytest.approx(metrics["answer_accuracy_stderr"])},
    }  # fmt: skip


def test_options_reach_the_comparison():
    predictions = [Prediction("a", "", wrap("5, 3, 2"), "2, 3, 5")]
    assert not AccuracyEvaluator().evaluate(predictions, context=RunContext(get_host())).per_item["a"]["correct"]
    assert AccuracyEvaluator(ordered_lists=False).evaluate(predictions, context=RunContext(get_host())).per_item["a"]["correct"]
    close = [Prediction("b", "", wrap("100.5"), "100")]
    assert AccuracyEvaluator(rel_tol=0.01).evaluate(close, context=RunContext(get_host())).per_item["b"]["correct"]
    assert not AccuracyEvaluator().evaluate(close, context=RunContext(get_host())).per_item["b"]["correct"]


def tunix_eval_host():
    """A host of tunix-eval's own plugin alone (its answer checks)."""
    host = PluginHost()
    host.add_plugin(tunix_eval.plugin, "eval", "tunix-eval")
    host.fill_registries()
    return host


# Completions of the default run (dev-reasoning-v2, seed 0) that case folding and a
# leading "no" counted as correct, and two that stay correct.
DEFAULT_RUN = [
    ("dev2-eval-case_change-000", "old button copper zipper", "OLD BUTTON COPPER ZIPPER", "exact"),
    ("dev2-eval-case_change-001", "hat wet log", "Hat Wet Log", "exact"),
    ("dev2-eval-case_change-003", "cup quartz ant", "CUP QUARTZ ANT", "exact"),
    ("syllogism", "no fish can walk", "no", None),
    ("dev2-eval-distance_speed_time-003", "30", "30", None),
    ("reversal", "nretnal", "nretnal", "exact"),
]


def _default_run_predictions():
    return [
        Prediction(i, "", wrap(answer), expected, {"answer_match": check} if check else {})
        for i, answer, expected, check in DEFAULT_RUN
    ]


@pytest.mark.parametrize("checks", [None, "tunix-eval"], ids=["installed", "injected"])
def test_meta_answer_match_picks_the_check(checks):
    host = tunix_eval_host() if checks else get_host()
    report = AccuracyEvaluator().evaluate(_default_run_predictions(), context=RunContext(host))
    verdicts = {i: (item["correct"], item["answer_match"], item["rule"])
                for i, item in report.per_item.items()}  # fmt: skip
    assert verdicts == {
        "dev2-eval-case_change-000": (False, "exact", "exact"),
        "dev2-eval-case_change-001": (False, "exact", "exact"),
        "dev2-eval-case_change-003": (False, "exact", "exact"),
        "syllogism": (False, "auto", "yes_no"),
        "dev2-eval-distance_speed_time-003": (True, "auto", "casefold"),
        "reversal": (True, "exact", "exact"),
    }
    assert report.metrics["correct"] == 2
    by_check = report.metrics["by_answer_match"]
    assert (by_check["exact"]["n"], by_check["exact"]["correct"]) == (4, 1)
    assert (by_check["auto"]["n"], by_check["auto"]["correct"]) == (2, 1)


def test_an_unknown_or_mislabelled_check_is_an_error_naming_the_item():
    typo = [Prediction("a", "", wrap("X"), "X", {"answer_match": "exakt"})]
    with pytest.raises(DataError, match=r"item 'a': meta\.answer_match: Unknown answer check "
                                        r"'exakt'.*Did you mean 'exact'\?"):  # fmt: skip
        AccuracyEvaluator().evaluate(typo, context=RunContext(get_host()))
    mislabelled = [Prediction("b", "", wrap("4"), "Paris", {"answer_match": "number"})]
    with pytest.raises(DataError, match="item 'b': answer check 'number': the expected answer "
                                        "must be one number, got 'Paris'"):  # fmt: skip
        AccuracyEvaluator().evaluate(mislabelled, context=RunContext(get_host()))


def shout(answer, expected, options):
    return AnswerVerdict(answer.upper().rstrip("!") == expected, "shout")


def test_a_plugin_check_is_used_like_a_built_in():
    host = tunix_eval_host()
    host.answer_checks.register("shout", f"{__name__}:shout")
    predictions = [Prediction("a", "", wrap("hi!"), "HI", {"answer_match": "shout"})]
    item = AccuracyEvaluator().evaluate(predictions, context=RunContext(host)).per_item["a"]
    assert (item["correct"], item["answer_match"], item["rule"]) == (True, "shout", "shout")
