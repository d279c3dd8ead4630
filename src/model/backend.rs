//! Choosing the inference backend once per process: real ONNX Runtime, loaded at run time from a
//! shared library we find ourselves, or the pure-Rust tract engine. `ort` is built with
//! `alternative-backend`, so it never links, downloads or searches for a library on its own: we
//! hand it an API table with `ort::set_api`, which is how a missing or broken library becomes a
//! clear error instead of a panic inside `ort`.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::{Error, Result};

/// Environment variable naming the ONNX Runtime library (checked before `ORT_DYLIB_PATH`).
pub const ORT_LIB_ENV: &str = "VOXMASK_ORT_LIB";
/// The variable `ort` itself documents; honoured for users who already set it.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";
/// Oldest ONNX Runtime minor version whose API table matches what ort was built against.
const MIN_ORT_MINOR: u32 = ort_sys::ORT_API_VERSION;

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// ONNX Runtime when a usable library is found, else tract.
    #[default]
    Auto,
    /// ONNX Runtime or an error.
    OnnxRuntime,
    /// tract, the pure-Rust engine built into voxmask.
    Tract,
}

/// The backend in use for this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActiveBackend {
    /// ONNX Runtime loaded from `path`.
    OnnxRuntime { path: PathBuf, version: String },
    /// The built-in tract engine.
    Tract,
}

impl ActiveBackend {
    /// Short name used in `--json` output and messages.
    pub fn name(&self) -> &'static str {
        match self {
            ActiveBackend::OnnxRuntime { .. } => "onnxruntime",
            ActiveBackend::Tract => "tract",
        }
    }
}

impl std::fmt::Display for ActiveBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActiveBackend::OnnxRuntime { path, version } => {
                write!(f, "onnxruntime {version} ({})", path.display())
            }
            ActiveBackend::Tract => write!(f, "tract (built in)"),
        }
    }
}

/// The outcome of backend selection, including why ONNX Runtime was not used under `auto`.
#[derive(Debug, Clone)]
pub struct BackendSelection {
    pub active: ActiveBackend,
    /// Candidates that were tried and rejected, with the reason (for `--verbose`).
    pub notes: Vec<String>,
}

static SELECTED: OnceLock<BackendSelection> = OnceLock::new();
static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();

/// The process's one ort environment, created on first use after [`init`].
pub fn environment() -> Result<&'static ort::environment::Environment> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let env = ort::init()
        .with_name("voxmask")
        .build()
        .map_err(|e| Error::Backend(format!("creating the inference environment: {e}")))?;
    Ok(ENVIRONMENT.get_or_init(|| env))
}

/// Selects and installs the backend. The first call decides for the whole process; later calls
/// return that decision, or an error if they ask for a different backend.
pub fn init(choice: BackendChoice, ort_lib: Option<&Path>) -> Result<&'static BackendSelection> {
    // One selection at a time: two threads that both found nothing selected would both load a
    // library, and the second one's install would fail ("already installed").
    static SELECTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = SELECTING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sel) = SELECTED.get() {
        return match (choice, &sel.active) {
            (BackendChoice::Tract, ActiveBackend::OnnxRuntime { .. })
            | (BackendChoice::OnnxRuntime, ActiveBackend::Tract) => {
                Err(Error::Backend(format!("the {} backend is already in use in this process", sel.active.name())))
            }
            _ => Ok(sel),
        };
    }
    let selection = select(choice, ort_lib)?;
    let installed = match &selection.active {
        ActiveBackend::OnnxRuntime { .. } => true, // set_api already done in `try_load_ort`
        ActiveBackend::Tract => install_tract()?,
    };
    if !installed {
        return Err(Error::Backend("another backend was installed concurrently".into()));
    }
    Ok(SELECTED.get_or_init(|| selection))
}

/// The backend chosen by [`init`], if any.
pub fn selected() -> Option<&'static BackendSelection> {
    SELECTED.get()
}

