//! Execution ids: 128 random bits, shown as 32 hex digits. Job ids, session ids and Judge0's
//! tokens are made from them: a client that could guess one could read or cancel another's
//! work, so they come from the kernel's random pool or not at all.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The id of one execution.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecutionId(String);

impl ExecutionId {
    /// A fresh random id, from the kernel's random pool through getrandom(2), which needs no
    /// descriptor (opening `/dev/urandom` failed at the limit of open files, and the id was
    /// then made from the clock and the pid, which a client can guess). `Err` when the kernel
    /// gives no random bytes: the request fails rather than get a guessable id.
    pub fn random() -> Result<Self, RandomError> {
        let mut bytes = [0u8; 16];
        warden_sys::random::fill_random(&mut bytes).map_err(|errno| RandomError(errno.into()))?;
        Ok(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The kernel gave no random bytes for an id.
#[derive(Debug, thiserror::Error)]
#[error("reading random bytes for an id from the kernel (getrandom)")]
pub struct RandomError(#[source] pub std::io::Error);

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let (a, b) = (
            ExecutionId::random().expect("random bytes"),
            ExecutionId::random().expect("random bytes"),
        );
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
