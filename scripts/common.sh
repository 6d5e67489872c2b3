# Shared by the scripts in scripts/<method>/ and scripts/tables/ (sourced, not run): settings read from the
# environment, the output folders of each protocol, and one job runner that skips finished jobs and
# resumes interrupted ones. A method's own settings (trainer, configs) come from scripts/<method>/method.sh.
#
# A job's folder is named by the protocol, dataset, shots, trainer, config name + TAG and seed; train.py
# records in it the run it holds (run.json) and refuses to reuse it for another one (README, "Output folders").
# So, for each job:
#   - its results exist and run.json records the same train.py arguments (config files and evaluated weights
#     unchanged): skipped;
#   - its folder holds an interrupted run of the same job: train.py resumes it exactly;
#   - its folder holds a run of other settings (another OPTS, EPOCHS, edited config, retrained model):
#     train.py stops with one line and the sweep stops. Set TAG to keep runs of other settings apart, or
#     RESTART=1 to start the job over in its folder (its old files are moved to <folder>/replaced/<time>/).
#
# Environment (all optional; relative paths are taken from the repository root):
#   DATA       dataset root                                   (default: data)
#   OUTPUT     output root                                    (default: output)
#   CONFIGS    config root holding datasets/ and trainers/    (default: configs)
#   CFG        method config, configs/trainers/<T>/<CFG>.yaml (default: the method's paper config)
#   SHOTS      training shots per class                       (default: 16)
#   EPOCHS     training epochs (OPTIM.MAX_EPOCH), and the checkpoint epoch the evaluations load
#   LOADEP     checkpoint epoch the evaluations load          (default: EPOCHS, else the config's MAX_EPOCH)
#   OPTS       extra KEY VALUE config pairs, quoted as in a shell: OPTS='TRAINER.COOP.CTX_INIT "a photo"'
#   TAG        suffix of the config name in output folders, to keep runs with other OPTS apart
#   FORCE=1    run a job even when its results exist (a finished training run of the same settings is
#              tested again from its last checkpoint; an evaluation is done again)
#   RESTART=1  start every job over in its folder, finished or not (train.py --start-over: the folder's
#              files are moved to <folder>/replaced/<time>/, nothing is deleted)
#   DRY_RUN=1  print the train.py commands instead of running them
#   PYTHON     interpreter (default: .venv/bin/python when present, else python)
#   NPROC      processes (GPUs) per job: above 1, train.py runs under torch.distributed.run (torchrun)
#   ZS_TRAINER zero-shot scripts: ZeroshotCLIP (default) or ZeroshotCLIP2 (prompt ensemble)
# Sweeps (scripts/tables/) also read SEEDS (default: "1 2 3") and DATASETS (default: the table's datasets).

# METHOD, TRAINER, CONFIG_DIR and the *_CFG settings come from method.sh; the sweeps read the dataset lists:
# shellcheck shell=bash disable=SC2034,SC2153
set -euo pipefail

PROMPTLEARN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT_NAME="$0"
cd "$PROMPTLEARN_ROOT"

DATA="${DATA:-data}"
OUTPUT="${OUTPUT:-output}"
CONFIGS="${CONFIGS:-configs}"
CFG="${CFG:-}"
SHOTS="${SHOTS:-16}"
EPOCHS="${EPOCHS:-}"
LOADEP="${LOADEP:-}"
OPTS="${OPTS:-}"
TAG="${TAG:-}"
FORCE="${FORCE:-0}"
RESTART="${RESTART:-0}"
DRY_RUN="${DRY_RUN:-0}"
NPROC="${NPROC:-1}"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi

ALL_METHODS=(zsclip slip coop cocoop maple gopro)
B2N_DATASETS="imagenet caltech101 oxford_pets stanford_cars oxford_flowers food101 fgvc_aircraft sun397 dtd eurosat ucf101"
XD_TARGETS="caltech101 oxford_pets stanford_cars oxford_flowers food101 fgvc_aircraft sun397 dtd eurosat ucf101"
DG_TARGETS="imagenetv2 imagenet_sketch imagenet_a imagenet_r"
SEEDS="${SEEDS:-1 2 3}"

die() {
  echo "error: $*" >&2
  exit 1
}

usage() {
  echo "usage: bash $SCRIPT_NAME $*" >&2
  exit 2
}

check_count() {  # NAME VALUE: a non-negative integer
  [[ "$2" =~ ^[0-9]+$ ]] || die "$1 must be a non-negative integer, got \"$2\""
}

