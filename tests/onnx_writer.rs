//! Tests for the ONNX writer: wire-level encoding of the hand-written protobuf types against
//! bytes worked out by hand from onnx.proto's field numbers, round trips through `prost`
//! decoding, graph checks, atomic writes, and the tiny test models.
//!
//! Runtime validation (onnx.checker full check, ONNX Runtime vs numpy) lives in
//! `tests/tools/check_onnx.py`, fed by the ignored `dump_models_for_python_check` test below.

use prost::Message;
use voxmask::Error;
use voxmask::model::onnx_proto::value_infos;
use voxmask::model::onnx_proto::{
    AttributeProto, ModelProto, OperatorSetIdProto, TensorProto, ValueInfoProto, attribute_proto::AttributeType,
    tensor_proto::DataType, tensor_shape_proto::Dimension, tensor_shape_proto::dimension, type_proto,
};
use voxmask::model::onnx_writer::{Attr, Conv2d, Dim, GraphBuilder};
use voxmask::model::test_models::{TinyConv, fixed_mask_model, tiny_conv_model};

/// Initializers are stored bit-exactly (raw little-endian), so decoded values must be identical.
const EXACT: f32 = 0.0;

fn decode(bytes: &[u8]) -> ModelProto {
    ModelProto::decode(bytes).expect("writer output must decode")
}

fn meta(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Shape of a FLOAT tensor value info as `Dim`s; fails the test on anything else.
fn dims_of(v: &ValueInfoProto) -> Vec<Dim> {
    let ty = v.r#type.as_ref().expect("value info has a type");
    let Some(type_proto::Value::TensorType(t)) = &ty.value else { panic!("not a tensor type") };
    assert_eq!(t.elem_type, DataType::Float as i32, "{:?} must be FLOAT", v.name);
    let shape = t.shape.as_ref().expect("tensor type has a shape");
    shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(dimension::Value::DimValue(n)) => Dim::Fixed(*n),
            Some(dimension::Value::DimParam(s)) => Dim::Named(s.clone()),
            None => panic!("unknown dim in {:?}", v.name),
        })
        .collect()
}

fn initializer<'a>(m: &'a ModelProto, name: &str) -> &'a TensorProto {
    let g = m.graph.as_ref().expect("graph");
    g.initializer.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no initializer {name}"))
}

fn attr<'a>(a: &'a [AttributeProto], name: &str) -> &'a AttributeProto {
    a.iter().find(|x| x.name == name).unwrap_or_else(|| panic!("no attr {name}"))
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "{what}[{i}]: got {g}, want {w}, tol {tol}");
    }
}

// ---- wire format, checked against hand-encoded bytes (tag = field_number << 3 | wire_type) ----

#[test]
fn wire_encoding_matches_onnx_proto_field_numbers() {
    // OperatorSetIdProto: domain = 1 (len), version = 2 (varint). The empty default domain is
    // not written (readers default it to "").
    let opset = OperatorSetIdProto { domain: "ai.x".into(), version: 17 };
    assert_eq!(opset.encode_to_vec(), [0x0a, 4, b'a', b'i', b'.', b'x', 0x10, 17]);
    let opset = OperatorSetIdProto { domain: String::new(), version: 17 };
    assert_eq!(opset.encode_to_vec(), [0x10, 17]);

    // Dimension oneof: dim_value = 1 (varint), dim_param = 2 (len).
    let d = Dimension { value: Some(dimension::Value::DimValue(5)), ..Dimension::default() };
    assert_eq!(d.encode_to_vec(), [0x08, 5]);
    let d = Dimension { value: Some(dimension::Value::DimParam("b".into())), ..Dimension::default() };
    assert_eq!(d.encode_to_vec(), [0x12, 1, b'b']);

    // TensorProto: dims = 1 unpacked varints, data_type = 2, name = 8, raw_data = 9; packed
    // float_data = 4 and int64_data = 7.
    let t = TensorProto {
        dims: vec![2, 3],
        data_type: 1,
        name: "w".into(),
        raw_data: vec![0xAB],
        ..TensorProto::default()
    };
    assert_eq!(t.encode_to_vec(), [0x08, 2, 0x08, 3, 0x10, 1, 0x42, 1, b'w', 0x4a, 1, 0xAB]);
    let t = TensorProto { float_data: vec![1.0], int64_data: vec![1, 2], ..TensorProto::default() };
    assert_eq!(t.encode_to_vec(), [0x22, 4, 0, 0, 0x80, 0x3f, 0x3a, 2, 1, 2]);

    // AttributeProto: name = 1, i = 3 (an Option, so written even when 0), ints = 8 unpacked,
    // type = 20
    // (tag 20 << 3 = 160 = varint [0xa0, 0x01]).
    let a = AttributeProto {
        name: "k".into(),
        i: Some(0),
        ints: vec![1, 2],
        r#type: AttributeType::Int as i32,
        ..AttributeProto::default()
    };
    assert_eq!(a.encode_to_vec(), [0x0a, 1, b'k', 0x18, 0, 0x40, 1, 0x40, 2, 0xa0, 0x01, 2]);

    // ModelProto: ir_version = 1, producer_name = 2, graph = 7, opset_import = 8,
    // metadata_props = 14 (tag 0x72).
    let mut g = GraphBuilder::new("");
    g.metadata("a", "b");
    let bytes = g.to_bytes().unwrap();
    assert_eq!(&bytes[..2], [0x08, 8], "ir_version first");
    let tail = [0x72, 6, 0x0a, 1, b'a', 0x12, 1, b'b'];
    assert_eq!(&bytes[bytes.len() - tail.len()..], tail, "metadata_props last");
    assert!(bytes.windows(4).any(|w| w == [0x42, 2, 0x10, 17]), "opset_import");
}

