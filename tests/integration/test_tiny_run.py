"""`tunix run` end to end on a tiny random Gemma, interrupted after a stage and resumed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

TINY = [
    "--trainer", "jax", "--dataset", "dev-reasoning-v2", "--model", "tiny-gemma3",
    "--weights", "random", "--steps", "2",
    "--set", "dataset.train_limit=8", "--set", "dataset.eval_limit=4",
    "--set", "eval.max_new_tokens=8", "--set", "training.max_seq_len=512",
    "--set", "training.batch_size=2", "--set", "training.checkpoint_every=1",
]  # fmt: skip


def tunix(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "tunix_core", *args],
        cwd=cwd, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def test_interrupted_run_resumes_to_a_valid_submission(tmp_path: Path):
    first = tunix(tmp_path, "run", *TINY, "--stop-after", "baseline")
    assert first.returncode == 0, first.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["stages"]["baseline"]["status"] == "done"
    assert manifest["stages"]["train"]["status"] == "pending"
    # matmul_dtype: auto (the default) is settled for this machine, written into the
    # run's config (a --resume computes as the run began) and recorded with its reason.
    choice = manifest["model_choices"]["matmul_dtype"]
    assert choice["value"] in ("float32", "bfloat16") and choice["reason"].startswith("auto: ")
    line = f"[run] model.options.matmul_dtype: {choice['value']} ({choice['reason']})"
    assert line in first.stdout
    assert f"matmul_dtype: {choice['value']}" in (run / "config.yaml").read_text()

    resumed = tunix(tmp_path, "run", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "[baseline] already done, skipping" in resumed.stdout and line in resumed.stdout
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    assert all(s["status"] == "done" for s in manifest["stages"].values())
    assert manifest["model_fingerprint"]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    summary = json.loads((run / "eval_summary.json").read_text())
    assert isinstance(summary["primary_score"], float | int)
    assert "answer_accuracy" in resumed.stdout and "bundle:" in resumed.stdout
    # The resumed evaluation scored exactly the items the first process saved.
    ids = [json.loads(line)["id"] for line in (run / "data" / "eval.jsonl").read_text().splitlines()]
    scored = [json.loads(line)["id"] for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert sorted(scored) == sorted(ids)

    checked = tunix(tmp_path, "validate", str(run))
    assert checked.returncode == 0, checked.stderr
    (bundle,) = (run / "submission").glob("*.zip")
    assert tunix(tmp_path, "validate", str(bundle)).returncode == 0


def test_bad_trainer_name_creates_no_run_directory(tmp_path: Path):
    result = tunix(tmp_path, "run", "--trainer", "nope", "--dataset", "dev-reasoning-v2")
    assert result.returncode == 2
    installed = "dpo, google-tunix-dpo, google-tunix-grpo, google-tunix-sft, grpo, jax, orpo, simpo"
    assert f"Unknown trainer 'nope'. Installed: {installed}." in result.stderr
    assert not (tmp_path / "runs").exists()


def test_sft_then_grpo_in_one_run_records_both_phases(tmp_path: Path):
    """training.phases with the real trainers and tunix-eval's rewards: SFT, then GRPO
    from the SFT model; the run validates and its manifest lists both phases."""
    config = tmp_path / "phases.yaml"
    config.write_text(
        "training:\n"
        "  phases:\n"
        "    - {trainer: jax}\n"
        "    - trainer: grpo\n"
        "      learning_rate: 1e-4\n"
        "      options: {num_generations: 2, max_new_tokens: 16, progress_bar: false,\n"
        "                rewards: {format_approx: 1.0, repetition: 0.5}}\n"
    )
    # float32 matmuls: with the bf16 operands `auto` picks on some CPUs, this random model's
    # samples can all score alike (JAX 0.8 at the floors), and GRPO then has nothing to learn.
    result = tunix(tmp_path, "run", *TINY, "-c", str(config), "--set", "package.enabled=false",
                   "--set", "model.options.matmul_dtype=float32")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    detail = json.loads((run / "run_manifest.json").read_text())["stages"]["train"]["detail"]
    assert [(p["trainer"], p["steps"], p["directory"]) for p in detail["phases"]] == [
        ("jax", 2, "phases/1-jax"), ("grpo", 2, "."),
    ]  # fmt: skip
    sft_fingerprint = detail["phases"][0]["model_fingerprint"]
    grpo_steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in grpo_steps] == [1, 2]
    # GRPO starts from the SFT weights and moves them exactly when a step has a gradient.
    # A random tiny model often scores every sample of a group alike (whether it does
    # depends on the CPU's rounding): then the advantages are 0, the KL to the reference
    # (the SFT model) is 0 at the first step, and the SFT weights come out unchanged.
    moved = any(r["grad_norm"] > 0 for r in grpo_steps)
    assert sft_fingerprint
    assert (sft_fingerprint != detail["phases"][1]["model_fingerprint"]) == moved
    assert {"reward/format_approx", "reward/repetition", "kl"} <= set(grpo_steps[0])
    assert len((run / "phases" / "1-jax" / "metrics.jsonl").read_text().splitlines()) == 2
    checked = tunix(tmp_path, "validate", str(run))
    assert checked.returncode == 0, checked.stdout + checked.stderr


PAIRS = [
    {"prompt": f"What is {a} + {b}?",
     "chosen": f"<reasoning>{a} + {b} = {a + b}</reasoning><answer>{a + b}</answer>",
     "rejected": f"<answer>{a + b + 1}</answer>"}
    for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]
]  # fmt: skip


def test_sft_then_dpo_in_one_run_starts_dpo_from_the_sft_model(tmp_path: Path):
    """training.phases with a preference trainer: DPO's reference is the SFT model the
    phase starts from, so its first step is a tie: rewards and margin 0 up to float rounding
    (the policy and the reference are computed by different programs, so the preference
    accuracy of near-ties is not pinned)."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(record) + "\n" for record in PAIRS))
    config = tmp_path / "phases.yaml"
    config.write_text(
        "training:\n"
        "  phases:\n"
        "    - {trainer: jax}\n"
        f"    - {{trainer: dpo, options: {{pairs: '{pairs}', progress_bar: false}}}}\n"
    )
    # float32 matmuls: with the bf16 operands `auto` picks on some CPUs, this random model's
    # samples can all score alike (JAX 0.8 at the floors), and GRPO then has nothing to learn.
    result = tunix(tmp_path, "run", *TINY, "-c", str(config), "--set", "package.enabled=false",
                   "--set", "model.options.matmul_dtype=float32")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    detail = json.loads((run / "run_manifest.json").read_text())["stages"]["train"]["detail"]
    assert [(p["trainer"], p["steps"], p["directory"]) for p in detail["phases"]] == [
        ("jax", 2, "phases/1-jax"), ("dpo", 2, "."),
    ]  # fmt: skip
    dpo_steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in dpo_steps] == [1, 2]
    first = dpo_steps[0]
    assert max(abs(first[k]) for k in ("chosen_reward", "rejected_reward", "margin")) < 1e-4, first
    checked = tunix(tmp_path, "validate", str(run))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_bad_preference_record_stops_the_run_before_it_starts(tmp_path: Path):
    pairs = tmp_path / "pairs.jsonl"
    records = [PAIRS[0], {"prompt": "q", "rejected": "a"}]
    pairs.write_text("".join(json.dumps(record) + "\n" for record in records))
    option = f"trainer.options.pairs={pairs}"
    result = tunix(tmp_path, "run", *TINY, "--trainer", "dpo", "--set", option)
    assert result.returncode != 0
    assert f"{pairs}:2: field 'chosen': is required" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "runs").exists()


