#!/usr/bin/env bash
# Compares two builds of the server on a noisy machine: runs the bench against BEFORE and AFTER
# in turn, CYCLES times, and prints each run and the ratio of each "after" to the "before" of
# its cycle (their median is steadier than the means when the machine drifts).
#
#   crates/bench/alternate.sh BEFORE_BIN AFTER_BIN "BEFORE_ARGS" "AFTER_ARGS" [CYCLES]
#
# e.g. the auto top-up figure (the build before it has no rules, so gets none):
#   crates/bench/alternate.sh /tmp/before/bursar target/release/bursar \
#     "--profile spend --seconds 20" "--profile spend --seconds 20 --topup-rules 100 --topup-gap 80"
set -euo pipefail
before_bin=$1 after_bin=$2 before_args=$3 after_args=$4 cycles=${5:-4}
bench=${BENCH:-target/release/bursar-bench}
spends() { # bin args...
  local bin=$1
  shift
  # shellcheck disable=SC2068 # the arguments are meant to split into words
  "$bench" --bursar "$bin" --out /tmp/bursar-alternate.json $@ 2>&1 |
    sed -n 's/.*acknowledged spends: \([0-9]*\)\/s.*/\1/p'
}
ratios=()
for cycle in $(seq 1 "$cycles"); do
  b=$(spends "$before_bin" $before_args)
  a=$(spends "$after_bin" $after_args)
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }')
  ratios+=("$ratio")
  echo "cycle $cycle: before $b/s, after $a/s, ratio $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n |
  awk '{ r[NR] = $1 } END { m = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2; printf "median ratio %.3f over %d cycles\n", m, NR }'
