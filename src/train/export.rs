//! ONNX export of a trained [`Net`] through the project's ONNX writer, with the full model
//! contract (and training provenance) in the metadata. The graphs compute exactly what the
//! candle forward computes; `tests/train.rs` checks both backends against it.

use std::path::Path;

use candle_core::{Device, Tensor};
use prost::Message;

use crate::model::contract::PROVENANCE_PREFIX;
use crate::model::onnx_proto::ModelProto;
use crate::model::onnx_writer::{Attr, BATCH_AXIS, Conv2d, Dim, GraphBuilder};
use crate::model::{INPUT_NAME, ModelInfo, OUTPUT_NAME, StateTensor};
use crate::train::net::{LIN_PATCH, NORM_MEAN, NORM_SCALE, Net, Preset, TCN_KERNEL, TcnShape};
use crate::{Error, Result};

/// How the exported graph sees time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphKind {
    /// Every call carries the whole receptive field (`context_frames` of past features).
    Windowed,
    /// A causal TCN that keeps each layer's last inputs as state tensors between calls and reads
    /// only the new frames (see `Contract::stream_state`): what `voxmask live` runs frame by frame.
    Streaming,
}

/// Serialises `net` as an ONNX model (bytes).
pub fn export_onnx(net: &Net, kind: GraphKind) -> Result<Vec<u8>> {
    let mut g = GraphBuilder::new(&format!("voxmask-{}", net.preset.name()));
    g.doc_string(&format!(
        "voxmask {} network: features [batch, frames, bins] -> logit of P(vocal) per bin",
        net.preset.name()
    ));
    let bins = net.contract.bins();
    g.voxmask_io(bins)?;
    let mut contract = net.contract.clone();
    let out = match (net.preset.tcn(), kind) {
        (Some(tcn), GraphKind::Windowed) => tcn_graph(net, tcn, &mut g, None)?,
        (Some(tcn), GraphKind::Streaming) => {
            if tcn.layers.iter().any(|l| l.future > 0) {
                return Err(Error::InvalidArgument(format!(
                    "preset {} looks ahead; only causal networks can stream",
                    net.preset.name()
                )));
            }
            let mut states = Vec::new();
            let out = tcn_graph(net, tcn, &mut g, Some(&mut states))?;
            contract.stream_state = states;
            out
        }
        (None, GraphKind::Windowed) => lin2018_graph(net, &mut g)?,
        (None, GraphKind::Streaming) => {
            return Err(Error::InvalidArgument(format!("preset {} cannot stream", net.preset.name())));
        }
    };
    g.identity(&out, OUTPUT_NAME);
    for (k, v) in contract.to_metadata() {
        g.metadata(&k, &v);
    }
    g.to_bytes()
}

/// Reads back a TCN that [`export_onnx`] wrote: the preset from its training provenance, every
/// weight from the initializer of the same name, and the contract (provenance included) as
/// stored. Lets a shipped model be exported again, as the other [`GraphKind`], without its
/// checkpoint; the weights come back bit for bit.
pub fn import_onnx(path: &Path) -> Result<Net> {
    let (info, bytes) = ModelInfo::read(path)?;
    let refuse = |reason: String| Error::ModelContract { path: path.to_path_buf(), reason };
    let key = format!("{PROVENANCE_PREFIX}preset");
    let name = info
        .contract
        .extra
        .get(&key)
        .ok_or_else(|| refuse(format!("no `{key}` in its metadata: not a network exported by voxmask-train")))?;
    let preset = Preset::parse(name)
        .filter(|p| p.tcn().is_some())
        .ok_or_else(|| refuse(format!("preset {name:?} cannot be read back (only the TCN presets can)")))?;
    let proto = ModelProto::decode(bytes.as_slice()).map_err(|e| refuse(format!("not an ONNX protobuf ({e})")))?;
    let graph = proto.graph.as_ref().ok_or_else(|| refuse("the file has no graph".into()))?;
    let net = Net::new(preset, &Device::Cpu, None, 0)?;
    {
        let vars = net.varmap.data().lock().map_err(|_| Error::Train("weights lock poisoned".into()))?;
        for (name, var) in vars.iter() {
            let tensor = graph
                .initializer
                .iter()
                .find(|t| &t.name == name)
                .ok_or_else(|| refuse(format!("no initializer `{name}` (is it a {} network?)", preset.name())))?;
            let values = tensor.f32_values()?;
            if values.len() != var.elem_count() {
                return Err(refuse(format!(
                    "initializer `{name}` has {} values, the {} preset's weight {}",
                    values.len(),
                    preset.name(),
                    var.elem_count()
                )));
            }
            var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu)?)?;
        }
    }
    let mut contract = info.contract;
    contract.stream_state.clear();
    Ok(Net { contract, ..net })
}

