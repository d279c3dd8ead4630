//! Model runtime: loads a voxmask `.onnx` file, checks its contract (ARCHITECTURE.md, "The model contract")
//! and its input/output signature before any backend sees it, and runs it on ONNX Runtime or
//! tract through `ort`. The contract is read from the protobuf ourselves, so a file that is not
//! a voxmask model is refused with the same message on either backend.

pub mod backend;
pub mod contract;
pub mod onnx_proto;
pub mod onnx_writer;
pub mod source;
pub mod test_models;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use prost::Message;

pub use backend::{ActiveBackend, BackendChoice};
pub use contract::{Contract, INPUT_NAME, OUTPUT_NAME, StateTensor};
pub use source::{BuiltInModel, ModelSource};

use crate::{Error, Result};

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionProvider {
    #[default]
    Cpu,
    /// ONNX Runtime's CUDA execution provider (fails clearly when the library lacks it).
    Cuda,
}

/// How to create inference sessions.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    pub backend: BackendChoice,
    /// Explicit ONNX Runtime library (`--ort-lib`).
    pub ort_lib: Option<PathBuf>,
    /// Intra-op threads (0 = backend default).
    pub threads: usize,
    pub provider: ExecutionProvider,
}

/// The parts of an ONNX file voxmask checks before handing it to a backend.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub contract: Contract,
    /// All metadata as stored.
    pub metadata: BTreeMap<String, String>,
    /// Graph inputs and outputs: name and dimensions (`None` for a dynamic axis).
    pub inputs: Vec<(String, Vec<Option<i64>>)>,
    pub outputs: Vec<(String, Vec<Option<i64>>)>,
    /// Total number of weights in the initializers.
    pub parameters: u64,
    pub opset: i64,
    pub producer: String,
}

impl ModelInfo {
    /// Decodes and checks a model; `path` is only used in messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let refuse = |reason: String| Error::ModelContract { path: path.to_path_buf(), reason };
        let proto = onnx_proto::ModelProto::decode(bytes).map_err(|e| refuse(format!("not an ONNX protobuf ({e})")))?;
        let metadata: BTreeMap<String, String> =
            proto.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect();
        let contract = Contract::from_metadata(&metadata).map_err(refuse)?;
        let graph = proto.graph.as_ref().ok_or_else(|| refuse("the file has no graph".into()))?;
        let inputs: Vec<_> = onnx_proto::value_infos(&graph.input);
        let initializer_names: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<_> = inputs.into_iter().filter(|(n, _)| !initializer_names.contains(&n.as_str())).collect();
        let outputs = onnx_proto::value_infos(&graph.output);
        let bins = contract.bins() as i64;
        for (role, list, name) in [("input", &inputs, INPUT_NAME), ("output", &outputs, OUTPUT_NAME)] {
            let Some((_, dims)) = list.iter().find(|(n, _)| n == name) else {
                return Err(refuse(format!(
                    "the graph has no {role} named `{name}` (its {role}s: {})",
                    list.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                )));
            };
            if dims.len() != 3 {
                return Err(refuse(format!(
                    "{role} `{name}` has rank {}, expected 3 ([batch, frames, bins])",
                    dims.len()
                )));
            }
            // The engine feeds and reads 32-bit floats; another element type would fail (or
            // panic) inside the backend at the first run instead of here with a reason.
            let values = if role == "input" { &graph.input } else { &graph.output };
            let elem =
                values.iter().find(|v| v.name == name).and_then(|v| match v.r#type.as_ref()?.value.as_ref()? {
                    onnx_proto::type_proto::Value::TensorType(t) => Some(t.elem_type),
                });
            if let Some(e) = elem.filter(|&e| e != onnx_proto::tensor_proto::DataType::Float as i32) {
                return Err(refuse(format!("{role} `{name}` has element type {e}, expected 1 (32-bit float)")));
            }
            if let Some(b) = dims[2].filter(|&b| b != bins) {
                return Err(refuse(format!(
                    "{role} `{name}` has {b} bins but the contract's n_fft {} gives {bins}",
                    contract.stft.n_fft
                )));
            }
        }
        // A streaming model's state tensors: inputs and `.next` outputs of the declared shape.
        for state in &contract.stream_state {
            let next = state.next_name();
            for (role, list, name) in [("input", &inputs, state.name.as_str()), ("output", &outputs, next.as_str())] {
                let Some((_, dims)) = list.iter().find(|(n, _)| n == name) else {
                    return Err(refuse(format!(
                        "the contract declares state `{}` but the graph has no {role} named `{name}`",
                        state.name
                    )));
                };
                let fits = dims.len() == 3
                    && dims[1].is_none_or(|f| f == state.frames as i64)
                    && dims[2].is_none_or(|w| w == state.width as i64);
                if !fits {
                    return Err(refuse(format!(
                        "{role} `{name}` has dimensions {dims:?}, but the contract declares [batch, {}, {}]",
                        state.frames, state.width
                    )));
                }
            }
        }
        let expected_inputs = 1 + contract.stream_state.len();
        if inputs.len() != expected_inputs {
            return Err(refuse(format!(
                "expected {expected_inputs} input(s) (`{INPUT_NAME}` and the contract's state tensors), found {}",
                inputs.len()
            )));
        }
        let parameters = graph.initializer.iter().map(|t| t.dims.iter().product::<i64>().max(0) as u64).sum();
        let opset = proto.opset_import.iter().filter(|o| o.domain.is_empty()).map(|o| o.version).max().unwrap_or(0);
        Ok(ModelInfo { contract, metadata, inputs, outputs, parameters, opset, producer: proto.producer_name.clone() })
    }

    /// Reads and checks a model file.
    /// Files larger than [`MAX_MODEL_BYTES`] are refused without being read whole (`/dev/zero`
    /// never ends).
    pub fn read(path: &Path) -> Result<(Self, Vec<u8>)> {
        use std::io::Read;
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut bytes = Vec::new();
        file.take(MAX_MODEL_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
        if bytes.len() as u64 > MAX_MODEL_BYTES {
            return Err(Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("larger than the {} MiB a model may have", MAX_MODEL_BYTES >> 20),
                ),
            ));
        }
        if bytes.is_empty() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, "the model file is empty"),
            ));
        }
        Ok((Self::from_bytes(&bytes, path)?, bytes))
    }
}

