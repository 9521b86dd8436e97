//! `warden serve`: the execution service. An adapter over `warden-engine`, like the CLI: it
//! parses HTTP requests, admits them (a bounded queue in front of a fixed number of workers),
//! calls the engine on a blocking thread, and renders the answer in the vocabulary of the API
//! that was asked: warden's own (`/v1`), Piston's (`/api/v2`) or Judge0's (the root).

mod error;
mod state;

pub use error::ApiError;
pub use state::{Api, AppState, Caller, ExecError};
