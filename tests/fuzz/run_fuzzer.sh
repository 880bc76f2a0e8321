#!/usr/bin/env bash
# run_fuzzer.sh FUZZER SEED_DIR SECONDS — a bounded libFuzzer run over a copy of the seed corpus.
# Fails on any crash, leak, timeout or sanitizer report; the reproducer is kept in the build dir.
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/hag-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$seeds"/. "$work/"
artifacts=$(dirname "$fuzzer")/$(basename "$fuzzer")-artifacts/
mkdir -p "$artifacts"
# libFuzzer's default exit code for a finding is 77, which meson reads as "skipped": make every
# finding (crash, leak, timeout, out of memory) a failure. Not exec'd: the EXIT trap must remove
# the corpus copy.
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -artifact_prefix="$artifacts" -print_final_stats=1 "$work"
