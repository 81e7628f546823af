"""``tunix plan``'s arithmetic (:func:`make_plan`) and its one-line refusals. The
measuring run on a real model is tested in tests/integration/test_plan_command.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs
import pytest
import yaml

from tunix_core.config import load_config, parse_duration, structure_config
from tunix_core.errors import ConfigError
from tunix_core.session_plan import (
    MEASURE_STEPS,
    Measurements,
    PhaseTiming,
    _save_seconds,
    make_plan,
    measuring_config,
    planned_config,
    planned_training_hours,
    recorded_hours,
    render_table,
    session_hours,
    unfinished_phases,
    write_plan,
)

SFT = PhaseTiming("jax", first_step_seconds=60.0, step_seconds=2.0, configured_steps=30_000)
GRPO = PhaseTiming("grpo", first_step_seconds=120.0, step_seconds=12.0, configured_steps=5_000)
TWO_PHASES = Measurements("8 x tpu", setup_seconds=300.0, load_seconds=200.0,
                          eval_seconds=600.0, phases=(SFT, GRPO))  # fmt: skip


def test_the_budgets_fill_the_hours_less_the_margin():
    plan = make_plan(TWO_PHASES, hours=9, margin_seconds=1800, max_loss_seconds=900)
    assert plan.planned_seconds == pytest.approx(9 * 3600 - 1800)
    sft, grpo = plan.phases
    # The phases keep the config's proportion of time: 30,000 x 2 s against 5,000 x 12 s.
    assert sft.seconds - SFT.first_step_seconds == pytest.approx(
        grpo.seconds - GRPO.first_step_seconds
    )
    # Both ask for more steps than fit: each takes what fits in its share.
    for budget, timing in zip(plan.phases, TWO_PHASES.phases, strict=True):
        assert budget.steps == budget.fits < timing.configured_steps
        assert timing.first_step_seconds + budget.fits * timing.step_seconds <= budget.seconds


def test_phases_whose_steps_fit_keep_them():
    few = (attrs.evolve(SFT, configured_steps=300), attrs.evolve(GRPO, configured_steps=50))
    plan = make_plan(attrs.evolve(TWO_PHASES, phases=few), hours=9, margin_seconds=1800,
                     max_loss_seconds=900)  # fmt: skip
    assert [p.steps for p in plan.phases] == [300, 50]
    assert all(p.fits > p.steps for p in plan.phases if p.steps is not None)


def test_a_phase_that_counts_epochs_keeps_them_within_its_budget():
    by_epochs = attrs.evolve(SFT, epochs=3.0)
    plan = make_plan(attrs.evolve(TWO_PHASES, phases=(by_epochs,)), hours=9,
                     margin_seconds=1800, max_loss_seconds=900)  # fmt: skip
    training = planned_config({"training": {"epochs": 3}}, plan)["training"]
    assert training["epochs"] == 3 and "steps" not in training
    assert parse_duration(training["time_budget"]) == pytest.approx(
        plan.phases[0].time_budget_seconds, abs=1
    )


def test_the_checkpoint_cadence_loses_at_most_max_loss():
    plan = make_plan(TWO_PHASES, hours=9, margin_seconds=1800, max_loss_seconds=600)
    for budget, timing in zip(plan.phases, TWO_PHASES.phases, strict=True):
        assert budget.checkpoint_every * timing.step_seconds <= 600
        assert (budget.checkpoint_every + 1) * timing.step_seconds > 600


def test_a_phase_time_budget_stops_it_at_its_share_after_the_reserve():
    plan = make_plan(TWO_PHASES, hours=9, margin_seconds=1800, max_loss_seconds=900)
    for budget, timing in zip(plan.phases, TWO_PHASES.phases, strict=True):
        assert budget.time_budget_seconds * (1 - timing.reserve_fraction) == pytest.approx(
            budget.seconds
        )


def test_a_single_training_counts_its_budget_from_the_run_start():
    one = Measurements("cpu", 300.0, 200.0, 600.0, (SFT,))
    (budget,) = make_plan(one, hours=2, margin_seconds=600, max_loss_seconds=900).phases
    assert budget.time_budget_seconds * (1 - SFT.reserve_fraction) == pytest.approx(
        300.0 + 200.0 + budget.seconds
    )


def test_checkpoint_saves_come_out_of_the_phase_share():
    saving = attrs.evolve(SFT, save_seconds=30.0)  # a save every 300 steps of 2 s
    without = make_plan(attrs.evolve(TWO_PHASES, phases=(SFT,)), hours=9, margin_seconds=1800,
                        max_loss_seconds=600).phases[0]  # fmt: skip
    plan = make_plan(attrs.evolve(TWO_PHASES, phases=(saving,)), hours=9, margin_seconds=1800,
                     max_loss_seconds=600)  # fmt: skip
    (budget,) = plan.phases
    assert budget.seconds == pytest.approx(without.seconds)  # the same share of the session
    assert budget.checkpoint_every == 300
    assert budget.saves == (budget.fits - 1) // 300
    # Each 300 steps of 2 s pay one 30 s save: 2.1 s a step, 5 % fewer steps than without.
    assert budget.fits == int((budget.seconds - SFT.first_step_seconds) / 2.1)
    assert budget.fits < without.fits
    used = SFT.first_step_seconds + budget.fits * 2.0 + budget.saves * 30.0
    assert used <= budget.seconds < used + 2.0 + 30.0  # within one step and one save
    table = "\n".join(render_table(plan))
    assert f"{budget.saves} saves x 30s = {budget.saves * 0.5:.1f} min" in table
    assert "margin" in table and f"{1800 / 60:9.1f} min" in table


def test_a_phase_without_a_timed_save_says_so():
    plan = make_plan(attrs.evolve(TWO_PHASES, phases=(SFT,)), hours=9, margin_seconds=1800,
                     max_loss_seconds=600)  # fmt: skip
    assert "save not measured" in "\n".join(render_table(plan))


def test_a_save_is_timed_from_the_metrics_flush_to_its_newest_file(tmp_path: Path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("{}\n")
    os.utime(metrics, (1000.0, 1000.0))
    assert _save_seconds(metrics, tmp_path / "checkpoints") is None  # nothing was saved
    for name, written in (("state/a", 1003.0), ("state/b", 1012.5), ("meta/c", 1008.0)):
        path = tmp_path / "checkpoints" / "4" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        os.utime(path, (written, written))
    assert _save_seconds(metrics, tmp_path / "checkpoints") == pytest.approx(12.5)
    os.utime(metrics, (1020.0, 1020.0))  # written after the save: it did not time it
    assert _save_seconds(metrics, tmp_path / "checkpoints") is None


@pytest.mark.parametrize("hours", [0, -1, float("nan")])
def test_hours_must_be_positive(hours: float):
    with pytest.raises(ConfigError, match="--hours: must be a positive number"):
        make_plan(TWO_PHASES, hours=hours, margin_seconds=0, max_loss_seconds=900)


def test_hours_below_the_measured_minimum_name_it():
    with pytest.raises(
        ConfigError, match=r"--hours: 0.5 h is below the measured minimum of 0.[0-9]+ h"
    ):
        make_plan(TWO_PHASES, hours=0.5, margin_seconds=1800, max_loss_seconds=900)


def test_the_plan_is_a_config_that_loads_with_the_budgets_in_each_phase(tmp_path: Path):
    data = {"training": {"steps": 300, "epochs": 2,
                         "phases": [{"trainer": "jax"}, {"trainer": "grpo", "steps": 50}]}}  # fmt: skip
    plan = make_plan(TWO_PHASES, hours=9, margin_seconds=1800, max_loss_seconds=900)
    out = tmp_path / "plan.yaml"
    write_plan(out, data, plan, Path("kaggle.yaml"))
    config = load_config(out)
    for phase, budget in zip(config.training.phases, plan.phases, strict=True):
        assert phase["steps"] == budget.steps and phase["epochs"] is None
        assert phase["checkpoint_every"] == budget.checkpoint_every
        assert parse_duration(phase["time_budget"]) == pytest.approx(
            budget.time_budget_seconds, abs=1
        )
    assert out.read_text().startswith("# tunix plan -c kaggle.yaml --hours 9")
    assert yaml.safe_load(out.read_text())["training"]["phases"][1]["trainer"] == "grpo"


def test_a_single_training_gets_the_fields_of_training():
    one = Measurements("cpu", 300.0, 200.0, 600.0, (SFT,))
    plan = make_plan(one, hours=2, margin_seconds=600, max_loss_seconds=900)
    training = planned_config({"training": {"steps": 10}}, plan)["training"]
    assert training["steps"] == plan.phases[0].steps
    assert training["checkpoint_every"] == 450  # 900 s of 2 s steps


@pytest.mark.parametrize(("args", "message"), [
    (["--hours", "0"], "Error: --hours: must be a positive number of hours, got 0.0"),
    (["--hours", "9", "--max-loss", "soon"], "Error: --max-loss: must be a duration"),
    (["--hours", "9", "--max-loss", "0"], "Error: --max-loss: must be a positive duration"),
])  # fmt: skip
def test_bad_options_are_one_line(run_main, tmp_path: Path, args: list[str], message: str):
    config = tmp_path / "c.yaml"
    config.write_text("training: {steps: 3}\n")
    code, _, err = run_main("plan", "-c", str(config), *args, "--out", str(tmp_path / "p.yaml"))
    assert code != 0
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "p.yaml").exists()


def test_an_unknown_config_is_one_line(run_main, tmp_path: Path):
    code, _, err = run_main("plan", "-c", str(tmp_path / "nope.yaml"), "--hours", "9")
    assert code != 0
    assert "nope.yaml: cannot read config file" in err and err.count("\n") == 1, err


def test_a_config_with_an_unknown_field_is_refused_before_measuring(run_main, tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text("training: {stepz: 3}\n")
    code, out, err = run_main("plan", "-c", str(config), "--hours", "9")
    assert code != 0
    assert "training.stepz: unknown key" in err and "measuring" not in out, err


def test_the_measuring_run_is_short_and_logs_nowhere(tmp_path: Path):
    data = {
        "training": {"steps": 500, "epochs": 2, "time_budget": "8h",
                     "phases": [{"trainer": "jax"}, {"trainer": "grpo", "steps": 50}]},
        "eval": {"limit": 200, "batch_size": 16},
        "logging": {"wandb": True},
    }  # fmt: skip
    short = measuring_config(data, structure_config(data), tmp_path)
    for section in (short["training"], *short["training"]["phases"]):
        assert section["steps"] == MEASURE_STEPS and section["epochs"] is None
        assert section["time_budget"] is None
    assert short["eval"]["baseline"] is False and short["eval"]["limit"] == 16
    assert short["package"]["enabled"] is False
    assert short["logging"] == {"wandb": False, "tensorboard": False}
    assert short["run"]["output_dir"] == str(tmp_path)
    assert data["training"]["steps"] == 500  # the user's config is left as it was


@pytest.mark.parametrize(("args", "message"), [
    (["--used-hours", "3"], "Error: --used-hours: counts against --weekly-hours; give that too"),
    (["--weekly-hours", "0"], "Error: --weekly-hours: must be a positive number of hours, got 0.0"),
    (["--weekly-hours", "20", "--used-hours", "-1"],
     "Error: --used-hours: must be a number of hours from 0, got -1.0"),
    (["--weekly-hours", "20", "--used-hours", "20"],
     "Error: --weekly-hours: 20 h of the 20 h week are used (--used-hours); none is left"),
])  # fmt: skip
def test_bad_week_options_are_one_line(run_main, tmp_path: Path, args: list[str], message: str):
    config = tmp_path / "c.yaml"
    config.write_text("training: {steps: 3}\n")
    code, out, err = run_main("plan", "-c", str(config), "--hours", "9", *args,
                              "--out", str(tmp_path / "p.yaml"))  # fmt: skip
    assert code != 0
    assert err.startswith(message) and err.count("\n") == 1, err
    assert "measuring" not in out and not (tmp_path / "p.yaml").exists()


@pytest.mark.parametrize(("args", "message"), [
    ([], "Error: plan: give -c CONFIG to plan a new run or --resume RUN, not both"),
    (["-c", "c.yaml", "--resume", "run"], "Error: plan: give -c CONFIG"),
    (["--resume", "run", "--out", "p.yaml"], "Error: --out: --resume rewrites the run's own config"),
    (["--resume", "nowhere"], "Error: --resume: nowhere is not a run directory"),
])  # fmt: skip
def test_plan_takes_a_config_or_a_run(run_main, tmp_path: Path, monkeypatch,
                                      args: list[str], message: str):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run_manifest.json").write_text('{"stages": {}}')
    code, _, err = run_main("plan", *args, "--hours", "9")
    assert code != 0
    assert err.startswith(message) and err.count("\n") == 1, err


def test_the_session_gets_what_the_week_has_left():
    assert session_hours(9, None, 0.0, "") == 9
    assert session_hours(9, 20, 9.0, "") == 9
    assert session_hours(9, 20, 17.5, "") == pytest.approx(2.5)


def planted_run(tmp_path: Path, *, train_status: str, train_hours: float,
                first_phase_done: bool) -> Path:  # fmt: skip
    """A run directory as a first session leaves it: two phases planned at 8.5 h of
    training (10h budgets at the 0.15 reserve), its stages' times recorded."""
    run = tmp_path / "run"
    run.mkdir()
    config = {"training": {"phases": [
        {"trainer": "jax", "steps": 900, "time_budget": "5h"},
        {"trainer": "jax", "steps": 100, "time_budget": "5h"}]}}  # fmt: skip
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    stages = {"dataset": {"status": "done", "seconds": 60.0},
              "baseline": {"status": "skipped", "seconds": 0.0},
              "train": {"status": train_status, "seconds": train_hours * 3600},
              "evaluate": {"status": "done", "seconds": 540.0}}  # fmt: skip
    (run / "run_manifest.json").write_text(json.dumps({"stages": stages}))
    if first_phase_done:
        record = run / "phases" / "1-jax" / "model" / "phase.json"
        record.parent.mkdir(parents=True)
        record.write_text("{}")
    return run


