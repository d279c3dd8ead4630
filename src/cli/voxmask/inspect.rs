//! `voxmask inspect`: a model's contract, signature and provenance (no file: the built-in models).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use voxmask::model::source as builtin;
use voxmask::model::{ModelInfo, ModelSource};

use crate::{EXIT_MODEL, Failure, fail, lossy, print_json, print_text};

pub(crate) fn run(model: Option<PathBuf>, json: bool) -> Result<ExitCode, Failure> {
    let one_file = model.is_some();
    let sources: Vec<(ModelSource, Option<&str>)> = match model {
        Some(p) => vec![(ModelSource::File(p), None)],
        None => builtin::BUILT_IN.iter().map(|m| (ModelSource::BuiltIn(m), Some(m.role))).collect(),
    };
    let mut described = Vec::new();
    for (source, role) in &sources {
        let (info, _) = source.read().map_err(|e| fail(EXIT_MODEL)(e.into()))?;
        described.push((source.label(), *role, info));
    }
    if json {
        let values: Vec<_> = described.iter().map(|(label, role, info)| inspect_json(label, *role, info)).collect();
        // One file gives one object (as before); the built-in models give an array.
        print_json(&if one_file { values[0].clone() } else { json!(values) });
        return Ok(ExitCode::SUCCESS);
    }
    let text: Vec<String> = described.iter().map(|(label, role, info)| describe(label, *role, info)).collect();
    print_text(&text.join("\n"));
    Ok(ExitCode::SUCCESS)
}

fn inspect_json(path: &Path, role: Option<&str>, info: &ModelInfo) -> serde_json::Value {
    let c = &info.contract;
    json!({
        "path": lossy(path),
        "built_in": role.is_some(),
        "role": role,
        "metadata": info.metadata,
        "inputs": info.inputs,
        "outputs": info.outputs,
        "parameters": info.parameters,
        "opset": info.opset,
        "producer": info.producer,
        "latency_ms": c.latency_samples() as f64 * 1000.0 / c.sample_rate as f64,
    })
}

/// The text `inspect` prints for one model.
fn describe(path: &Path, role: Option<&str>, info: &ModelInfo) -> String {
    use std::fmt::Write;
    let c = &info.contract;
    let mut out = String::new();
    let _ = match role {
        Some(role) => writeln!(out, "model        {} ({role})", path.display()),
        None => writeln!(out, "model        {}", path.display()),
    };
    let _ = writeln!(
        out,
        "architecture {} ({} parameters, opset {}, producer {:?})",
        c.arch, info.parameters, info.opset, info.producer
    );
    let _ = writeln!(out, "sample rate  {} Hz", c.sample_rate);
    let _ = writeln!(
        out,
        "STFT         {} window {} / FFT {} ({} bins) / hop {}",
        c.stft.window.name(),
        c.stft.win_length,
        c.stft.n_fft,
        c.bins(),
        c.stft.hop
    );
    let _ = writeln!(out, "context      {} past frames, {} look-ahead frames", c.context_frames, c.lookahead_frames);
    if c.is_streaming() {
        let states: Vec<String> =
            c.stream_state.iter().map(|s| format!("{} ({}×{})", s.name, s.frames, s.width)).collect();
        let _ = writeln!(out, "streaming    state kept between calls: {}", states.join(", "));
    }
    let _ = writeln!(
        out,
        "latency      {} samples = {:.1} ms (STFT overlap + look-ahead)",
        c.latency_samples(),
        c.latency_samples() as f64 * 1000.0 / c.sample_rate as f64
    );
    let _ = writeln!(out, "feature      {}", c.feature.name());
    let _ = writeln!(out, "output       {:?} of P(vocal) per bin", c.output);
    let _ = writeln!(out, "mask rule    {} (threshold {})", c.mask_rule.name(), c.threshold);
    for (name, dims) in info.inputs.iter().map(|i| ("input ", i)).chain(info.outputs.iter().map(|o| ("output", o))) {
        let shape: Vec<String> = dims.1.iter().map(|d| d.map_or("?".into(), |v| v.to_string())).collect();
        let _ = writeln!(out, "{name}       {} [{}]", dims.0, shape.join(", "));
    }
    let provenance: Vec<_> = c.provenance().collect();
    if provenance.is_empty() {
        let _ = writeln!(out, "provenance   (none recorded)");
    }
    for (k, v) in provenance {
        let _ = writeln!(out, "{:<12} {v}", format!("train.{k}"));
    }
    out
}
