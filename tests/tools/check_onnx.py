#!/usr/bin/env python3
"""Validate the ONNX models written by voxmask's Rust ONNX writer with the reference tooling.

How it was used (onnx 1.23.2, onnxruntime 1.32.0, numpy 2.4.6, tract 0.23.9;
`pip install onnx onnxruntime numpy tract`, tract optional):

    VOXMASK_ONNX_DUMP_DIR=/tmp/voxmask_onnx \
        cargo test --test onnx_writer -- --ignored dump_models_for_python_check
    python3 tests/tools/check_onnx.py /tmp/voxmask_onnx

For every *.onnx file in the directory it
  1. runs onnx.checker.check_model(full_check=True) (schema, opset and strict shape inference),
  2. checks IR version 8, opset {"": 17}, producer "voxmask", the `spec`/`mask` interface
     [batch, frames, bins] and that shape inference keeps the output's symbolic axes,
  3. runs the model in ONNX Runtime (CPU) for several batch sizes and frame counts and compares it
     with an independent numpy reference chosen by the `voxmask.test.kind` metadata:
       fixed_mask: mask[b,t,f] = logits[f] (logits taken from metadata, not from the file);
       tiny_conv:  weights regenerated here from the seed with the same xorshift64 stream as
                   `TinyConv::new`, then a direct zero-padded convolution;
       identity:   mask == spec,
     The same comparison is repeated with tract's Python bindings when `tract` is importable,
  4. for tiny_conv, perturbs single frames of the input and checks in ONNX Runtime's output that
     frame t depends on exactly frames t-past ..= t+lookahead.
Exit status 0 if everything passed.
"""

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

try:  # optional: tract is the pure-Rust fallback backend; `pip install tract` (0.23.9 was used)
    import tract
except ImportError:
    tract = None

# Logits are float32 arithmetic done in a different order than numpy's; the values are O(1).
ATOL = 1e-5
RTOL = 1e-5

MASK64 = (1 << 64) - 1


def xorshift_stream(seed):
    """Mirror of `XorShift64` in src/model/onnx_writer.rs: splitmix64 scramble, then 13/7/17."""
    z = (seed + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    x = z if z != 0 else 0x9E3779B97F4A7C15
    while True:
        x ^= (x << 13) & MASK64
        x ^= x >> 7
        x ^= (x << 17) & MASK64
        k = x >> 40
        yield np.float32(2.0 * k / (1 << 24) - 1.0)  # exact in float32 (24-bit mantissa)


def tiny_conv_weights(seed, past, look, hidden=4, kw=3, wscale=0.5, bscale=0.1):
    rng = xorshift_stream(seed)
    kh = past + 1 + look

    def draw(n, scale):
        return np.array([next(rng) * np.float32(scale) for _ in range(n)], dtype=np.float32)

    w1 = draw(hidden * kh * kw, wscale).reshape(hidden, kh, kw)
    b1 = draw(hidden, bscale)
    w2 = draw(hidden, wscale)
    b2 = draw(1, bscale)
    return w1, b1, w2, b2


def tiny_conv_reference(spec, seed, past, look):
    w1, b1, w2, b2 = tiny_conv_weights(seed, past, look)
    hidden, kh, kw = w1.shape
    batch, frames, bins = spec.shape
    x = np.pad(spec.astype(np.float64), ((0, 0), (past, look), (kw // 2, kw // 2)))
    h = np.zeros((batch, hidden, frames, bins))
    for c in range(hidden):
        h[:, c] = b1[c]
        for i in range(kh):
            for j in range(kw):
                h[:, c] += w1[c, i, j] * x[:, i:i + frames, j:j + bins]
    h = np.maximum(h, 0.0)
    return (np.einsum("c,bctf->btf", w2.astype(np.float64), h) + b2[0]).astype(np.float32)


def dim_list(value_info):
    return [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in value_info.type.tensor_type.shape.dim]


def check(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    md = {p.key: p.value for p in model.metadata_props}
    kind = md.get("voxmask.test.kind")
    assert model.ir_version == 8, model.ir_version
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert model.producer_name == "voxmask"
    g = model.graph
    assert [i.name for i in g.input] == ["spec"] and [o.name for o in g.output] == ["mask"]
    bins = dim_list(g.input[0])[2]
    assert dim_list(g.input[0]) == ["batch", "frames", bins], dim_list(g.input[0])
    assert dim_list(g.output[0]) == ["batch", "frames", bins], dim_list(g.output[0])
    assert g.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert dim_list(inferred.graph.output[0]) == ["batch", "frames", bins]

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    runtimes = {"ort": lambda x: sess.run(["mask"], {"spec": x})[0]}
    if tract is not None:
        typed = tract.onnx().load(str(path)).into_model()
        assert str(typed.input_fact(0)) == f"batch,frames,{bins},f32", typed.input_fact(0)
        assert "onnx.metadata_props.voxmask.test.kind" in typed.property_keys()
        runnable = typed.into_runnable()
        runtimes["tract"] = lambda x: runnable.run([x])[0].to_numpy()
    rng = np.random.default_rng(0)
    worst = {name: 0.0 for name in runtimes}
    for batch, frames in [(1, 1), (1, 7), (2, 33), (3, 4)]:
        spec = rng.uniform(0.0, 3.0, size=(batch, frames, bins)).astype(np.float32)
        if kind == "fixed_mask":
            logits = np.array([float(v) for v in md["voxmask.test.logits"].split(",")], np.float32)
            want = np.broadcast_to(logits, spec.shape)
        elif kind == "tiny_conv":
            seed, past, look = (int(md[f"voxmask.test.{k}"]) for k in ("seed", "past", "lookahead"))
            want = tiny_conv_reference(spec, seed, past, look)
        elif kind == "identity":
            want = spec
        else:
            raise AssertionError(f"unknown voxmask.test.kind {kind!r}")
        for name, run in runtimes.items():
            got = run(spec)
            assert got.shape == spec.shape and got.dtype == np.float32, (name, got.shape, got.dtype)
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=name)
            worst[name] = max(worst[name], float(np.max(np.abs(got - want))))

    if kind == "tiny_conv":
        frames, t = 16, 8
        spec = rng.uniform(0.0, 3.0, size=(1, frames, bins)).astype(np.float32)
        (base,) = sess.run(["mask"], {"spec": spec})
        depends = []
        for s in range(frames):
            p = spec.copy()
            p[0, s, :] += 5.0
            (out,) = sess.run(["mask"], {"spec": p})
            if np.any(out[0, t] != base[0, t]):
                depends.append(s)
        want = list(range(t - past, t + look + 1))
        assert depends == want, f"frame {t} depends on {depends}, want {want}"

    extra = f" receptive field t-{past}..t+{look} ok" if kind == "tiny_conv" else ""
    errs = " ".join(f"max|{name}-ref|={w:.2e}" for name, w in worst.items())
    print(f"PASS {path.name}: kind={kind} bins={bins} {errs}{extra}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    paths = sorted(Path(sys.argv[1]).glob("*.onnx"))
    if not paths:
        sys.exit(f"no .onnx files in {sys.argv[1]}")
    failed = 0
    for p in paths:
        try:
            check(p)
        except Exception as e:  # report every model, then fail
            failed += 1
            print(f"FAIL {p.name}: {type(e).__name__}: {e}")
    print(f"{len(paths) - failed}/{len(paths)} models passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
