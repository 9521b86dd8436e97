//! The use cases of warden, independent of any interface: resolve the language of a request,
//! lay out its files, compile it in the sandbox (or take the artifact from the compile cache),
//! plan its run (defaults ⊕ language ⊕ request, clamped to the operator's maxima) and run it in
//! the native sandbox. The CLI (and later the HTTP and MCP servers) are adapters over this
//! crate.

pub mod compile_cache;
mod engine;
mod execution;
pub mod history;
mod id;
mod workspace;

pub use compile_cache::CompileCache;
pub use engine::{Engine, EngineConfig, EngineError};
pub use execution::{ExecutionRequest, ExecutionResult, Security, SourceFile, StageResult};
pub use history::{
    HistoryEntry, HistoryError, HistoryFilter, HistoryStore, RecordInput, Retention, Stats,
};
pub use id::ExecutionId;
