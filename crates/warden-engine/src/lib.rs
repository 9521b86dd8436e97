//! The use cases of warden, independent of any interface: resolve the language of a request,
//! plan its execution (defaults ⊕ language ⊕ request, clamped to the operator's maxima) and run
//! it in the native sandbox. The CLI (and later the HTTP and MCP servers) are adapters over
//! this crate.

mod engine;
mod execution;
mod id;

pub use engine::{Engine, EngineConfig, EngineError};
pub use execution::{ExecutionRequest, ExecutionResult, Mode, SourceFile};
pub use id::ExecutionId;