fn select(choice: BackendChoice, ort_lib: Option<&Path>) -> Result<BackendSelection> {
    let mut notes = Vec::new();
    if choice == BackendChoice::Tract {
        return Ok(BackendSelection { active: ActiveBackend::Tract, notes });
    }
    for candidate in ort_candidates(ort_lib) {
        match try_load_ort(&candidate.path, candidate.cached_version.as_deref()) {
            Ok(version) => {
                notes.push(format!(
                    "using ONNX Runtime {version} from {} ({})",
                    candidate.path.display(),
                    candidate.source
                ));
                if candidate.found_by_python {
                    // Remember it, so the next run skips the Python start.
                    match ort_cache::store(&candidate.path, &version) {
                        Ok(file) => notes.push(format!("remembered in {}", file.display())),
                        Err(why) => notes.push(format!("could not remember the library: {why}")),
                    }
                }
                return Ok(BackendSelection {
                    active: ActiveBackend::OnnxRuntime { path: candidate.path, version },
                    notes,
                });
            }
            Err(why) => {
                let msg = format!("{} ({}): {why}", candidate.path.display(), candidate.source);
                // A library the user named is a choice, not a guess: under `auto` too, failing to
                // load it is an error rather than a silent fall back to tract.
                if candidate.explicit {
                    return Err(Error::Backend(format!("cannot use ONNX Runtime library {msg}")));
                }
                notes.push(msg);
            }
        }
    }
    match choice {
        BackendChoice::OnnxRuntime => Err(Error::Backend(format!(
            "no usable ONNX Runtime library found (tried: {}). Install one with `pip install onnxruntime` \
             or point --ort-lib / {ORT_LIB_ENV} at libonnxruntime.so",
            if notes.is_empty() { "nothing".to_string() } else { notes.join("; ") }
        ))),
        _ => {
            notes.push("no usable ONNX Runtime library; running on tract".into());
            Ok(BackendSelection { active: ActiveBackend::Tract, notes })
        }
    }
}

struct Candidate {
    path: PathBuf,
    source: String,
    /// Named by the user: failure to load it is an error, not a reason to move on.
    explicit: bool,
    /// From the cache: the version the library must still have.
    cached_version: Option<String>,
    /// Found through Python's package (worth caching).
    found_by_python: bool,
}

impl Candidate {
    fn new(path: PathBuf, source: impl Into<String>, explicit: bool) -> Self {
        Candidate { path, source: source.into(), explicit, cached_version: None, found_by_python: false }
    }
}

/// The libraries to try, in order: those the user named, the one remembered from an earlier
/// run's Python lookup, Python's package, the system paths. Lazy: Python is only started (about
/// 0.1–0.2 s behind a pyenv shim) when nothing before it loaded.
fn ort_candidates(ort_lib: Option<&Path>) -> impl Iterator<Item = Candidate> {
    let mut named = Vec::new();
    if let Some(p) = ort_lib {
        named.push(Candidate::new(in_current_folder(p), "--ort-lib", true));
    }
    for (var, source) in [(ORT_LIB_ENV, "$VOXMASK_ORT_LIB"), (ORT_DYLIB_ENV, "$ORT_DYLIB_PATH")] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            named.push(Candidate::new(in_current_folder(Path::new(&v)), source, true));
        }
    }
    let cached = std::iter::once_with(|| {
        let (entry, file) = ort_cache::load()?;
        Some(Candidate {
            cached_version: Some(entry.version),
            ..Candidate::new(entry.path, format!("remembered in {}", file.display()), false)
        })
    })
    .flatten();
    let python = std::iter::once_with(|| {
        let lib = newest_library_in(&python_onnxruntime_capi()?)?;
        Some(Candidate { found_by_python: true, ..Candidate::new(lib, "python onnxruntime package", false) })
    })
    .flatten();
    // A bare file name makes dlopen search the system library paths.
    let system = Candidate::new(PathBuf::from(library_file_name()), "system library path", false);
    named.into_iter().chain(cached).chain(python).chain(std::iter::once(system))
}

/// A bare file name that exists in the current folder, as `./name`: dlopen would otherwise
/// search only the system library paths for it.
fn in_current_folder(path: &Path) -> PathBuf {
    if path.parent().is_some_and(|p| p.as_os_str().is_empty()) && path.is_file() {
        Path::new(".").join(path)
    } else {
        path.to_path_buf()
    }
}

fn library_file_name() -> String {
    format!("{}onnxruntime{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX)
}

/// The `onnxruntime/capi` folder of an installed Python package, found without importing it
/// (importing onnxruntime takes long; finding its spec is instant).
fn python_onnxruntime_capi() -> Option<PathBuf> {
    let script = "import importlib.util as u\ns = u.find_spec('onnxruntime')\nprint(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')";
    for python in ["python3", "python"] {
        let Ok(out) = std::process::Command::new(python).args(["-c", script]).output() else { continue };
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !dir.is_empty() {
            let capi = Path::new(&dir).join("capi");
            if capi.is_dir() {
                return Some(capi);
            }
        }
    }
    None
}

fn newest_library_in(dir: &Path) -> Option<PathBuf> {
    let stem = library_file_name();
    let mut libs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&stem)))
        .collect();
    // Prefer the versioned file (libonnxruntime.so.1.x.y) if there is no plain one.
    libs.sort();
    libs.into_iter().next()
}

