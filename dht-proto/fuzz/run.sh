#!/bin/sh
# Runs fuzz targets one after another, each for RUNS executions, at the lowest CPU
# priority, one libFuzzer job at a time. Run from dht-proto/:
#   fuzz/run.sh 10000000                    # every target
#   fuzz/run.sh 1000000 request response    # some
#   SANITIZER=none fuzz/run.sh 10000000     # without AddressSanitizer (about 2x faster)
# New inputs go to fuzz/corpus/<target>; fuzz/seeds/<target> is only read. Each run's
# libFuzzer output is kept in fuzz/logs/<target>.log (not committed).
set -eu
# The whole script is one block, read before it runs, so editing this file during a run
# cannot derail that run.
{
runs=${1:?usage: fuzz/run.sh RUNS [TARGET...]}
shift
targets=${*:-$(cargo +nightly fuzz list)}
sanitizer=${SANITIZER:-address}
mkdir -p fuzz/logs
CARGO_BUILD_JOBS=1 nice -n 19 cargo +nightly fuzz build -s "$sanitizer"
for t in $targets; do
    mkdir -p "fuzz/corpus/$t"
    start=$(date -u +%FT%TZ)
    nice -n 19 cargo +nightly fuzz run -s "$sanitizer" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -runs="$runs" -jobs=1 -print_final_stats=1 >/dev/null 2>&1 || true
    # With -jobs, libFuzzer writes the job's output to fuzz-0.log in the current directory.
    mv fuzz-0.log "fuzz/logs/$t.log"
    end=$(date -u +%FT%TZ)
    done_line=$(grep -E "cov:" "fuzz/logs/$t.log" | tail -1 | sed -E "s/.*(cov: [0-9]+ ft: [0-9]+ corp: [^ ]+).*/\1/" || true)
    units=$(grep -E 'stat::number_of_executed_units' "fuzz/logs/$t.log" | awk '{print $2}' || true)
    secs=$(grep -E '^Done [0-9]+ runs in' "fuzz/logs/$t.log" | awk '{print $5}' || true)
    crash=$(grep -cE 'ERROR: libFuzzer|panicked|SUMMARY: AddressSanitizer' "fuzz/logs/$t.log" || true)
    echo "$t sanitizer=$sanitizer start=$start end=$end execs=$units seconds=$secs crashes=$crash | $done_line"
done
exit 0
}
