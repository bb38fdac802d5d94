#!/usr/bin/env bash
# Compares two builds of the server on a noisy machine: runs the bench against BEFORE and AFTER
# in turn, CYCLES times, and prints each run and the ratio of each "after" to the "before" of
# its cycle (their median is steadier than the means when the machine drifts). Every other
# cycle runs "after" first, so a run's place in the cycle favours neither build.
#
#   crates/bench/alternate.sh BEFORE_BIN AFTER_BIN "BEFORE_ARGS" "AFTER_ARGS" [CYCLES]
#
# With TOGETHER=1 each cycle runs the two at the same time instead, each against its own server
# and with its own clients, their loads started at the same instant: the machine's drift then
# touches both alike. Give each half the clients (e.g. --concurrency 128), since they share it.
#
# e.g. the auto top-up figure (the build before it has no rules, so gets none):
#   crates/bench/alternate.sh /tmp/before/bursar target/release/bursar \
#     "--profile spend --seconds 20" "--profile spend --seconds 20 --topup-rules 100 --topup-gap 80"
set -euo pipefail
before_bin=$1 after_bin=$2 before_args=$3 after_args=$4 cycles=${5:-4}
bench=${BENCH:-target/release/bursar-bench}
spends() { # out bin args...
  local out=$1 bin=$2
  shift 2
  # shellcheck disable=SC2068 # the arguments are meant to split into words
  "$bench" --bursar "$bin" --out "$out" $@ 2>&1 |
    sed -n -e 's/.*acknowledged spends: \([0-9]*\)\/s.*/\1/p' -e '/^warning:/w /dev/stderr'
}
ratios=()
for cycle in $(seq 1 "$cycles"); do
  if [[ -n ${TOGETHER:-} ]]; then
    # Long enough for both setups (a thousand registrations each, on a shared machine).
    at=$(($(date +%s%3N) + ${SETUP_MS:-90000}))
    spends /tmp/bursar-before.json "$before_bin" $before_args --start-at-unix-ms "$at" >/tmp/bursar-before.spends &
    spends /tmp/bursar-after.json "$after_bin" $after_args --start-at-unix-ms "$at" >/tmp/bursar-after.spends &
    wait
    b=$(cat /tmp/bursar-before.spends) a=$(cat /tmp/bursar-after.spends)
  elif ((cycle % 2)); then
    b=$(spends /tmp/bursar-alternate.json "$before_bin" $before_args)
    a=$(spends /tmp/bursar-alternate.json "$after_bin" $after_args)
  else
    a=$(spends /tmp/bursar-alternate.json "$after_bin" $after_args)
    b=$(spends /tmp/bursar-alternate.json "$before_bin" $before_args)
  fi
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }')
  ratios+=("$ratio")
  echo "cycle $cycle: before $b/s, after $a/s, ratio $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n |
  awk '{ r[NR] = $1 } END { m = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2; printf "median ratio %.3f over %d cycles\n", m, NR }'
