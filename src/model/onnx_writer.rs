//! A small ONNX model writer: build a graph node by node, then serialise it as a `ModelProto`
//! (ONNX IR version 8, default-domain opset 17) with the hand-written types in
//! [`super::onnx_proto`].
//!
//! Spec: the ONNX IR and operator definitions at opset 17 (`docs/IR.md` and `docs/Operators.md`
//! in the ONNX project's repository);
//! in particular `Unsqueeze`/`Squeeze` take their axes as an INT64 input (opset 13+), and `Conv`
//! pads are `[x1_begin, x2_begin, x1_end, x2_end]`, i.e. `[top, left, bottom, right]` for NCHW.
//!
//! voxmask's model I/O convention: one FLOAT input `spec` of shape `[batch, frames, bins]` and one
//! FLOAT output `mask` of the same shape (per-bin logit or probability of "vocal"); `batch` and
//! `frames` are symbolic axes, `bins` is fixed. Metadata travels in `ModelProto.metadata_props`.
//!
//! The tiny test models made with it live in `super::test_models`; reading a graph's signature
//! back is `super::onnx_proto::value_infos`.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use prost::Message;

use super::onnx_proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType,
    tensor_shape_proto::Dimension, tensor_shape_proto::dimension, type_proto,
};
use crate::{Error, Result};

/// ONNX IR version written into every model (the IR that introduced opset 17).
pub const IR_VERSION: i64 = 8;
/// Version of the default (`ai.onnx`) operator set the graphs use.
pub const OPSET_VERSION: i64 = 17;
/// `ModelProto.producer_name`.
pub const PRODUCER_NAME: &str = "voxmask";
/// Name of the model input (magnitude spectrogram, `[batch, frames, bins]`).
pub const INPUT_NAME: &str = "spec";
/// Name of the model output (per-bin vocal logit or probability, `[batch, frames, bins]`).
pub const OUTPUT_NAME: &str = "mask";
/// Symbolic name of the batch axis.
pub const BATCH_AXIS: &str = "batch";
/// Symbolic name of the time (frame) axis.
pub const FRAMES_AXIS: &str = "frames";

/// One dimension of a graph input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A dynamic axis, identified by a symbolic name shared between inputs and outputs.
    Named(String),
}

impl Dim {
    /// Shorthand for `Dim::Named(name.to_owned())`.
    pub fn named(name: &str) -> Self {
        Dim::Named(name.to_owned())
    }
}