check_settings() {
  check_count SHOTS "$SHOTS"
  check_count NPROC "$NPROC"
  [ -z "$EPOCHS" ] || check_count EPOCHS "$EPOCHS"
  [ -z "$LOADEP" ] || check_count LOADEP "$LOADEP"
}

yaml_stems() {  # DIR: the config names in DIR
  local names=() file
  for file in "$1"/*.yaml; do
    [ -e "$file" ] && names+=("$(basename "$file" .yaml)")
  done
  echo "${names[*]:-none}"
}

trainer_config() {  # CFG: path of the method's config file
  local file="$CONFIGS/trainers/$CONFIG_DIR/$1.yaml"
  [ -f "$file" ] || die "config not found: $file (available in $CONFIGS/trainers/$CONFIG_DIR: $(yaml_stems "$CONFIGS/trainers/$CONFIG_DIR"))"
  echo "$file"
}

dataset_config() {  # DATASET: path of the dataset's config file
  local file="$CONFIGS/datasets/$1.yaml"
  [ -f "$file" ] || die "unknown dataset \"$1\": $file not found (available: $(yaml_stems "$CONFIGS/datasets"))"
  echo "$file"
}

method_cfg() {  # PROTOCOL (b2n|xd|zs) DATASET: the config name a job uses
  if [ -n "$CFG" ]; then
    echo "$CFG"
  elif [ "$1" = b2n ] && [ "$2" = imagenet ] && [ -n "${B2N_CFG_IMAGENET:-}" ]; then
    echo "$B2N_CFG_IMAGENET"
  elif [ "$1" = b2n ]; then
    echo "$B2N_CFG"
  elif [ "$1" = xd ]; then
    echo "$XD_CFG"
  else
    echo "$ZS_CFG"
  fi
}

load_opts() {  # OPTS (and EPOCHS) -> the array EXTRA_OPTS
  EXTRA_OPTS=()
  if [ -n "$OPTS" ]; then
    local words
    words="$("$PYTHON" -m promptlearn.tools.jobs split-opts "$OPTS")"
    [ -z "$words" ] || mapfile -t EXTRA_OPTS <<< "$words"
  fi
  if [ -n "$EPOCHS" ]; then
    EXTRA_OPTS+=(OPTIM.MAX_EPOCH "$EPOCHS")
  fi
}

run_epochs() {  # CONFIG_FILE: the epoch a training run with EXTRA_OPTS ends at
  if [ -n "$EPOCHS" ]; then
    echo "$EPOCHS"
  else
    "$PYTHON" -m promptlearn.tools.jobs max-epoch "$1" "${EXTRA_OPTS[@]}"
  fi
}

load_epoch() {  # CONFIG_FILE: the checkpoint epoch an evaluation loads (the last one of the training)
  if [ -n "$LOADEP" ]; then echo "$LOADEP"; else run_epochs "$1"; fi
}

needs_run() {  # OUT_DIR EPOCH|"" TRAIN.PY-ARGUMENTS...: false (after saying so) when OUT_DIR holds this job's results
  local out_dir="$1" epoch="$2"
  shift 2
  if [ "$FORCE" = 1 ] || [ "$RESTART" = 1 ] || [ ! -f "$out_dir/results.json" ] \
      || ! "$PYTHON" -m promptlearn.tools.jobs has-results "$out_dir" ${epoch:+"$epoch"}; then
    return 0
  fi
  if "$PYTHON" -m promptlearn.tools.jobs same-job "$out_dir" "$@"; then
    echo "Skip: results exist at $out_dir (FORCE=1 runs the job again)"
    return 1
  fi
  echo "Found results at $out_dir made with other arguments, config files or weights: running the job (train.py" \
    "refuses it if the folder's run has other settings: TAG keeps runs apart, RESTART=1 starts the job over)"
  return 0
}

require_model() {  # MODEL_DIR COMMAND: the trained model an evaluation needs
  if [ "$DRY_RUN" != 1 ] && [ ! -d "$1" ]; then
    die "no trained model in $1; train it first: $2"
  fi
}

launch() {  # OUT_DIR TRAIN.PY-ARGUMENTS...: run (or, with DRY_RUN=1, print) one train.py job
  local out_dir="$1" line
  shift
  local args=("$@")
  [ "$RESTART" != 1 ] || args=(--start-over "${args[@]}")
  local cmd=("$PYTHON" train.py "${args[@]}")
  if [ "$NPROC" -gt 1 ]; then
    cmd=("$PYTHON" -m torch.distributed.run --nproc_per_node "$NPROC" train.py "${args[@]}")
  fi
  printf -v line '%q ' "${cmd[@]}"
  if [ "$RESTART" = 1 ] && [ -d "$out_dir" ]; then
    echo "RESTART=1: starting the job in $out_dir over (its files are moved to $out_dir/replaced/<time>/)"
  elif [ "$FORCE" = 1 ] && [ -f "$out_dir/results.json" ]; then
    echo "FORCE=1: running the job in $out_dir again (training resumes from its last checkpoint)"
  elif [ -d "$out_dir" ] && [ ! -f "$out_dir/results.json" ]; then
    echo "Found $out_dir without a finished result: running again (training resumes from its last checkpoint)"
  fi
  if [ "$DRY_RUN" = 1 ]; then
    echo "${line% }"
    return 0
  fi
  echo "Run: ${line% }"
  "${cmd[@]}"
}

# ---------------------------------------------------------------------------------------------------
# Protocols. Folder names follow CoOp/CoCoOp's scripts (base2new/, imagenet/, evaluation/).

prepare_job() {  # PROTOCOL DATASET: check the settings; set the caller's cfg, cfg_file and data_file
  check_settings
  cfg="$(method_cfg "$1" "$2")"
  cfg_file="$(trainer_config "$cfg")"
  data_file="$(dataset_config "$2")"
  load_opts
}

b2n_tail() {  # DATASET CFG SEED
  echo "$1/shots_$SHOTS/$TRAINER/$2$TAG/seed$3"
}

base2new_train() {  # DATASET SEED: train on the base classes (SHOTS shots)
  [ $# -eq 2 ] || usage "DATASET SEED"
  local dataset="$1" seed="$2" cfg cfg_file data_file epoch out args
  check_count SEED "$seed"
  prepare_job b2n "$dataset"
  epoch="$(run_epochs "$cfg_file")"
  out="$OUTPUT/base2new/train_base/$(b2n_tail "$dataset" "$cfg" "$seed")"
  args=(--root "$DATA" --seed "$seed" --trainer "$TRAINER" --dataset-config-file "$data_file"
    --config-file "$cfg_file" --output-dir "$out" "${EXTRA_OPTS[@]}"
    DATASET.NUM_SHOTS "$SHOTS" DATASET.SUBSAMPLE_CLASSES base)
  needs_run "$out" "$epoch" "${args[@]}" || return 0
  launch "$out" "${args[@]}"
}

base2new_test() {  # DATASET SEED: evaluate the base-trained model of the last epoch on the new classes
  [ $# -eq 2 ] || usage "DATASET SEED"
  local dataset="$1" seed="$2" cfg cfg_file data_file epoch tail model_dir out args
  check_count SEED "$seed"
  prepare_job b2n "$dataset"
  epoch="$(load_epoch "$cfg_file")"
  tail="$(b2n_tail "$dataset" "$cfg" "$seed")"
  model_dir="$OUTPUT/base2new/train_base/$tail"
  out="$OUTPUT/base2new/test_new/$tail"
  args=(--root "$DATA" --seed "$seed" --trainer "$TRAINER" --dataset-config-file "$data_file"
    --config-file "$cfg_file" --output-dir "$out" --model-dir "$model_dir" --load-epoch "$epoch" --eval-only
    "${EXTRA_OPTS[@]}" DATASET.NUM_SHOTS "$SHOTS" DATASET.SUBSAMPLE_CLASSES new)
  needs_run "$out" "$epoch" "${args[@]}" || return 0
  require_model "$model_dir" "bash scripts/$METHOD/base2new_train.sh $dataset $seed"
  launch "$out" "${args[@]}"
}

xd_model_dir() {  # CFG SEED: where the ImageNet-trained model of the cross-dataset and DG protocols lives
  echo "$OUTPUT/imagenet/$TRAINER/$1${TAG}_${SHOTS}shots/seed$2"
}

xd_train() {  # SEED: train on ImageNet, all 1,000 classes (SHOTS shots)
  [ $# -eq 1 ] || usage "SEED"
  local seed="$1" cfg cfg_file data_file epoch out args
  check_count SEED "$seed"
  prepare_job xd imagenet
  epoch="$(run_epochs "$cfg_file")"
  out="$(xd_model_dir "$cfg" "$seed")"
  args=(--root "$DATA" --seed "$seed" --trainer "$TRAINER" --dataset-config-file "$data_file"
    --config-file "$cfg_file" --output-dir "$out" "${EXTRA_OPTS[@]}"
    DATASET.NUM_SHOTS "$SHOTS" DATASET.SUBSAMPLE_CLASSES all)
  needs_run "$out" "$epoch" "${args[@]}" || return 0
  launch "$out" "${args[@]}"
}

xd_test() {  # DATASET SEED: evaluate the ImageNet model of the last epoch on DATASET's whole test set
  [ $# -eq 2 ] || usage "DATASET SEED"
  local dataset="$1" seed="$2" cfg cfg_file data_file epoch model_dir out args
  check_count SEED "$seed"
  prepare_job xd "$dataset"
  epoch="$(load_epoch "$cfg_file")"
  model_dir="$(xd_model_dir "$cfg" "$seed")"
  out="$OUTPUT/evaluation/$TRAINER/$cfg${TAG}_${SHOTS}shots/$dataset/seed$seed"
  args=(--root "$DATA" --seed "$seed" --trainer "$TRAINER" --dataset-config-file "$data_file"
    --config-file "$cfg_file" --output-dir "$out" --model-dir "$model_dir" --load-epoch "$epoch" --eval-only
    "${EXTRA_OPTS[@]}" DATASET.SUBSAMPLE_CLASSES all)
  needs_run "$out" "$epoch" "${args[@]}" || return 0
  require_model "$model_dir" "bash scripts/$METHOD/xd_train.sh $seed"
  launch "$out" "${args[@]}"
}

zeroshot() {  # DATASET [base|new|all]: evaluate CLIP without training on the chosen classes' test set
  [ $# -ge 1 ] && [ $# -le 2 ] || usage "DATASET [base|new|all]"
  local dataset="$1" classes="${2:-all}" cfg cfg_file data_file out args
  case "$classes" in
    base | new | all) ;;
    *) usage "DATASET [base|new|all]" ;;
  esac
  prepare_job zs "$dataset"
  out="$OUTPUT/$TRAINER/$cfg$TAG/$classes/$dataset"
  args=(--root "$DATA" --trainer "$TRAINER" --dataset-config-file "$data_file"
    --config-file "$cfg_file" --output-dir "$out" --eval-only "${EXTRA_OPTS[@]}"
    DATASET.SUBSAMPLE_CLASSES "$classes")
  needs_run "$out" "" "${args[@]}" || return 0
  launch "$out" "${args[@]}"
}

# ---------------------------------------------------------------------------------------------------
# Sweeps (scripts/tables/).

select_methods() {  # [METHOD...] -> the array METHODS (default: every method)
  if [ $# -eq 0 ]; then METHODS=("${ALL_METHODS[@]}"); else METHODS=("$@"); fi
  local method
  for method in "${METHODS[@]}"; do
    [ -f "scripts/$method/method.sh" ] || die "unknown method \"$method\" (choose from: ${ALL_METHODS[*]})"
  done
}

read_list() {  # NAME VALUE: VALUE's words into the array LIST, or an error when there are none
  read -ra LIST <<< "$2"
  [ "${#LIST[@]}" -gt 0 ] || die "$1 is empty"
}

run_script() {  # METHOD SCRIPT ARGUMENTS...
  local method="$1" script="$2"
  shift 2
  echo "==> $method/$script $*"
  bash "scripts/$method/$script" "$@"
}

transfer_sweep() {  # DEFAULT_TARGETS [METHOD...]: ImageNet models, then every target (cross-dataset, DG)
  local default_targets="$1" method seed dataset targets seeds
  shift
  select_methods "$@"
  read_list DATASETS "${DATASETS:-$default_targets}"
  targets=("${LIST[@]}")
  read_list SEEDS "$SEEDS"
  seeds=("${LIST[@]}")
  for method in "${METHODS[@]}"; do
    if [ "$method" = zsclip ]; then
      for dataset in imagenet "${targets[@]}"; do
        run_script zsclip zeroshot.sh "$dataset" all
      done
      continue
    fi
    for seed in "${seeds[@]}"; do
      run_script "$method" xd_train.sh "$seed"
      for dataset in "${targets[@]}"; do
        run_script "$method" xd_test.sh "$dataset" "$seed"
      done
    done
  done
}