/// Largest model file accepted (the paper's 19.5 M-parameter network is 78 MB).
pub const MAX_MODEL_BYTES: u64 = 256 << 20;

/// A loaded model ready to run.
pub struct Model {
    session: Session,
    info: ModelInfo,
    path: PathBuf,
    backend: &'static backend::BackendSelection,
}

impl Model {
    /// Loads `path`, selecting the process's backend on first use.
    pub fn load(path: &Path, opts: &RuntimeOptions) -> Result<Self> {
        let (info, bytes) = ModelInfo::read(path)?;
        Self::from_parts(info, &bytes, path, opts)
    }

    /// Builds a session from already-read bytes (the shipped model, tests).
    pub fn from_bytes(bytes: &[u8], path: &Path, opts: &RuntimeOptions) -> Result<Self> {
        let info = ModelInfo::from_bytes(bytes, path)?;
        Self::from_parts(info, bytes, path, opts)
    }

    fn from_parts(info: ModelInfo, bytes: &[u8], path: &Path, opts: &RuntimeOptions) -> Result<Self> {
        let backend = backend::init(opts.backend, opts.ort_lib.as_deref())?;
        let fail = |what: &str, e: String| Error::Backend(format!("{}: {what}: {e}", path.display()));
        let env = backend::environment()?;
        let mut builder = Session::builder(env).map_err(|e| fail("creating a session", e.to_string()))?;
        builder = builder
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| fail("setting the optimisation level", e.to_string()))?;
        match backend.active {
            ActiveBackend::Tract => {
                if opts.provider == ExecutionProvider::Cuda {
                    return Err(Error::Backend(
                        "--device cuda needs ONNX Runtime with its CUDA provider; the tract backend runs on the CPU only".into(),
                    ));
                }
                backend::set_tract_threads(opts.threads.max(1));
            }
            ActiveBackend::OnnxRuntime { .. } => {
                if opts.threads > 0 {
                    builder = builder
                        .with_intra_threads(opts.threads)
                        .map_err(|e| fail("setting the thread count", e.to_string()))?;
                }
                if opts.provider == ExecutionProvider::Cuda {
                    use ort::ep::ExecutionProvider;
                    let cuda = ort::ep::CUDA::default();
                    if !ort::ep::CUDA::is_available().unwrap_or(false) {
                        return Err(Error::Backend(format!(
                            "--device cuda: the ONNX Runtime library {} was built without the CUDA execution provider \
                             (install `onnxruntime-gpu`)",
                            backend.active
                        )));
                    }
                    cuda.register(&mut builder).map_err(|e| fail("enabling CUDA", e.to_string()))?;
                }
            }
        }
        let session = builder.commit_from_memory(bytes).map_err(|e| fail("loading the graph", e.to_string()))?;
        Ok(Model { session, info, path: path.to_path_buf(), backend })
    }

    /// The model's contract.
    pub fn contract(&self) -> &Contract {
        &self.info.contract
    }

    /// Everything read from the file.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The file the model came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The backend running this model.
    pub fn backend(&self) -> &'static ActiveBackend {
        &self.backend.active
    }

    /// Runs the model on `input` (`[batch, frames, bins]`, row-major) and writes its output, of
    /// the same shape, into `output`. A streaming model needs [`Model::run_streaming`].
    pub fn run(&mut self, input: &[f32], batch: usize, frames: usize, output: &mut [f32]) -> Result<()> {
        if self.info.contract.is_streaming() {
            return Err(Error::InvalidArgument(format!(
                "{}: a streaming model keeps state between calls; run it with `run_streaming`",
                self.path.display()
            )));
        }
        self.infer(input, batch, frames, output, None)
    }

    /// Runs a streaming model on the next `frames` frames of `input` (`[batch, frames, bins]`),
    /// reading and then advancing `state` (made by [`StreamState::new`] for this contract and
    /// batch). A model without state runs as [`Model::run`].
    pub fn run_streaming(
        &mut self,
        input: &[f32],
        batch: usize,
        frames: usize,
        output: &mut [f32],
        state: &mut StreamState,
    ) -> Result<()> {
        let contract = &self.info.contract;
        if !contract.is_streaming() {
            return self.run(input, batch, frames, output);
        }
        if state.batch != batch || state.values.len() != contract.stream_state.len() {
            return Err(Error::Mismatch {
                what: "streaming model state".into(),
                expected: format!("{} tensors for batch {batch}", contract.stream_state.len()),
                got: format!("{} tensors for batch {}", state.values.len(), state.batch),
            });
        }
        self.infer(input, batch, frames, output, Some(state))
    }

    /// One inference: `input` and any state in, `output` and the state's next values out, every
    /// size checked.
    fn infer(
        &mut self,
        input: &[f32],
        batch: usize,
        frames: usize,
        output: &mut [f32],
        state: Option<&mut StreamState>,
    ) -> Result<()> {
        let contract = &self.info.contract;
        let bins = contract.bins();
        let n = batch * frames * bins;
        if input.len() != n || output.len() != n {
            return Err(Error::Mismatch {
                what: "model input/output".into(),
                expected: format!("{batch}×{frames}×{bins} = {n} values"),
                got: format!("{} in, {} out", input.len(), output.len()),
            });
        }
        let path = &self.path;
        let fail = |e: String| Error::Backend(format!("{}: inference failed: {e}", path.display()));
        let states = state.map(|s| &mut s.values[..]).unwrap_or_default();
        let mut inputs: Vec<(String, ort::session::SessionInputValue<'_>)> = Vec::with_capacity(1 + states.len());
        let tensor = TensorRef::from_array_view(([batch, frames, bins], input)).map_err(|e| fail(e.to_string()))?;
        inputs.push((INPUT_NAME.to_string(), tensor.into()));
        for (spec, values) in contract.stream_state.iter().zip(states.iter()) {
            let t = TensorRef::from_array_view(([batch, spec.frames, spec.width], values.as_slice()))
                .map_err(|e| fail(e.to_string()))?;
            inputs.push((spec.name.clone(), t.into()));
        }
        let outputs = self.session.run(inputs).map_err(|e| fail(e.to_string()))?;
        let copy_out = |name: &str, into: &mut [f32], dims: [usize; 3]| -> Result<()> {
            let value = outputs.get(name).ok_or_else(|| fail(format!("no output `{name}`")))?;
            let (shape, values) = value.try_extract_tensor::<f32>().map_err(|e| fail(e.to_string()))?;
            if values.len() != into.len() {
                return Err(Error::ModelContract {
                    path: path.clone(),
                    reason: format!("output `{name}` has shape {shape:?}, expected {dims:?}"),
                });
            }
            into.copy_from_slice(values);
            Ok(())
        };
        copy_out(OUTPUT_NAME, output, [batch, frames, bins])?;
        for (spec, held) in contract.stream_state.iter().zip(states.iter_mut()) {
            copy_out(&spec.next_name(), held, [batch, spec.frames, spec.width])?;
        }
        Ok(())
    }
}

/// What a streaming model carries from one call to the next, for one batch of channels: one
/// `[batch, frames, width]` tensor per [`StateTensor`](contract::StateTensor) of its contract.
#[derive(Debug, Clone)]
pub struct StreamState {
    batch: usize,
    values: Vec<Vec<f32>>,
}

impl StreamState {
    /// Zeroed state for `batch` channels of a model with `contract`.
    pub fn new(contract: &Contract, batch: usize) -> Self {
        let values = contract.stream_state.iter().map(|s| vec![0.0; batch * s.frames * s.width]).collect();
        StreamState { batch, values }
    }
}