def test_a_run_records_its_hours_and_its_unfinished_phases(tmp_path: Path):
    run = planted_run(tmp_path, train_status="stopped", train_hours=8.5, first_phase_done=True)
    config = load_config(run / "config.yaml")
    assert recorded_hours(run) == pytest.approx(8.5 + 600 / 3600)
    assert unfinished_phases(run, config) == [1]
    assert planned_training_hours(config) == pytest.approx(8.5)
    (run / "phases" / "1-jax" / "model" / "phase.json").unlink()
    assert unfinished_phases(run, config) == [0, 1]


def test_a_resumed_plan_budgets_the_unfinished_phases_and_keeps_their_steps():
    plan = make_plan(attrs.evolve(TWO_PHASES, phases=(GRPO,), phased=True), hours=2,
                     margin_seconds=600, max_loss_seconds=900)  # fmt: skip
    data = {"training": {"phases": [{"trainer": "jax", "steps": 900, "time_budget": "5h"},
                                    {"trainer": "grpo", "steps": 100, "time_budget": "5h"}]}}  # fmt: skip
    first, second = planned_config(data, plan, [1])["training"]["phases"]
    assert first == data["training"]["phases"][0]  # finished: left as it was
    assert second["steps"] == 100 and second["checkpoint_every"] == plan.phases[0].checkpoint_every
    # A phase's budget counts from its start, not the run's, even when it is the last left.
    assert parse_duration(second["time_budget"]) == pytest.approx(
        plan.phases[0].seconds / (1 - GRPO.reserve_fraction), abs=1
    )


