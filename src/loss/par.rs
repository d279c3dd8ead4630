//! Splitting an element-wise kernel over scoped threads (`std::thread::scope`) in contiguous,
//! block-aligned chunks, with results folded in chunk order so the outcome does not depend on
//! which thread finishes first.

use std::ops::Range;

/// Fewest elements worth a thread of their own: below this many per thread a kernel uses fewer
/// threads than asked, because spawning one (~10 µs) costs more than the work it would take over.
pub const MIN_ELEMS_PER_THREAD: usize = 1 << 15;

/// Length of the blocks that kernels sum on their own before adding into their running total.
/// Two-level summation keeps the f64 rounding error of a 16 M-element mean near 1e-15 relative,
/// and chunk boundaries fall on block boundaries, so every thread count forms identical block
/// sums and differs only in how the per-thread totals are added.
pub(super) const BLOCK: usize = 1024;

/// `threads`, with 0 read as "all available cores".
pub(super) fn resolve_threads(threads: usize) -> usize {
    if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads }
}

/// Chunk length for `n` elements over at most `threads` threads: a multiple of [`BLOCK`].
fn chunk_len(n: usize, threads: usize) -> usize {
    let t = resolve_threads(threads).min(n.div_ceil(MIN_ELEMS_PER_THREAD)).max(1);
    n.div_ceil(t).div_ceil(BLOCK).max(1) * BLOCK
}

/// Splits an optional gradient slice after `k` elements (`k` ≤ its length, checked by callers).
fn split(g: Option<&mut [f32]>, k: usize) -> (Option<&mut [f32]>, Option<&mut [f32]>) {
    match g {
        Some(g) => {
            let (a, b) = g.split_at_mut(k);
            (Some(a), Some(b))
        }
        None => (None, None),
    }
}

/// Runs `f(range, grad_part)` over consecutive ranges covering `0..n` (the matching piece of
/// `grad`, whose length must be `n`, goes with each range) and hands the results to `fold` in
/// range order. The first range runs on the calling thread.
pub(super) fn for_each_chunk<R, F>(n: usize, threads: usize, grad: Option<&mut [f32]>, f: F, mut fold: impl FnMut(R))
where
    R: Send,
    F: Fn(Range<usize>, Option<&mut [f32]>) -> R + Sync,
{
    let chunk = chunk_len(n, threads);
    if chunk >= n {
        fold(f(0..n, grad));
        return;
    }
    std::thread::scope(|s| {
        let f = &f;
        let (first, mut rest) = split(grad, chunk);
        let mut handles = Vec::with_capacity(n.div_ceil(chunk));
        let mut start = chunk;
        while start < n {
            let end = (start + chunk).min(n);
            let (g, tail) = split(rest, end - start);
            rest = tail;
            handles.push(s.spawn(move || f(start..end, g)));
            start = end;
        }
        fold(f(0..chunk, first));
        for h in handles {
            match h.join() {
                Ok(r) => fold(r),
                // Only a bug in a kernel can get here; re-raise it where the caller can see it.
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
    });
}
