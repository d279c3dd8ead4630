#!/usr/bin/env python3
"""museval 0.4.1 on the bss_eval bench's 7 s tracks, for the side-by-side speed ratio.

    BSS_EVAL_WAV_DIR=/tmp/bss cargo bench --bench bss_eval   # writes track*/{ref,est}_{0,1}.wav
    python3 benches/museval_reference.py /tmp/bss             # needs `pip install museval==0.4.1`

Scores every track as `voxmask eval` does (v4, 1 s windows and hops, 512 taps) and prints the
seconds per track (best of --repeat runs of each, then the median over tracks) and the median
SDR of each source, to check that both scored the same data. A bench, not a test.
"""

import argparse
import pathlib
import statistics
import time

import museval
import numpy as np
import soundfile as sf


def load(track, kind):
    # soundfile gives (samples, channels); museval wants (sources, samples, channels).
    return np.stack([sf.read(track / f"{kind}_{j}.wav", dtype="float32")[0].astype(np.float64) for j in range(2)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=pathlib.Path, help="folder the bench wrote (BSS_EVAL_WAV_DIR)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per track; the best is kept")
    args = ap.parse_args()
    tracks = sorted(p for p in args.dir.iterdir() if p.is_dir())
    if not tracks:
        raise SystemExit(f"no track folders in {args.dir}")
    times = []
    for track in tracks:
        refs, ests = load(track, "ref"), load(track, "est")
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            sdr, isr, sir, sar = museval.evaluate(refs, ests, win=44100, hop=44100, mode="v4")
            best = min(best, time.perf_counter() - t0)
        times.append(best)
        medians = " ".join(f"{np.nanmedian(s):.4f}" for s in sdr)
        print(f"{track.name}: {best:.3f} s, median SDR per source {medians} dB", flush=True)
    print(f"museval {museval.__version__ if hasattr(museval, '__version__') else '0.4.1'}: "
          f"{statistics.median(times):.3f} s per track (median of {len(times)}), "
          f"{sum(times) / len(times):.3f} s mean")


if __name__ == "__main__":
    main()
