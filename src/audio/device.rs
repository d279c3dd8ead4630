//! Live audio backends through cpal 0.18: host and device discovery by name, and the two
//! streams of a live session (input and output, each an f32 stream whose callback is one of
//! `crate::stream::rt`'s ring movers).
//!
//! cpal 0.18 specifics (measured on the development machine): streams start paused and need `play()`;
//! `Device::name()` is gone, so devices are named by `description()` (shown as `Display`) and
//! `id()` (`host:device`, stable across runs); JACK only accepts the server's rate and period,
//! and each JACK stream is its own client (`cpal_client_<pid>_in` / `_out`, ports `in_N` /
//! `out_N`), auto-connected to the system ports.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{BufferSize, ErrorKind, StreamConfig, SupportedBufferSize};

use crate::stream::{InputCallback, OutputCallback, Shared};
use crate::{Error, Result};

/// How long a stream may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(5);

fn device_error(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Error {
    Error::AudioDevice(format!("{what}: {e}"))
}

/// Names of the hosts compiled in and available here (`alsa`, `jack`, ...).
pub fn available_hosts() -> Vec<String> {
    cpal::available_hosts().into_iter().map(|h| h.to_string()).collect()
}

/// Opens a host by name (case-insensitive), or the platform default.
pub fn open_host(name: Option<&str>) -> Result<cpal::Host> {
    let Some(name) = name else { return Ok(cpal::default_host()) };
    let id: cpal::HostId = name.parse().map_err(|e| {
        Error::AudioDevice(format!("unknown audio host `{name}` ({e}); available: {}", available_hosts().join(", ")))
    })?;
    cpal::host_from_id(id).map_err(|e| device_error(format!("audio host `{name}` is not available"), e))
}

/// One stream configuration, as reported by a device.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConfigInfo {
    pub channels: u16,
    pub sample_rate: u32,
    pub sample_format: String,
    /// Period range in frames, when the host knows it.
    pub buffer_min: Option<u32>,
    pub buffer_max: Option<u32>,
}

/// A device as `voxmask devices` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceInfo {
    pub host: String,
    pub id: String,
    pub name: String,
    pub default_input: bool,
    pub default_output: bool,
    pub input: Option<ConfigInfo>,
    pub output: Option<ConfigInfo>,
}

fn config_info(c: &cpal::SupportedStreamConfig) -> ConfigInfo {
    let (buffer_min, buffer_max) = match c.buffer_size() {
        SupportedBufferSize::Range { min, max } => (Some(*min), Some(*max)),
        SupportedBufferSize::Unknown => (None, None),
    };
    ConfigInfo {
        channels: c.channels(),
        sample_rate: c.sample_rate(),
        sample_format: c.sample_format().to_string(),
        buffer_min,
        buffer_max,
    }
}

/// A device's display name (its description), falling back to its id.
pub fn device_name(d: &cpal::Device) -> String {
    d.description().map(|desc| desc.name().to_string()).unwrap_or_else(|_| device_id(d))
}

/// A device's stable id (`host:device`).
pub fn device_id(d: &cpal::Device) -> String {
    d.id().map(|id| id.to_string()).unwrap_or_else(|_| "?".into())
}

/// Every device of `host` with its default configurations.
pub fn list_devices(host: &cpal::Host) -> Result<Vec<DeviceInfo>> {
    let host_name = host.id().to_string();
    let default_in = host.default_input_device().map(|d| device_id(&d));
    let default_out = host.default_output_device().map(|d| device_id(&d));
    let devices = host.devices().map_err(|e| device_error(format!("listing {host_name} devices"), e))?;
    Ok(devices
        .map(|d| {
            let id = device_id(&d);
            DeviceInfo {
                host: host_name.clone(),
                name: device_name(&d),
                default_input: default_in.as_deref() == Some(id.as_str()),
                default_output: default_out.as_deref() == Some(id.as_str()),
                input: d.default_input_config().ok().map(|c| config_info(&c)),
                output: d.default_output_config().ok().map(|c| config_info(&c)),
                id,
            }
        })
        .collect())
}

/// Direction of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

