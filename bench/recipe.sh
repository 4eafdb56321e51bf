#!/usr/bin/env bash
# The sweep that chose the default GRPO recipe (issue 19), stage by stage, as it was run on the 2-core machine
# (2026-12-04), then the three seeds of the chosen recipe, the transfer to three other tasks and the control runs.
# Each stage is a Hydra multirun; its summary.md (final accuracy, gain, seconds per job) is written at the sweep
# root. The figures, and which stage ran beside what, are in bench/README.md ("The default recipe").
#
#   bash bench/recipe.sh [STAGE...]      # stages: temperature prompts dynamic lora full seeds30 steps40 groups
#                                        #         seeds transfer controls
#                                        # (all of them by default; hours on 2 cores)
# Environment: OUT (default bench/out/recipe) holds one directory per stage.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-bench/out/recipe}"
# The sweep stages train only; the baseline (45.8% on the 96 held-out questions, at 16 and at 40 new tokens)
# is the same for every job, so each is evaluated once, after training.
SWEEP=(save_model=false eval.baseline=false)

stage() {
    local name=$1
    shift
    echo "== $name: python run_pipeline.py -m $*"
    python run_pipeline.py -m "output_dir=$OUT/$name" "$@"
}

run_stage() {
    case "$1" in
        # 1. Sampling temperature, completions per prompt (16 completions a step: 1 prompt x 16 or 4 x 4) and the
        #    learning rate, 20 steps, at the former defaults otherwise (40 tokens, full fine-tuning).
        temperature) stage temperature "${SWEEP[@]}" train.max_steps=20 train.temperature=0.7,1.0 \
            train.per_device_train_batch_size=16 train.num_generations=16,4 train.learning_rate=2e-5,5e-5 ;;
        # 2. Prompts per step at temperature 0.7, 30 steps: 16 or 32 completions, 4 or 8 per prompt.
        prompts) stage prompts "${SWEEP[@]}" train.max_steps=30 train.temperature=0.7 \
            train.per_device_train_batch_size=16,32 train.num_generations=4,8 ;;
        # 3. Dynamic sampling (flat groups dropped and refilled, up to 3 extra rounds), 4 x 4, 24 tokens.
        dynamic) stage dynamic "${SWEEP[@]}" train.max_steps=40 train.max_completion_length=24 train.num_generations=4 \
            train.dynamic_sampling=true train.temperature=0.7,0.9 train.per_device_train_batch_size=16,32 ;;
        # 4. LoRA (r 16) at two learning rates; 4 prompts x 4 completions, temperature 0.8, 16 tokens.
        lora) stage lora "${SWEEP[@]}" train.max_steps=30 train.max_completion_length=16 train.num_generations=4 \
            train.per_device_train_batch_size=16 \
            train.temperature=0.8 model.lora.enabled=true train.learning_rate=2e-4,5e-4 ;;
        # 5. The same with full fine-tuning.
        full) stage full "${SWEEP[@]}" train.max_steps=30 train.max_completion_length=16 train.num_generations=4 \
            train.per_device_train_batch_size=16 \
            train.temperature=0.8 model.lora.enabled=false train.learning_rate=2e-5,4e-5 ;;
        # 6. The former default (4 x 4, 30 steps) over three seeds, with the baseline, one job at a time on the idle
        #    machine; then 10 steps more (still 4 x 4).
        seeds30) stage seeds30 save_model=false seed=0,1,2 train.max_steps=30 train.num_generations=4 \
            train.per_device_train_batch_size=16 ;;
        steps40) stage steps40 save_model=false seed=0,1,2 train.max_steps=40 train.num_generations=4 \
            train.per_device_train_batch_size=16 ;;
        # 7. Once flat groups cost no training pass (rlvr.train.shared_prefix): groups of 8 (4 questions x 8
        #    completions), 40 and 50 steps, on the seed the 4 x 4 recipe did worst on.
        groups) stage groups save_model=false eval.baseline=false seed=2 train.num_generations=8 \
            train.per_device_train_batch_size=32 train.max_steps=40,50 ;;
        # 8. The chosen recipe, now the default (4 x 8, 50 steps): three seeds exactly as a user runs it.
        seeds) stage seeds seed=0,1,2 ;;
        # 9. The same defaults on three other reasoning-gym tasks, by name only.
        transfer) stage transfer save_model=false data.task=products,letter_counting,basic_arithmetic ;;
        # 10. The control runs beside the real one (README: "Control runs: is it the verifier?").
        controls) stage controls save_model=false control=none,random_reward,format_only ;;
        *) echo "unknown stage: $1" >&2; exit 2 ;;
    esac
}

for name in "${@:-temperature prompts dynamic lora full seeds30 steps40 groups seeds transfer controls}"; do
    for one in $name; do run_stage "$one"; done
done