def test_a_run_resumed_past_its_budget_says_so_and_the_week_bounds_it(run_main, tmp_path: Path):
    run = planted_run(tmp_path, train_status="stopped", train_hours=8.6, first_phase_done=False)
    before = (run / "config.yaml").read_text()
    code, out, err = run_main("plan", "--resume", str(run), "--hours", "9",
                              "--weekly-hours", "8.5")  # fmt: skip
    assert code != 0
    past = [line for line in out.splitlines() if "past its planned budget" in line]
    assert past == [f"{run}: resumed past its planned budget: training took 8.6 h of the 8.5 h "
                    "its config plans; this plan gives it another session"]  # fmt: skip
    assert err.startswith("Error: --weekly-hours: 8.77 h of the 8.5 h week are used "
                          "(recorded in run_manifest.json); none is left"), err  # fmt: skip
    assert (run / "config.yaml").read_text() == before
    assert not list(run.glob("config.before-plan-*"))


def test_a_run_that_finished_training_has_nothing_to_plan(run_main, tmp_path: Path):
    run = planted_run(tmp_path, train_status="done", train_hours=3.0, first_phase_done=True)
    before = (run / "config.yaml").read_text()
    code, out, _ = run_main("plan", "--resume", str(run), "--hours", "9")
    assert code == 0
    assert f"{run} has finished training: nothing to plan (tunix run --resume" in out
    assert "measuring" not in out and (run / "config.yaml").read_text() == before