impl Direction {
    fn word(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

/// Finds a device: `None` or `"default"` gives the host's default; otherwise the first device
/// whose id or name equals `name` (case-insensitive), else whose id or name contains it.
pub fn find_device(host: &cpal::Host, direction: Direction, name: Option<&str>) -> Result<cpal::Device> {
    let word = direction.word();
    let host_name = host.id().to_string();
    let name = name.filter(|n| !n.eq_ignore_ascii_case("default"));
    let Some(name) = name else {
        let d = match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        };
        return d.ok_or_else(|| {
            Error::AudioDevice(format!(
                "no default {word} device on host {host_name}{}",
                if host_name == "jack" { " (is a JACK server running?)" } else { "" }
            ))
        });
    };
    let devices: Vec<cpal::Device> = match direction {
        Direction::Input => host.input_devices().map(|d| d.collect()),
        Direction::Output => host.output_devices().map(|d| d.collect()),
    }
    .map_err(|e| device_error(format!("listing {host_name} {word} devices"), e))?;
    let lower = name.to_lowercase();
    let keys = |d: &cpal::Device| [device_id(d).to_lowercase(), device_name(d).to_lowercase()];
    let found = devices
        .iter()
        .find(|d| keys(d).contains(&lower))
        .or_else(|| devices.iter().find(|d| keys(d).iter().any(|k| k.contains(&lower))));
    found.cloned().ok_or_else(|| {
        let names: Vec<String> = devices.iter().map(|d| format!("{} ({})", device_name(d), device_id(d))).collect();
        Error::AudioDevice(format!(
            "no {word} device matching `{name}` on host {host_name}; {word} devices: {}",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        ))
    })
}

/// The configuration a live stream will use: the device's default, in f32, at `rate` when given.
pub fn stream_config(
    device: &cpal::Device,
    direction: Direction,
    rate: Option<u32>,
) -> Result<(StreamConfig, Option<u32>)> {
    let word = direction.word();
    let default = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    }
    .map_err(|e| device_error(format!("{} has no usable {word} configuration", device_name(device)), e))?;
    let period = match default.buffer_size() {
        SupportedBufferSize::Range { min, max } if min == max => Some(*min),
        _ => None,
    };
    let mut config = default.config();
    config.buffer_size = BufferSize::Default;
    if let Some(rate) = rate
        && rate != config.sample_rate
    {
        let supported = match direction {
            Direction::Input => device.supported_input_configs().map(|c| c.collect::<Vec<_>>()),
            Direction::Output => device.supported_output_configs().map(|c| c.collect::<Vec<_>>()),
        }
        .unwrap_or_default();
        let ok = supported
            .iter()
            .any(|r| r.channels() == config.channels && r.min_sample_rate() <= rate && rate <= r.max_sample_rate());
        if !ok {
            return Err(Error::AudioDevice(format!(
                "{word} device {} runs at {} Hz and does not support {rate} Hz (the input's rate); \
                 choose devices that share a sample rate",
                device_name(device),
                config.sample_rate
            )));
        }
        config.sample_rate = rate;
    }
    Ok((config, period))
}

fn build_error(device: &cpal::Device, word: &str, config: &StreamConfig, e: cpal::Error) -> Error {
    let why = match e.kind() {
        ErrorKind::UnsupportedConfig => "unsupported configuration",
        ErrorKind::DeviceNotAvailable => "device not available",
        ErrorKind::DeviceBusy => "device busy",
        ErrorKind::PermissionDenied => "permission denied",
        _ => "cannot open stream",
    };
    Error::AudioDevice(format!(
        "{} ({}): {why} for {word} at {} Hz, {} channels, f32: {e}",
        device_name(device),
        device_id(device),
        config.sample_rate,
        config.channels
    ))
}

/// The error callback of both streams: xruns are counted, anything that ends a stream (device
/// gone, server stopped, stream invalidated) is recorded as fatal. cpal calls it from its own
/// notification thread, not from the audio callback.
fn error_handler(shared: Arc<Shared>, word: &'static str) -> impl FnMut(cpal::Error) + Send + 'static {
    move |e: cpal::Error| match e.kind() {
        ErrorKind::Xrun => {
            shared.server_xruns.fetch_add(1, Relaxed);
        }
        ErrorKind::RealtimeDenied | ErrorKind::DeviceChanged => {}
        _ => shared.fail(format!("{word} stream failed: {e}")),
    }
}

/// The two running streams of a live session. Dropping it stops them.
pub struct Streams {
    pub input: cpal::Stream,
    pub output: cpal::Stream,
    /// Frames per callback when the host fixes it (JACK), else `None`.
    pub period: Option<u32>,
}

impl Streams {
    /// Builds and starts the input and output streams.
    // Each argument is one of the two streams' device, configuration or callback.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        input_device: &cpal::Device,
        input_config: StreamConfig,
        mut input_cb: InputCallback,
        output_device: &cpal::Device,
        output_config: StreamConfig,
        mut output_cb: OutputCallback,
        shared: &Arc<Shared>,
        period: Option<u32>,
    ) -> Result<Self> {
        let output = output_device
            .build_output_stream::<f32, _, _>(
                output_config,
                move |data: &mut [f32], _| output_cb.process(data),
                error_handler(shared.clone(), "output"),
                Some(START_TIMEOUT),
            )
            .map_err(|e| build_error(output_device, "output", &output_config, e))?;
        let input = input_device
            .build_input_stream::<f32, _, _>(
                input_config,
                move |data: &[f32], _| input_cb.process(data),
                error_handler(shared.clone(), "input"),
                Some(START_TIMEOUT),
            )
            .map_err(|e| build_error(input_device, "input", &input_config, e))?;
        output.play().map_err(|e| device_error("starting the output stream", e))?;
        input.play().map_err(|e| device_error("starting the input stream", e))?;
        let period = period.or_else(|| input.buffer_size().ok());
        Ok(Streams { input, output, period })
    }
}