// ---- model-level round trips ----

#[test]
fn fixed_mask_model_round_trips() {
    let bins = 6;
    let logits = [8.0, 8.0, 0.5, -0.5, -8.0, -8.0];
    let md = meta(&[("voxmask.sample_rate", "44100"), ("voxmask.kind", "logit")]);
    let m = decode(&fixed_mask_model(bins, &logits, &md).unwrap());

    assert_eq!(m.ir_version, 8);
    assert_eq!(m.producer_name, "voxmask");
    assert_eq!(m.opset_import, vec![OperatorSetIdProto { domain: String::new(), version: 17 }]);
    let got_md: Vec<(String, String)> = m.metadata_props.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
    assert_eq!(got_md, md);

    let g = m.graph.as_ref().unwrap();
    let io = vec![Dim::named("batch"), Dim::named("frames"), Dim::Fixed(6)];
    assert_eq!(g.input.len(), 1);
    assert_eq!(g.input[0].name, "spec");
    assert_eq!(dims_of(&g.input[0]), io);
    assert_eq!(g.output.len(), 1);
    assert_eq!(g.output[0].name, "mask");
    assert_eq!(dims_of(&g.output[0]), io);

    let dynamic = vec![None, None, Some(6)];
    assert_eq!(value_infos(&g.input), [("spec".to_owned(), dynamic.clone())]);
    assert_eq!(value_infos(&g.output), [("mask".to_owned(), dynamic)]);

    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops, ["Mul", "Add"]);
    assert_eq!(g.node[0].input[0], "spec", "mask must depend on spec to keep its shape");
    assert_eq!(g.node[1].output, ["mask"]);

    let l = initializer(&m, "logits");
    assert_eq!(l.dims, [6]);
    assert_close(&l.f32_values().unwrap(), &logits, EXACT, "logits");
    assert_close(&initializer(&m, "zero").f32_values().unwrap(), &[0.0], EXACT, "zero");
}

#[test]
fn fixed_mask_model_rejects_wrong_logit_count() {
    let err = fixed_mask_model(4, &[1.0; 3], &[]).unwrap_err();
    assert!(matches!(err, Error::Mismatch { .. }), "{err}");
}