/// The TCN graph. Windowed, each layer pads its input with zeros; streaming (`states` given),
/// each layer instead prepends its state input (its last `past` input frames from the previous
/// call), outputs the new last `past` frames as `<state>.next`, and pushes the state's
/// declaration onto `states`. The taps and the GEMM are the same either way.
fn tcn_graph(
    net: &Net,
    tcn: TcnShape,
    g: &mut GraphBuilder,
    mut states: Option<&mut Vec<StateTensor>>,
) -> Result<String> {
    let hidden = tcn.hidden;
    let bins = net.contract.bins();
    let mean = g.initializer_f32(NORM_MEAN, &[bins as i64], &net.weight(NORM_MEAN)?)?;
    let scale = g.initializer_f32(NORM_SCALE, &[bins as i64], &net.weight(NORM_SCALE)?)?;
    let centred = g.fresh("centred");
    g.node("Sub", &[INPUT_NAME, &mean], &[&centred], Vec::new());
    let mut h = g.mul(&centred, &scale);
    // Each temporal layer as in candle: pad time, stack the kernel's shifted views on the feature
    // axis, one MatMul. Kept in [batch, frames, features]; ONNX Runtime runs this as one GEMM per
    // layer, faster than its Conv with a (3, 1) kernel over [batch, features, frames, 1].
    let time_axis = g.initializer_i64("time.axis", &[1], &[1])?;
    let mut cin = bins;
    for (i, layer) in tcn.layers.iter().enumerate() {
        let padded = g.fresh("padded");
        match states.as_deref_mut() {
            None => {
                let pads = g.initializer_i64(
                    &format!("tcn{i}.pads"),
                    &[6],
                    &[0, layer.past as i64, 0, 0, layer.future as i64, 0],
                )?;
                g.node("Pad", &[&h, &pads], &[&padded], Vec::new());
            }
            Some(states) => {
                let state = StateTensor { name: format!("tcn{i}.state"), frames: layer.past, width: cin };
                let dims = [Dim::named(BATCH_AXIS), Dim::Fixed(layer.past as i64), Dim::Fixed(cin as i64)];
                g.input(&state.name, &dims);
                g.node("Concat", &[&state.name, &h], &[&padded], vec![Attr::Int("axis", 1)]);
                let s = g.initializer_i64(&format!("tcn{i}.keep"), &[1], &[-(layer.past as i64)])?;
                let e = g.initializer_i64(&format!("tcn{i}.keep_end"), &[1], &[i64::MAX])?;
                let next = state.next_name();
                g.node("Slice", &[&padded, &s, &e, &time_axis], &[&next], Vec::new());
                g.output(&next, &dims);
                states.push(state);
            }
        }
        let span = (layer.past + layer.future) as i64;
        let mut taps = Vec::new();
        for j in 0..TCN_KERNEL as i64 {
            let start = j * layer.dilation as i64;
            let end = if start == span { i64::MAX } else { start - span };
            let s = g.initializer_i64(&format!("tcn{i}.start{j}"), &[1], &[start])?;
            let e = g.initializer_i64(&format!("tcn{i}.end{j}"), &[1], &[end])?;
            let tap = g.fresh("tap");
            g.node("Slice", &[&padded, &s, &e, &time_axis], &[&tap], Vec::new());
            taps.push(tap);
        }
        let stacked = g.fresh("stacked");
        let tap_refs: Vec<&str> = taps.iter().map(String::as_str).collect();
        g.node("Concat", &tap_refs, &[&stacked], vec![Attr::Int("axis", 2)]);
        let w = g.initializer_f32(
            &format!("tcn{i}.w"),
            &[(TCN_KERNEL * cin) as i64, hidden as i64],
            &net.weight(&format!("tcn{i}.w"))?,
        )?;
        let b = g.initializer_f32(&format!("tcn{i}.b"), &[hidden as i64], &net.weight(&format!("tcn{i}.b"))?)?;
        let y = g.matmul(&stacked, &w);
        let y = g.add(&y, &b);
        let y = g.relu(&y);
        h = if cin == hidden { g.add(&y, &h) } else { y };
        cin = hidden;
    }
    let w = g.initializer_f32("out.w", &[hidden as i64, bins as i64], &net.weight("out.w")?)?;
    let b = g.initializer_f32("out.b", &[bins as i64], &net.weight("out.b")?)?;
    let y = g.matmul(&h, &w);
    Ok(g.add(&y, &b))
}