/// A node attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// `INT`, e.g. `Attr::Int("axis", 1)`.
    Int(&'static str, i64),
    /// `INTS`, e.g. `Attr::Ints("perm", vec![0, 2, 1])`.
    Ints(&'static str, Vec<i64>),
    /// `FLOAT`.
    Float(&'static str, f32),
    /// `FLOATS`.
    Floats(&'static str, Vec<f32>),
    /// `STRING` (UTF-8).
    String(&'static str, String),
}

impl Attr {
    fn to_proto(&self) -> AttributeProto {
        let mut a = AttributeProto::default();
        let (name, ty) = match self {
            Attr::Int(n, v) => {
                a.i = Some(*v);
                (n, AttributeType::Int)
            }
            Attr::Ints(n, v) => {
                a.ints = v.clone();
                (n, AttributeType::Ints)
            }
            Attr::Float(n, v) => {
                a.f = Some(*v);
                (n, AttributeType::Float)
            }
            Attr::Floats(n, v) => {
                a.floats = v.clone();
                (n, AttributeType::Floats)
            }
            Attr::String(n, v) => {
                a.s = Some(v.as_bytes().to_vec());
                (n, AttributeType::String)
            }
        };
        a.name = (*name).to_owned();
        a.set_type(ty);
        a
    }
}

/// Geometry of a 2-D convolution over NCHW tensors (`H` = frames, `W` = frequency bins in voxmask).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conv2d {
    pub in_ch: usize,
    pub out_ch: usize,
    /// `(kh, kw)`.
    pub kernel: (usize, usize),
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// `(dh, dw)`.
    pub dilations: (usize, usize),
    /// `(sh, sw)`.
    pub strides: (usize, usize),
}

impl Conv2d {
    /// A convolution with no padding, unit strides and unit dilations.
    pub fn new(in_ch: usize, out_ch: usize, kernel: (usize, usize)) -> Self {
        Self { in_ch, out_ch, kernel, pads: [0; 4], dilations: (1, 1), strides: (1, 1) }
    }

    /// Sets the pads `[top, left, bottom, right]`.
    pub fn with_pads(mut self, pads: [usize; 4]) -> Self {
        self.pads = pads;
        self
    }

    /// Sets the dilations `(dh, dw)`.
    pub fn with_dilations(mut self, dilations: (usize, usize)) -> Self {
        self.dilations = dilations;
        self
    }

    /// Sets the strides `(sh, sw)`.
    pub fn with_strides(mut self, strides: (usize, usize)) -> Self {
        self.strides = strides;
        self
    }

    /// Pads the time axis so that, at stride 1, every output frame `t` sees input frames
    /// `t - past ..= t + lookahead` and the frame count is preserved, where
    /// `lookahead = dh * (kh - 1) - past`. Fails if `past` exceeds the kernel's time span.
    pub fn with_time_context(mut self, past: usize) -> Result<Self> {
        let span = self.time_span();
        if past > span {
            return Err(Error::InvalidArgument(format!(
                "conv time context: {past} past frames exceed the kernel's span of {span} frames"
            )));
        }
        self.pads[0] = past;
        self.pads[2] = span - past;
        Ok(self)
    }

    /// Pads the frequency axis symmetrically so that, at stride 1, the bin count is preserved
    /// ("SAME"). Fails if the kernel's frequency span is odd, which would need asymmetric pads.
    pub fn with_same_freq(mut self) -> Result<Self> {
        let span = self.dilations.1.saturating_mul(self.kernel.1.saturating_sub(1));
        if !span.is_multiple_of(2) {
            return Err(Error::InvalidArgument(format!(
                "conv SAME frequency padding needs an odd kernel extent, got span {span} \
                 (kw {}, dw {})",
                self.kernel.1, self.dilations.1
            )));
        }
        self.pads[1] = span / 2;
        self.pads[3] = span / 2;
        Ok(self)
    }

    /// Frames of past and future context an output frame depends on, at stride 1:
    /// `(pads_top, dh * (kh - 1) - pads_top)`. The second value is negative when the top pad
    /// exceeds the kernel span (the output then lags the input).
    pub fn context_frames(&self) -> (i64, i64) {
        let past = i64::try_from(self.pads[0]).unwrap_or(i64::MAX);
        let span = i64::try_from(self.time_span()).unwrap_or(i64::MAX);
        (past, span.saturating_sub(past))
    }

    fn time_span(&self) -> usize {
        self.dilations.0.saturating_mul(self.kernel.0.saturating_sub(1))
    }

    fn validate(&self) -> Result<()> {
        let (kh, kw) = self.kernel;
        let positive = [self.in_ch, self.out_ch, kh, kw, self.dilations.0, self.dilations.1];
        if positive.contains(&0) || self.strides.0 == 0 || self.strides.1 == 0 {
            return Err(Error::InvalidArgument(format!(
                "conv geometry must have positive channels, kernel, dilations and strides: {self:?}"
            )));
        }
        Ok(())
    }
}

/// Builds one ONNX graph and serialises it as a complete model.
///
/// Nodes must be added in topological order, and every value name must be produced exactly once
/// (by a graph input, an initializer or a node output). Mistakes in that are reported by
/// [`GraphBuilder::to_model`] (and so by `to_bytes` and `write`), not by the adding call, so that
/// `node` can stay chainable.
#[derive(Clone, Debug)]
pub struct GraphBuilder {
    name: String,
    doc_string: String,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    initializers: Vec<TensorProto>,
    nodes: Vec<NodeProto>,
    metadata: Vec<(String, String)>,
    /// Every name mentioned so far, so that `fresh` never collides with a caller's name.
    used: HashSet<String>,
    next_fresh: usize,
}

impl GraphBuilder {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            doc_string: String::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            initializers: Vec::new(),
            nodes: Vec::new(),
            metadata: Vec::new(),
            used: HashSet::new(),
            next_fresh: 0,
        }
    }

    /// Sets the model's `doc_string`.
    pub fn doc_string(&mut self, doc: &str) {
        self.doc_string = doc.to_owned();
    }

    /// Declares a FLOAT graph input.
    pub fn input(&mut self, name: &str, dims: &[Dim]) {
        self.used.insert(name.to_owned());
        self.inputs.push(float_value_info(name, dims));
    }

    /// Declares a FLOAT graph output; some node must produce a value of this name.
    pub fn output(&mut self, name: &str, dims: &[Dim]) {
        self.used.insert(name.to_owned());
        self.outputs.push(float_value_info(name, dims));
    }

    /// Declares voxmask's standard interface: input [`INPUT_NAME`] and output [`OUTPUT_NAME`],
    /// both FLOAT `[batch, frames, bins]` with `batch` and `frames` dynamic.
    pub fn voxmask_io(&mut self, bins: usize) -> Result<()> {
        if bins == 0 {
            return Err(Error::InvalidArgument("a voxmask model needs at least one bin".into()));
        }
        let dims = [Dim::named(BATCH_AXIS), Dim::named(FRAMES_AXIS), Dim::Fixed(to_i64(bins)?)];
        self.input(INPUT_NAME, &dims);
        self.output(OUTPUT_NAME, &dims);
        Ok(())
    }

    /// Adds a FLOAT initializer (stored little-endian in `raw_data`) and returns its name.
    /// Fails if a dim is negative, if `data.len()` is not the product of `dims`, or if the name
    /// is already defined by an input or another initializer.
    pub fn initializer_f32(&mut self, name: &str, dims: &[i64], data: &[f32]) -> Result<String> {
        check_len(name, dims, data.len())?;
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_initializer(name, dims, DataType::Float, raw)
    }

    /// Adds an INT64 initializer (stored little-endian in `raw_data`) and returns its name.
    /// Same checks as [`GraphBuilder::initializer_f32`].
    pub fn initializer_i64(&mut self, name: &str, dims: &[i64], data: &[i64]) -> Result<String> {
        check_len(name, dims, data.len())?;
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_initializer(name, dims, DataType::Int64, raw)
    }

    /// Appends a default-domain node named `<op_type>_<index>`. An empty input name marks an
    /// omitted optional input, as in ONNX.
    pub fn node(&mut self, op_type: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<Attr>) -> &mut Self {
        for name in inputs.iter().chain(outputs) {
            self.used.insert((*name).to_owned());
        }
        let node = NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: outputs.iter().map(|s| (*s).to_owned()).collect(),
            name: format!("{op_type}_{}", self.nodes.len()),
            op_type: op_type.to_owned(),
            attribute: attrs.iter().map(Attr::to_proto).collect(),
            ..NodeProto::default()
        };
        self.nodes.push(node);
        self
    }

    /// A value name `<prefix>_<n>` not used anywhere in the graph so far, reserved on return.
    pub fn fresh(&mut self, prefix: &str) -> String {
        loop {
            let candidate = format!("{prefix}_{}", self.next_fresh);
            self.next_fresh += 1;
            if self.used.insert(candidate.clone()) {
                return candidate;
            }
        }
    }

    /// Sets a metadata pair; setting a key again replaces its value (ONNX forbids duplicate keys).
    pub fn metadata(&mut self, key: &str, value: &str) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_owned(),
            None => self.metadata.push((key.to_owned(), value.to_owned())),
        }
    }

    /// NCHW `Conv` with weight `[out_ch, in_ch, kh, kw]` and optional bias `[out_ch]`, stored as
    /// initializers `<name>.weight` and `<name>.bias`. Returns the output value's name.
    pub fn conv2d(
        &mut self,
        name: &str,
        x: &str,
        conv: &Conv2d,
        weight: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<String> {
        conv.validate()?;
        let (kh, kw) = conv.kernel;
        let wdims = [to_i64(conv.out_ch)?, to_i64(conv.in_ch)?, to_i64(kh)?, to_i64(kw)?];
        let w = self.initializer_f32(&format!("{name}.weight"), &wdims, weight)?;
        let mut inputs = vec![x.to_owned(), w];
        if let Some(bias) = bias {
            inputs.push(self.initializer_f32(&format!("{name}.bias"), &wdims[..1], bias)?);
        }
        let attrs = vec![
            Attr::Ints("kernel_shape", vec![wdims[2], wdims[3]]),
            Attr::Ints("pads", conv.pads.iter().map(|&p| to_i64(p)).collect::<Result<_>>()?),
            Attr::Ints("dilations", vec![to_i64(conv.dilations.0)?, to_i64(conv.dilations.1)?]),
            Attr::Ints("strides", vec![to_i64(conv.strides.0)?, to_i64(conv.strides.1)?]),
        ];
        let y = self.fresh(name);
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.node("Conv", &inputs, &[&y], attrs);
        Ok(y)
    }

    /// `Relu(x)`; returns the output name.
    pub fn relu(&mut self, x: &str) -> String {
        self.unary("Relu", x, Vec::new())
    }

    /// `Sigmoid(x)`; returns the output name.
    pub fn sigmoid(&mut self, x: &str) -> String {
        self.unary("Sigmoid", x, Vec::new())
    }

    /// `Transpose(x, perm)`; returns the output name.
    pub fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.unary("Transpose", x, vec![Attr::Ints("perm", perm.to_vec())])
    }

    /// `Identity(x)` written to the given name, typically to bind a result to a graph output.
    pub fn identity(&mut self, x: &str, out: &str) {
        self.node("Identity", &[x], &[out], Vec::new());
    }

    /// Broadcasting `Add(a, b)`; returns the output name.
    pub fn add(&mut self, a: &str, b: &str) -> String {
        self.binary("Add", a, b)
    }

    /// Broadcasting `Mul(a, b)`; returns the output name.
    pub fn mul(&mut self, a: &str, b: &str) -> String {
        self.binary("Mul", a, b)
    }

    /// `MatMul(a, b)` (numpy semantics); returns the output name.
    pub fn matmul(&mut self, a: &str, b: &str) -> String {
        self.binary("MatMul", a, b)
    }

    /// `Unsqueeze(x, axes)` with the axes as an INT64 initializer (opset 13+); returns the
    /// output name.
    pub fn unsqueeze(&mut self, x: &str, axes: &[i64]) -> String {
        let axes = self.axes_initializer(axes);
        self.binary("Unsqueeze", x, &axes)
    }

    /// `Squeeze(x, axes)` with the axes as an INT64 initializer (opset 13+); returns the
    /// output name.
    pub fn squeeze(&mut self, x: &str, axes: &[i64]) -> String {
        let axes = self.axes_initializer(axes);
        self.binary("Squeeze", x, &axes)
    }

    /// The model as a message, after checking the graph is well formed: every node input is
    /// defined before use, every value is defined once, and every graph output is produced.
    pub fn to_model(&self) -> Result<ModelProto> {
        self.check_graph()?;
        let graph = GraphProto {
            node: self.nodes.clone(),
            name: self.name.clone(),
            initializer: self.initializers.clone(),
            input: self.inputs.clone(),
            output: self.outputs.clone(),
            ..GraphProto::default()
        };
        Ok(ModelProto {
            ir_version: IR_VERSION,
            producer_name: PRODUCER_NAME.to_owned(),
            producer_version: env!("CARGO_PKG_VERSION").to_owned(),
            doc_string: self.doc_string.clone(),
            graph: Some(graph),
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET_VERSION }],
            metadata_props: self
                .metadata
                .iter()
                .map(|(k, v)| StringStringEntryProto { key: k.clone(), value: v.clone() })
                .collect(),
            ..ModelProto::default()
        })
    }

    /// The serialised model (see [`GraphBuilder::to_model`] for the checks).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.to_model()?.encode_to_vec())
    }

    /// Writes the serialised model to `path` atomically: a temporary file in the same directory
    /// is written, flushed to disk and renamed over `path`, so a reader never sees half a model.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }

    fn unary(&mut self, op: &str, x: &str, attrs: Vec<Attr>) -> String {
        let y = self.fresh(&op.to_ascii_lowercase());
        self.node(op, &[x], &[&y], attrs);
        y
    }

    fn binary(&mut self, op: &str, a: &str, b: &str) -> String {
        let y = self.fresh(&op.to_ascii_lowercase());
        self.node(op, &[a, b], &[&y], Vec::new());
        y
    }

    fn axes_initializer(&mut self, axes: &[i64]) -> String {
        let name = self.fresh("axes");
        let raw = axes.iter().flat_map(|v| v.to_le_bytes()).collect();
        // Pushed directly: the name is fresh and the dims match by construction, so the checks
        // of `initializer_i64` (and its `Result`) would be dead weight on every call site.
        self.initializers.push(TensorProto {
            dims: vec![i64::try_from(axes.len()).unwrap_or(i64::MAX)],
            data_type: DataType::Int64 as i32,
            name: name.clone(),
            raw_data: raw,
            ..TensorProto::default()
        });
        name
    }

    fn push_initializer(&mut self, name: &str, dims: &[i64], ty: DataType, raw: Vec<u8>) -> Result<String> {
        let taken = self.initializers.iter().any(|t| t.name == name) || self.inputs.iter().any(|v| v.name == name);
        if taken {
            return Err(Error::InvalidArgument(format!("ONNX initializer name {name:?} is already defined")));
        }
        self.used.insert(name.to_owned());
        self.initializers.push(TensorProto {
            dims: dims.to_vec(),
            data_type: ty as i32,
            name: name.to_owned(),
            raw_data: raw,
            ..TensorProto::default()
        });
        Ok(name.to_owned())
    }

    fn check_graph(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidArgument(format!("ONNX graph {:?}: {msg}", self.name)));
        let mut defined: HashSet<&str> = HashSet::new();
        let sources = self.inputs.iter().map(|v| &v.name).chain(self.initializers.iter().map(|t| &t.name));
        for name in sources {
            let name = name.as_str();
            if !defined.insert(name) {
                return bad(format!("{name:?} is defined twice (inputs and initializers)"));
            }
        }
        for node in &self.nodes {
            let node_name = node.name.as_str();
            for input in node.input.iter().filter(|s| !s.is_empty()) {
                if !defined.contains(input.as_str()) {
                    return bad(format!("node {node_name} reads {input:?} before it is defined"));
                }
            }
            for output in &node.output {
                if output.is_empty() || !defined.insert(output.as_str()) {
                    return bad(format!("node {node_name} output {output:?} is empty or already defined"));
                }
            }
        }
        for output in &self.outputs {
            let name = output.name.as_str();
            if !defined.contains(name) {
                return bad(format!("graph output {name:?} is never produced"));
            }
        }
        Ok(())
    }
}