#[test]
fn tiny_conv_model_structure_and_weights() {
    let (bins, seed, past, look) = (5, 42, 3, 2);
    let m = decode(&tiny_conv_model(bins, seed, past, look, &[]).unwrap());
    let net = TinyConv::new(seed, past, look);
    let g = m.graph.as_ref().unwrap();

    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops, ["Unsqueeze", "Conv", "Relu", "Conv", "Squeeze"]);
    assert_eq!(g.node[0].input[0], "spec");
    assert_eq!(g.node[4].output, ["mask"]);
    let io = vec![Dim::named("batch"), Dim::named("frames"), Dim::Fixed(5)];
    assert_eq!(dims_of(&g.input[0]), io);
    assert_eq!(dims_of(&g.output[0]), io);

    // Opset-13 Unsqueeze/Squeeze: axes are a second, INT64 input.
    for n in [&g.node[0], &g.node[4]] {
        assert!(n.attribute.is_empty(), "{} must not use the axes attribute", n.op_type);
        assert_eq!(initializer(&m, &n.input[1]).i64_values().unwrap(), [1]);
    }

    let c1 = &g.node[1].attribute;
    assert_eq!(attr(c1, "kernel_shape").ints, [6, 3]);
    assert_eq!(attr(c1, "pads").ints, [3, 1, 2, 1], "[top=past, left, bottom=lookahead, right]");
    assert_eq!(attr(c1, "strides").ints, [1, 1]);
    assert_eq!(attr(c1, "dilations").ints, [1, 1]);
    assert_eq!(attr(c1, "pads").r#type(), AttributeType::Ints);
    assert_eq!(attr(&g.node[3].attribute, "kernel_shape").ints, [1, 1]);

    let w1 = initializer(&m, "conv1.weight");
    assert_eq!(w1.dims, [4, 1, 6, 3]);
    assert_close(&w1.f32_values().unwrap(), &net.w1, EXACT, "w1");
    assert_close(&initializer(&m, "conv1.bias").f32_values().unwrap(), &net.b1, EXACT, "b1");
    assert_eq!(initializer(&m, "conv2.weight").dims, [1, 4, 1, 1]);
    assert_close(&initializer(&m, "conv2.weight").f32_values().unwrap(), &net.w2, EXACT, "w2");
    assert_close(&initializer(&m, "conv2.bias").f32_values().unwrap(), &net.b2, EXACT, "b2");

    let all = net.w1.iter().chain(&net.w2);
    assert!(all.clone().all(|w| w.abs() <= TinyConv::WEIGHT_SCALE), "weights are small");
    assert!(all.clone().any(|w| *w != 0.0), "weights are not all zero");
}

#[test]
fn tiny_conv_weights_are_deterministic_and_seed_dependent() {
    assert_eq!(TinyConv::new(7, 2, 1), TinyConv::new(7, 2, 1));
    assert_ne!(TinyConv::new(7, 2, 1).w1, TinyConv::new(8, 2, 1).w1);
    assert_eq!(tiny_conv_model(4, 7, 2, 1, &[]).unwrap(), tiny_conv_model(4, 7, 2, 1, &[]).unwrap());
}

/// The reference forward pass sees exactly `past` frames back and `lookahead` frames ahead.
#[test]
fn tiny_conv_reference_has_the_promised_receptive_field() {
    let (batch, frames, bins, past, look) = (1, 12, 4, 2, 1);
    let net = TinyConv::new(3, past, look);
    let mut rng = voxmask::model::test_models::XorShift64::new(99);
    let spec: Vec<f32> = (0..frames * bins).map(|_| rng.next_signed().abs() * 2.0).collect();
    let base = net.forward(&spec, batch, frames, bins).unwrap();
    let t = 6;
    let changes_frame_t = |perturbed: usize| {
        let mut s = spec.clone();
        for f in 0..bins {
            s[perturbed * bins + f] += 5.0;
        }
        let out = net.forward(&s, batch, frames, bins).unwrap();
        (0..bins).any(|f| out[t * bins + f] != base[t * bins + f])
    };
    assert!(!changes_frame_t(t - past - 1), "frame before the context window");
    assert!(changes_frame_t(t - past), "oldest past frame");
    assert!(changes_frame_t(t + look), "last look-ahead frame");
    assert!(!changes_frame_t(t + look + 1), "frame beyond the look-ahead");
    assert!(net.forward(&spec[1..], batch, frames, bins).is_err(), "wrong input length");
}

// ---- builder checks ----

