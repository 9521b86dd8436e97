//! The use cases of warden, independent of any interface: load the settings (`warden.toml` and
//! the environment), resolve the language of a request, analyse it and choose its mode, lay out
//! its files, compile it in the sandbox (or take the artifact from the compile cache), plan its
//! run (defaults ⊕ language ⊕ request, clamped to the operator's maxima), run it, and record it
//! in the history, which it also answers questions about. The CLI (and later the HTTP and MCP
//! servers) are adapters over this crate: they parse, call and render.

mod cancel;
pub mod compile_cache;
mod confined_analysis;
pub mod dependency_cache;
mod engine;
mod error;
mod execution;
pub mod history;
mod id;
pub mod network;
mod security;
pub mod sessions;
pub mod settings;
mod test_cases;
pub mod tools;
pub mod volumes;
mod workspace;

pub use cancel::Cancellation;
pub use compile_cache::CompileCache;
pub use confined_analysis::{
    worker::main as analysis_worker_main, WORKER_ARG as ANALYSIS_WORKER_ARG,
};
pub use dependency_cache::DependencyCache;
pub use engine::{
    host_memory_pressure, Connection, Engine, EngineConfig, FileAnswer, FileOp, McpWrap,
    MemoryPressure, NetworkReport, PoolStats, RelayReport, RelayStop, SandboxCheck, SessionCall,
    SessionFile, StopKind, Stopped, DEFAULT_CALL_TIMEOUT, MAX_DOWNLOAD,
};
pub use error::{
    chain as error_chain, ArgumentError, CompileOptionError, EngineError, ErrorKind, SourceError,
};
pub use execution::{
    DenialHook, Execution, ExecutionRequest, ExecutionResult, Interactive, LanguageDetection,
    Origin, OwnCommands, Phase, PreparedHook, RunHook, SourceFile, StageResult, VolumeRequest,
    Warning, WarningKind,
};
pub use history::{
    ConnectionFilter, EventFilter, HistoryEntry, HistoryError, HistoryFilter, HistoryStore,
    LoggedConnection, NetworkStats, RecordInput, Retention, SecurityEvent, Severity, Stats,
    ToolStats,
};
pub use id::{ExecutionId, RandomError};
pub use security::{RefusedCall, Security, Stage, Violation, ViolationKind};
pub use sessions::{
    PendingCall, SessionError, SessionInfo, SessionRequest, SessionState, SessionsSettings,
};
pub use settings::{CacheSettings, HistorySettings, Settings, SettingsError};
pub use test_cases::{Comparison, SandboxReuse, TestCase, TestResult, Verdict};
pub use tools::{
    CallCheck, CallRefusal, ProgramFile, RegisteredTool, Registrant, RegistryError, ToolCallError,
    ToolCallRequest, ToolReply, ToolSource, ToolStatus, ToolsSettings,
};
pub use volumes::{
    CallersVolumes, InUse, VolumeError, VolumeErrorKind, VolumeInfo, VolumeLease, Volumes,
    VolumesSettings,
};
