#!/usr/bin/env bash
# Live soak (a bench, not a test): `voxmask live` for DURATION seconds (default 600) against a
# JACK dummy server at 48 kHz with 256-frame periods, while `voxmask separate` separates a long
# file over and over beside it. Prints output underruns after the warm-up, the heard latency,
# every change of the output buffer, whether the inference thread got real-time scheduling, and
# the share of one core the live process used.
#
#   benches/live_soak.sh            # 10 minutes
#   benches/live_soak.sh 60 --buffer-ms 40    # 1 minute, fixed 40 ms buffer
#
# Needs jackd (jackd2), python3 and a build with `--features live`.
set -euo pipefail
DURATION=${1:-600}
shift || true
cd "$(dirname "$0")/.."
cargo build --release --features live --quiet
BIN=$PWD/target/release/voxmask
WORK=$(mktemp -d)
NAME=voxmask-soak-$$
LOAD=""
cleanup() {
    # The load loop first, then the separation it is running, so nothing writes into $WORK.
    [ -n "$LOAD" ] && { kill -STOP "$LOAD" 2>/dev/null; pkill -P "$LOAD" 2>/dev/null; kill -KILL "$LOAD" 2>/dev/null; } || true
    kill "$JACKD" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
JACK_NO_AUDIO_RESERVATION=1 jackd -n "$NAME" -d dummy -r 48000 -p 256 >"$WORK/jackd.log" 2>&1 &
JACKD=$!
trap cleanup EXIT
sleep 2

# The competing load: a 5-minute stereo file separated in a loop.
python3 - "$WORK/long.wav" <<'PY'
import array, random, sys, wave
w = wave.open(sys.argv[1], "wb"); w.setnchannels(2); w.setsampwidth(2); w.setframerate(44100)
random.seed(1); block = array.array("h", (random.randint(-8000, 8000) for _ in range(2 * 44100)))
for _ in range(300): w.writeframes(block.tobytes())
w.close()
PY
( while true; do "$BIN" separate -q --overwrite --threads 1 "$WORK/long.wav" -o "$WORK/load" || true; done ) &
LOAD=$!

echo "live soak: ${DURATION} s, JACK dummy 48 kHz / 256, competing load: voxmask separate of a 5-minute file in a loop" >&2
JACK_DEFAULT_SERVER=$NAME /usr/bin/time -f "%U %S %e" -o "$WORK/time" \
    "$BIN" live --host jack --json --quiet --duration "$DURATION" "$@" </dev/null >"$WORK/summary.json"

python3 - "$WORK/summary.json" "$WORK/time" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); user, system, wall = map(float, open(sys.argv[2]).read().split()[-3:])
b = s["buffer"]
print(f"end                        {s['end']} after {s['audio_seconds']:.1f} s of audio")
print(f"output underruns           {s['xrun_detail']['output_underruns']} ({s['xrun_detail']['output_underruns_after_warmup']} after warm-up); input overruns {s['xrun_detail']['input_overruns']}; server xruns {s['xrun_detail']['server_xruns']}")
print(f"heard latency              {s['total_latency_ms']:.1f} ms = engine {s['latency_ms']:.1f} + buffer {s['buffer_ms']:.1f} + one period")
print(f"buffer                     {'adaptive' if b['adaptive'] else 'fixed'}, start {b['start_ms']:.1f} ms, {len(b['changes'])} change(s): " + ", ".join(f"{c['buffer_ms']:.1f} ms at {c['at_seconds']:.1f} s" for c in b["changes"]))
print(f"real-time scheduling       {s['realtime']['granted']} ({s['realtime']['detail']})")
print(f"CPU                        {100 * (user + system) / wall:.1f} % of one core (process); engine {100 * s['cpu_load']:.1f} %")
print(f"model per block            p50 {s['model_ms_per_block_p50']:.2f} ms, p99 {s['model_ms_per_block_p99']:.2f} ms of {s['block_budget_ms']:.1f} ms")
print(f"input frames               {s['input_frames_delivered']} delivered")
PY