/// dlopens `path`, checks its version (and that it is still `expected`, for a remembered library)
/// and installs its API table into ort.
fn try_load_ort(path: &Path, expected: Option<&str>) -> std::result::Result<String, String> {
    if path.components().count() > 1 && !path.exists() {
        return Err("no such file".into());
    }
    // SAFETY: loading a shared library runs its initialisers; this is the library the user or
    // their Python installation provides for exactly this purpose.
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| format!("cannot load: {}", crate::error::one_line(&e)))?;
    // SAFETY: the symbol's signature is ONNX Runtime's documented C entry point.
    let get_base: libloading::Symbol<unsafe extern "C" fn() -> *const ort_sys::OrtApiBase> =
        unsafe { lib.get(b"OrtGetApiBase") }
            .map_err(|_| "does not export OrtGetApiBase: not ONNX Runtime".to_string())?;
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err("OrtGetApiBase returned null".into());
    }
    // SAFETY: `base` is non-null and points to the library's static API base.
    let version_ptr = unsafe { ((*base).GetVersionString)() };
    if version_ptr.is_null() {
        return Err("no version string".into());
    }
    let version = unsafe { CStr::from_ptr(version_ptr) }.to_string_lossy().into_owned();
    if let Some(expected) = expected.filter(|e| *e != version) {
        return Err(format!("now version {version}, not the remembered {expected}"));
    }
    let minor: u32 = version.split('.').nth(1).and_then(|m| m.parse().ok()).unwrap_or(0);
    if !version.starts_with("1.") || minor < MIN_ORT_MINOR {
        return Err(format!("version {version} is too old: voxmask needs ONNX Runtime 1.{MIN_ORT_MINOR} or newer"));
    }
    let api = unsafe { ((*base).GetApi)(ort_sys::ORT_API_VERSION) };
    if api.is_null() {
        return Err(format!("version {version} does not provide API version {}", ort_sys::ORT_API_VERSION));
    }
    // SAFETY: `api` points to a static OrtApi table of at least our API version; we copy it.
    let table = unsafe { std::ptr::read(api) };
    // The library must stay loaded for the rest of the process: ort calls into it through `table`.
    std::mem::forget(lib);
    if !ort::set_api(table) {
        return Err("an inference backend was already installed".into());
    }
    Ok(version)
}

/// The ONNX Runtime library found through Python, remembered across runs in a small JSON file in
/// the user's cache folder. An entry is used only if its library still exists and reports the
/// same version; a broken or stale entry is ignored and rewritten after the next Python lookup.
pub mod ort_cache {
    use std::path::{Path, PathBuf};

    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Entry {
        pub path: PathBuf,
        pub version: String,
    }

    /// `$XDG_CACHE_HOME/voxmask/onnxruntime.json`, else `~/.cache/voxmask/onnxruntime.json`.
    pub fn file() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("voxmask").join("onnxruntime.json"))
    }

    /// The remembered library, if the entry parses and the file still exists.
    pub fn load() -> Option<(Entry, PathBuf)> {
        let file = file()?;
        let text = std::fs::read_to_string(&file).ok()?;
        let entry: Entry = serde_json::from_str(&text).ok()?;
        entry.path.is_file().then_some((entry, file))
    }

    /// Remembers `path` (made absolute) at `version`; written atomically.
    pub fn store(path: &Path, version: &str) -> Result<PathBuf, String> {
        let file = file().ok_or("no cache folder ($XDG_CACHE_HOME and $HOME are unset)")?;
        let path = std::path::absolute(path).map_err(|e| e.to_string())?;
        let dir = file.parent().ok_or("cache file has no folder")?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let text =
            serde_json::to_string_pretty(&Entry { path, version: version.to_string() }).map_err(|e| e.to_string())?;
        let temp = dir.join(format!(".onnxruntime.json.{}", std::process::id()));
        std::fs::write(&temp, text)
            .and_then(|()| std::fs::rename(&temp, &file))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(file)
    }
}

#[cfg(feature = "tract")]
fn install_tract() -> Result<bool> {
    Ok(ort::set_api(ort_tract::api()))
}

#[cfg(not(feature = "tract"))]
fn install_tract() -> Result<bool> {
    Err(Error::Backend(
        "this voxmask was built without the `tract` feature and no ONNX Runtime library was found".into(),
    ))
}

/// Sets the number of threads tract's matrix kernels may use (ONNX Runtime takes its thread
/// count per session instead).
pub fn set_tract_threads(threads: usize) {
    #[cfg(feature = "tract")]
    {
        use tract_linalg::multithread::{Executor, set_default_executor};
        set_default_executor(if threads > 1 { Executor::multithread(threads) } else { Executor::SingleThread });
    }
    #[cfg(not(feature = "tract"))]
    let _ = threads;
}