fn float_value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(n) => dimension::Value::DimValue(*n),
                Dim::Named(s) => dimension::Value::DimParam(s.clone()),
            }),
            denotation: String::new(),
        })
        .collect();
    let tensor = type_proto::Tensor { elem_type: DataType::Float as i32, shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), denotation: String::new() }),
        doc_string: String::new(),
    }
}

fn check_len(name: &str, dims: &[i64], len: usize) -> Result<()> {
    let count = dims.iter().try_fold(1usize, |acc, &d| usize::try_from(d).ok().and_then(|d| acc.checked_mul(d)));
    match count {
        Some(n) if n == len => Ok(()),
        Some(n) => Err(Error::Mismatch {
            what: format!("element count of initializer {name:?} with dims {dims:?}"),
            expected: n.to_string(),
            got: len.to_string(),
        }),
        None => Err(Error::InvalidArgument(format!("initializer {name:?}: dims {dims:?} are negative or overflow"))),
    }
}

pub(crate) fn to_i64(n: usize) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::InvalidArgument(format!("{n} does not fit an ONNX int64")))
}

/// Writes `bytes` to `path` through a temporary sibling file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name =
        path.file_name().ok_or_else(|| Error::InvalidArgument(format!("{} has no file name", path.display())))?;
    // Process id plus a counter keeps concurrent writers (threads or processes) apart; the name
    // ends in `.tmp`, which the repository ignores, in case a crash leaves one behind.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{}-{n}.tmp", file_name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        // Best effort: the original error is what the caller needs to see.
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}