fn lin2018_graph(net: &Net, g: &mut GraphBuilder) -> Result<String> {
    let bins = net.contract.bins() as i64;
    let half = (LIN_PATCH / 2) as i64;
    let patch = LIN_PATCH as i64;
    // Patches around every frame: pad time by 4 frames each side, take 9 shifted views.
    let pads = g.initializer_i64("patch.pads", &[6], &[0, half, 0, 0, half, 0])?;
    let padded = g.fresh("padded");
    g.node("Pad", &[INPUT_NAME, &pads], &[&padded], Vec::new());
    let axis = g.initializer_i64("patch.axis", &[1], &[1])?;
    let mut views = Vec::new();
    for j in 0..patch {
        let starts = g.initializer_i64(&format!("patch.start{j}"), &[1], &[j])?;
        let end = if j + 1 == patch { i64::MAX } else { j - (patch - 1) };
        let ends = g.initializer_i64(&format!("patch.end{j}"), &[1], &[end])?;
        let v = g.fresh("view");
        g.node("Slice", &[&padded, &starts, &ends, &axis], &[&v], Vec::new());
        views.push(g.unsqueeze(&v, &[2]));
    }
    let stacked = g.fresh("patches");
    let view_refs: Vec<&str> = views.iter().map(String::as_str).collect();
    g.node("Concat", &view_refs, &[&stacked], vec![Attr::Int("axis", 2)]);
    let shape = g.initializer_i64("patch.shape", &[4], &[-1, 1, patch, bins])?;
    let mut h = g.fresh("nchw");
    g.node("Reshape", &[&stacked, &shape], &[&h], Vec::new());
    let convs: [(usize, usize); 4] = [(1, 32), (32, 16), (16, 64), (64, 32)];
    let mut width = bins as usize;
    for (i, (cin, cout)) in convs.iter().enumerate() {
        let conv = Conv2d::new(*cin, *cout, (3, 12)).with_pads([1, 5, 1, 6]);
        let y = g.conv2d(
            &format!("conv{i}"),
            &h,
            &conv,
            &net.weight(&format!("conv{i}.w"))?,
            Some(&net.weight(&format!("conv{i}.b"))?),
        )?;
        h = g.relu(&y);
        if i == 1 || i == 3 {
            let pad = (width.div_ceil(12) * 12 - width) as i64;
            let pooled = g.fresh("pool");
            g.node(
                "MaxPool",
                &[&h],
                &[&pooled],
                vec![
                    Attr::Ints("kernel_shape", vec![1, 12]),
                    Attr::Ints("strides", vec![1, 12]),
                    Attr::Ints("pads", vec![0, 0, 0, pad]),
                ],
            );
            h = pooled;
            width = width.div_ceil(12);
        }
    }
    let flat = (32 * LIN_PATCH * width) as i64;
    let shape = g.initializer_i64("flatten.shape", &[2], &[-1, flat])?;
    let mut x = g.fresh("flat");
    g.node("Reshape", &[&h, &shape], &[&x], Vec::new());
    let sizes = [flat as usize, 2048, 512, LIN_PATCH * bins as usize];
    for i in 0..3 {
        let w = g.initializer_f32(
            &format!("fc{i}.w"),
            &[sizes[i] as i64, sizes[i + 1] as i64],
            &net.weight(&format!("fc{i}.w"))?,
        )?;
        let b = g.initializer_f32(&format!("fc{i}.b"), &[sizes[i + 1] as i64], &net.weight(&format!("fc{i}.b"))?)?;
        let y = g.matmul(&x, &w);
        x = g.add(&y, &b);
        if i < 2 {
            x = g.relu(&x);
        }
    }
    // Keep the centre frame of each patch and restore [batch, frames, bins].
    let shape = g.initializer_i64("centre.shape", &[3], &[-1, patch, bins])?;
    let grid = g.fresh("grid");
    g.node("Reshape", &[&x, &shape], &[&grid], Vec::new());
    let (s, e) =
        (g.initializer_i64("centre.start", &[1], &[half])?, g.initializer_i64("centre.end", &[1], &[half + 1])?);
    let centre = g.fresh("centre");
    g.node("Slice", &[&grid, &s, &e, &axis], &[&centre], Vec::new());
    let in_shape = g.fresh("in_shape");
    g.node("Shape", &[INPUT_NAME], &[&in_shape], Vec::new());
    let out = g.fresh("logits");
    g.node("Reshape", &[&centre, &in_shape], &[&out], Vec::new());
    if width == 0 {
        return Err(Error::Train("lin2018 export: empty frequency axis".into()));
    }
    Ok(out)
}