def test_a_run_loads_the_model_once_and_the_round_trip_once(tmp_path: Path):
    """Baseline, training and evaluation share one load of the base model (the trained
    model stays in memory after its export); packaging reads the export back once, on
    purpose. The bundle's model/ is the run's own files, hard-linked, without safetensors."""
    result = tunix(tmp_path, "run", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    loads = [line for line in (run / "run.log").read_text().splitlines() if "[load]" in line]
    assert len(loads) == 2, loads
    assert "tiny-gemma3, weights random" in loads[0] and "(round trip)" in loads[1]
    assert not list(run.rglob("*.safetensors"))
    params = sorted(p for p in (run / "model" / "params").rglob("*") if p.is_file())
    linked = run / "submission" / "model" / "params" / params[0].relative_to(run / "model" / "params")
    assert linked.stat().st_ino == params[0].stat().st_ino


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_an_evaluation_during_training_leaves_the_trained_model_unchanged(tmp_path: Path,
                                                                         lora: bool):  # fmt: skip
    """eval.during_training evaluates the model being trained every step and logs it in
    the step's metrics; the model it ends with has the fingerprint of a run without it."""
    plain = [*TINY, "--steps", "3", "--set", "eval.baseline=false", "--stop-after", "train",
             "--set", f"training.lora.enabled={str(lora).lower()}"]  # fmt: skip
    evaluating = [*plain, "--set", "eval.during_training.every=1",
                  "--set", "eval.during_training.limit=2"]  # fmt: skip
    runs = {}
    for name, args in (("plain", plain), ("evaluating", evaluating)):
        result = tunix(tmp_path / name, "run", *args)
        assert result.returncode == 0, result.stderr[-3000:]
        (runs[name],) = (tmp_path / name / "runs").iterdir()
    fingerprints = {name: json.loads((run / "run_manifest.json").read_text())["model_fingerprint"]
                    for name, run in runs.items()}  # fmt: skip
    assert fingerprints["plain"] == fingerprints["evaluating"]
    metrics = [json.loads(line) for line in
               (runs["evaluating"] / "metrics.jsonl").read_text().splitlines()]  # fmt: skip
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert all(0 <= m["eval/ood_accuracy"] <= 1 and 0 <= m["eval/ood_format"] <= 1 for m in metrics)
    plain_metrics = (runs["plain"] / "metrics.jsonl").read_text()
    assert "eval/" not in plain_metrics
    log = (runs["evaluating"] / "run.log").read_text()
    assert "[train] step 3: ood accuracy" in log and "over the first 2 item(s)" in log
