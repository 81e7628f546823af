"""``tunix report`` (the HTML page) and ``tunix runs show`` on a finished and a partial run."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser

from tunix_core.jsonio import read_jsonl
from tunix_core.layout import PREDICTIONS, REPORT
from tunix_eval.report_html import curves, gather, render_html

SECTIONS = ["run", "stages", "before-after", "curves", "by-category", "by-difficulty",
            "flipped", "evidence"]  # fmt: skip


class Sections(HTMLParser):
    """The text of each ``<section id=...>`` and the tags used anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.tags: set[str] = set()
        self.current: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "section":
            self.current = dict(attrs)["id"]
            self.text[self.current] = ""

    def handle_data(self, data):
        if self.current is not None:
            self.text[self.current] += data


def parse(html: str) -> Sections:
    parser = Sections()
    parser.feed(html)
    return parser


def test_report_of_a_finished_run_has_every_section(invoke, report_run, tmp_path):
    run = report_run(tmp_path, extra_metrics=("reward",))
    result = invoke("report", run.path)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {run.path / REPORT}"
    html = (run.path / REPORT).read_text()
    page = parse(html)
    assert list(page.text) == SECTIONS
    text = page.text
    assert "report-run" in text["run"] and "tiny-gemma3@random" in text["run"]
    assert "arith" in text["run"] and "jax" in text["run"]
    assert re.search(r"train\s*done\s*1 min 35 s\s*steps 5, stopped_early False", text["stages"])
    assert "total" in text["stages"] and "1 min 58 s" in text["stages"]
    assert re.search(r"answer_accuracy\s*33\.3%\s*66\.7%\s*\+33\.3 pt", text["before-after"])
    assert re.search(r"format_compliance\s*100\.0%\s*100\.0%", text["before-after"])
    # The loss first, then the reward, then the rest, each an SVG line.
    assert re.findall(r"<figcaption>(\w+)</figcaption>", html) == ["loss", "reward", "learning_rate"]
    assert html.count("<polyline") == 3
    assert "small" in text["by-category"] and "large" in text["by-category"]
    assert "easy" in text["by-difficulty"] and "medium" in text["by-difficulty"]
    assert "6 item(s) in both evaluations: 3 fixed (wrong → right), 1 broken" in text["flipped"]
    # Self-contained: no script, no external resource, no link out.
    assert "<script" not in html.lower() and "http://" not in html and "https://" not in html
    assert not page.tags & {"script", "link", "img", "iframe"}


def test_completions_are_escaped_and_shown_side_by_side(report_run, tmp_path):
    html = render_html(gather(report_run(tmp_path).path))
    card = html[html.index("<code>u4</code>"):]
    card = card[: card.index("</article>")]
    assert "before: <span>correct</span>" in card and "after: <span>wrong</span>" in card
    assert "&lt;answer&gt;4&lt;/answer&gt;" in card  # the baseline's completion
    assert ("&lt;script&gt;console.error(&quot;unescaped completion&quot;)&lt;/script&gt;"
            in card)  # fmt: skip
    for item in ("u1", "u2", "u3"):
        assert f"<code>{item}</code>" in html


def test_control_characters_in_completions_are_shown_as_escapes(report_run, tmp_path):
    run = report_run(tmp_path)
    path = run.path / PREDICTIONS
    records = read_jsonl(path)
    for record in records:
        record["completion"] += "\x00 NUL\x1b[2J ESC\tTAB\nNEW LINE"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    html = render_html(gather(run.path))
    assert "\x00" not in html and "\x1b" not in html
    assert "\\x00 NUL\\x1b[2J ESC\tTAB\nNEW LINE" in html  # whitespace stays as it was


def test_a_run_without_baseline_or_training_says_what_is_missing(invoke, report_run, tmp_path):
    run = report_run(tmp_path, baseline=False, trained=False)
    assert invoke("report", run.path).exit_code == 0
    text = parse((run.path / REPORT).read_text()).text
    assert list(text) == SECTIONS
    expected = "the baseline stage is skipped and the evaluate stage is pending"
    assert f"No evaluation yet: {expected}." in text["before-after"]
    assert f"No evaluation yet: {expected}." in text["by-category"]
    assert "No training metrics yet (metrics.jsonl is empty or missing): the train stage is " \
           "pending." in text["curves"]  # fmt: skip
    assert f"Flips need the baseline and the final evaluation: {expected}." in text["flipped"]
    assert re.search(r"baseline\s*skipped", text["stages"])