#[test]
fn initializer_size_mismatch_is_an_error() {
    let mut g = GraphBuilder::new("g");
    let err = g.initializer_f32("w", &[2, 3], &[0.0; 5]).unwrap_err();
    assert!(matches!(err, Error::Mismatch { .. }), "{err}");
    let err = g.initializer_i64("a", &[3], &[1, 2]).unwrap_err();
    assert!(matches!(err, Error::Mismatch { .. }), "{err}");
    let err = g.initializer_f32("n", &[-1, 2], &[0.0; 2]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    // A scalar (no dims) holds exactly one value.
    assert_eq!(g.initializer_f32("s", &[], &[1.5]).unwrap(), "s");
    assert!(g.initializer_f32("s2", &[], &[]).is_err());
    assert!(g.initializer_f32("s", &[1], &[1.0]).is_err(), "duplicate initializer name");
}

#[test]
fn conv2d_checks_weight_and_bias_sizes() {
    let mut g = GraphBuilder::new("g");
    g.input("x", &[Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(8), Dim::Fixed(8)]);
    let conv = Conv2d::new(2, 3, (3, 3));
    assert!(g.conv2d("bad_w", "x", &conv, &[0.0; 53], None).is_err());
    assert!(g.conv2d("bad_b", "x", &conv, &[0.0; 54], Some(&[0.0; 2])).is_err());
    assert!(g.conv2d("zero", "x", &Conv2d::new(0, 3, (3, 3)), &[], None).is_err());
    let y = g.conv2d("ok", "x", &conv, &[0.0; 54], None).unwrap();
    let m = decode(&{
        g.output(&y, &[Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(6), Dim::Fixed(6)]);
        g.to_bytes().unwrap()
    });
    let node = &m.graph.as_ref().unwrap().node[0];
    assert_eq!(node.input, ["x", "ok.weight"], "no bias input when bias is None");
}

#[test]
fn conv2d_context_padding() {
    let c = Conv2d::new(1, 1, (3, 5)).with_dilations((2, 2));
    let c = c.with_time_context(3).unwrap().with_same_freq().unwrap();
    assert_eq!(c.pads, [3, 4, 1, 4], "time span 4 = 3 past + 1 ahead; freq span 8 split evenly");
    assert_eq!(c.context_frames(), (3, 1));
    assert!(Conv2d::new(1, 1, (3, 3)).with_time_context(3).is_err(), "past beyond span");
    assert!(Conv2d::new(1, 1, (3, 2)).with_same_freq().is_err(), "even kernel has no SAME pads");
}

#[test]
fn graph_mistakes_are_reported_at_serialisation() {
    let ok = || {
        let mut g = GraphBuilder::new("g");
        g.input("x", &[Dim::named("n")]);
        g.output("y", &[Dim::named("n")]);
        g
    };
    let mut g = ok();
    g.node("Relu", &["x"], &["y"], vec![]);
    assert!(g.to_bytes().is_ok());

    let mut g = ok();
    g.node("Relu", &["undefined"], &["y"], vec![]);
    assert!(matches!(g.to_bytes(), Err(Error::InvalidArgument(_))), "input used before defined");

    let mut g = ok();
    g.node("Relu", &["x"], &["y"], vec![]).node("Relu", &["x"], &["y"], vec![]);
    assert!(g.to_bytes().is_err(), "value defined twice");

    let mut g = ok();
    g.node("Relu", &["x"], &["z"], vec![]);
    assert!(g.to_bytes().is_err(), "graph output never produced");
    assert!(g.write(&std::env::temp_dir().join("voxmask_never_written.onnx")).is_err());

    let mut g = ok();
    g.node("Relu", &["y"], &["z"], vec![]).node("Relu", &["x"], &["y"], vec![]);
    assert!(g.to_bytes().is_err(), "nodes out of topological order");

    // An empty input name is ONNX's "optional input omitted".
    let mut g = ok();
    g.node("Clip", &["x", "", ""], &["y"], vec![]);
    assert!(g.to_bytes().is_ok());
}

#[test]
fn fresh_names_never_collide() {
    let mut g = GraphBuilder::new("g");
    g.input("t_0", &[Dim::Fixed(1)]);
    g.node("Relu", &["t_0"], &["t_1"], vec![]);
    let a = g.fresh("t");
    let b = g.fresh("t");
    assert_ne!(a, b);
    assert!(!["t_0", "t_1"].contains(&a.as_str()) && !["t_0", "t_1"].contains(&b.as_str()));
    // Helper outputs are fresh too, and node names are unique.
    let r1 = g.relu("t_1");
    let r2 = g.relu(&r1);
    assert_ne!(r1, r2);
    g.output(&r2, &[Dim::Fixed(1)]);
    let m = decode(&g.to_bytes().unwrap());
    let names: std::collections::HashSet<_> = m.graph.unwrap().node.iter().map(|n| n.name.clone()).collect();
    assert_eq!(names.len(), 3);
}

#[test]
fn attributes_keep_type_and_zero_values() {
    let mut g = GraphBuilder::new("g");
    g.input("x", &[Dim::Fixed(2)]);
    g.output("y", &[Dim::Fixed(2)]);
    g.node(
        "Custom",
        &["x"],
        &["y"],
        vec![
            Attr::Int("i", 0),
            Attr::Float("f", 0.0),
            Attr::String("s", "same".into()),
            Attr::Floats("fs", vec![0.5, -1.0]),
            Attr::Ints("is", vec![]),
        ],
    );
    let m = decode(&g.to_bytes().unwrap());
    let a = &m.graph.as_ref().unwrap().node[0].attribute;
    // proto2 presence: a zero value is still stored, so readers can tell it from "absent".
    assert_eq!((attr(a, "i").i, attr(a, "i").r#type()), (Some(0), AttributeType::Int));
    assert_eq!((attr(a, "f").f, attr(a, "f").r#type()), (Some(0.0), AttributeType::Float));
    assert_eq!(attr(a, "s").s.as_deref(), Some(&b"same"[..]));
    assert_eq!(attr(a, "s").r#type(), AttributeType::String);
    assert_eq!(attr(a, "fs").floats, [0.5, -1.0]);
    assert_eq!(attr(a, "is").r#type(), AttributeType::Ints);
}

#[test]
fn metadata_keys_are_unique_last_value_wins() {
    let mut g = GraphBuilder::new("g");
    g.metadata("k", "1");
    g.metadata("other", "x");
    g.metadata("k", "2");
    let m = decode(&g.to_bytes().unwrap());
    let md: Vec<(&str, &str)> = m.metadata_props.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
    assert_eq!(md, [("k", "2"), ("other", "x")]);
}

#[test]
fn tensor_value_readers_check_type_and_length() {
    let t = TensorProto {
        dims: vec![2],
        data_type: DataType::Float as i32,
        float_data: vec![1.0, 2.0],
        ..TensorProto::default()
    };
    assert_eq!(t.f32_values().unwrap(), [1.0, 2.0], "float_data is read when raw_data is absent");
    assert!(t.i64_values().is_err(), "wrong type");
    let short = TensorProto { raw_data: vec![0; 7], ..t.clone() };
    assert!(short.f32_values().is_err(), "raw_data not a multiple of 4");
    let long = TensorProto { raw_data: vec![0; 12], ..t };
    assert!(long.f32_values().is_err(), "3 values for dims [2]");
}

// ---- files ----

#[test]
fn write_is_atomic_and_replaces_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, b"old contents").unwrap();

    let mut g = GraphBuilder::new("g");
    g.voxmask_io(3).unwrap();
    g.identity("spec", "mask");
    g.write(&path).unwrap();

    assert_eq!(std::fs::read(&path).unwrap(), g.to_bytes().unwrap());
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, ["model.onnx"], "no temporary file left behind");

    let missing = dir.path().join("no_such_dir").join("m.onnx");
    assert!(matches!(g.write(&missing), Err(Error::Io { .. })));
}

/// Writes the models that `tests/tools/check_onnx.py` validates with onnx.checker and ONNX
/// Runtime. Run: `VOXMASK_ONNX_DUMP_DIR=/some/dir cargo test --test onnx_writer -- --ignored`.
/// The `voxmask.test.*` metadata tells the script what each model should compute.
#[test]
#[ignore = "writes files for the Python check; needs VOXMASK_ONNX_DUMP_DIR"]
fn dump_models_for_python_check() {
    let dir = std::env::var_os("VOXMASK_ONNX_DUMP_DIR").expect("set VOXMASK_ONNX_DUMP_DIR");
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();

    let bins = 9;
    let logits: Vec<f32> = (0..bins).map(|f| 6.0 - 1.5 * f as f32).collect();
    let logits_txt: Vec<String> = logits.iter().map(|v| format!("{v:?}")).collect();
    let md = meta(&[
        ("voxmask.test.kind", "fixed_mask"),
        ("voxmask.test.bins", &bins.to_string()),
        ("voxmask.test.logits", &logits_txt.join(",")),
    ]);
    let bytes = fixed_mask_model(bins, &logits, &md).unwrap();
    std::fs::write(dir.join("fixed_mask.onnx"), bytes).unwrap();

    for (seed, past, look, bins) in [(1u64, 0usize, 0usize, 5usize), (42, 3, 2, 16), (7, 0, 4, 8)] {
        let md = meta(&[
            ("voxmask.test.kind", "tiny_conv"),
            ("voxmask.test.bins", &bins.to_string()),
            ("voxmask.test.seed", &seed.to_string()),
            ("voxmask.test.past", &past.to_string()),
            ("voxmask.test.lookahead", &look.to_string()),
        ]);
        let bytes = tiny_conv_model(bins, seed, past, look, &md).unwrap();
        std::fs::write(dir.join(format!("tiny_conv_s{seed}_p{past}_l{look}.onnx")), bytes).unwrap();
    }

    let mut g = GraphBuilder::new("voxmask_identity");
    g.voxmask_io(4).unwrap();
    g.identity("spec", "mask");
    g.metadata("voxmask.test.kind", "identity");
    g.write(&dir.join("identity.onnx")).unwrap();
}