def test_a_run_with_only_its_baseline_shows_the_before_column(report_run, tmp_path):
    text = parse(render_html(gather(report_run(tmp_path, trained=False).path))).text
    assert re.search(r"answer_accuracy\s*33\.3%\s*-", text["before-after"])
    assert "No after column: the evaluate stage is pending." in text["before-after"]
    assert "33.3%" in text["by-category"] or "0.0%" in text["by-category"]


def test_checksums_are_those_of_the_files(report_run, tmp_path):
    run = report_run(tmp_path, baseline=False)
    report = gather(run.path)
    html = render_html(report)
    names = [f.name for f in report.evidence]
    assert names == ["run_manifest.json", "config.yaml", "eval_summary.json", "predictions.jsonl",
                     "metrics.jsonl", "baseline/eval_summary.json", "baseline/predictions.jsonl",
                     "model/model_config.json"]  # fmt: skip
    for evidence in report.evidence:
        path = run.path / evidence.name
        if evidence.name.startswith("baseline/"):
            assert (evidence.sha256, evidence.size) == (None, None) and not path.exists()
            continue
        data = path.read_bytes()
        assert (evidence.sha256, evidence.size) == (hashlib.sha256(data).hexdigest(), len(data))
        assert f"<code>{evidence.sha256}</code>" in html
    assert parse(html).text["evidence"].count("missing") == 2


def test_the_page_is_the_same_for_the_same_run(report_run, tmp_path):
    run = report_run(tmp_path)
    assert render_html(gather(run.path)) == render_html(gather(run.path))


def test_report_out_and_show(invoke, report_run, tmp_path):
    run = report_run(tmp_path)
    out = tmp_path / "pages" / "r.html"
    assert invoke("report", run.path, "--out", out, "--show", "1").exit_code == 0
    html = out.read_text()
    assert not (run.path / REPORT).exists()
    assert "… and 2 more (tunix compare lists them all)." in html
    assert html.count('<article class="flip">') == 2  # one fixed, one broken


def test_report_errors_name_the_file(invoke, report_run, tmp_path):
    run = report_run(tmp_path)
    lines = run.metrics_path.read_text().splitlines()
    run.metrics_path.write_text("\n".join([lines[0], "{oops", *lines[1:]]) + "\n")
    broken = invoke("report", run.path)
    assert broken.exit_code == 1 and f"{run.metrics_path}:2: invalid JSON" in broken.stderr
    not_a_run = invoke("report", tmp_path)
    assert not_a_run.exit_code == 1 and "is not a run directory" in not_a_run.stderr


def test_curves_skip_the_clock_and_non_numbers():
    metrics = [{"step": 1, "loss": 2.0, "elapsed_seconds": 1.0, "note": "x", "ok": True},
               {"step": 2, "loss": float("nan"), "grad_norm": 0.5}]  # fmt: skip
    assert curves(metrics) == {"loss": [(1.0, 2.0)], "grad_norm": [(2.0, 0.5)]}


def test_runs_show_prints_the_summary(invoke, report_run, tmp_path):
    run = report_run(tmp_path)
    result = invoke("runs", "show", run.path)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"run       report-run  ({run.path})" in out
    assert "model     tiny-gemma3@random" in out and "status    running" in out
    assert re.search(r"train\s+done\s+1 min 35 s  steps 5, stopped_early False", out)
    assert re.search(r"answer_accuracy\s+33\.3%\s+66\.7%\s+\+33\.3 pt", out)
    assert "flips: 3 fixed (wrong -> right), 1 broken (right -> wrong) of 6 item(s)" in out
    assert f"report    none yet; write it with `tunix report {run.path}`" in out
    invoke("report", run.path)
    assert f"report    {run.path / REPORT}" in invoke("runs", "show", run.path).stdout


def test_runs_show_on_a_partial_run(invoke, report_run, tmp_path):
    run = report_run(tmp_path, baseline=False, trained=False)
    out = invoke("runs", "show", run.path).stdout
    assert ("no evaluation yet: the baseline stage is skipped and the evaluate stage is pending"
            in out)  # fmt: skip
    assert "flips:" not in out
