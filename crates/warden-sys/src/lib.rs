//! Typed wrappers over the Linux system calls and kernel interfaces warden needs that `nix`
//! does not wrap safely. The only crate of the workspace that contains `unsafe`; every block
//! carries a `// SAFETY:` comment.

pub mod capabilities;
pub mod fdpass;
pub mod lock;
pub mod network;
pub mod process;
pub mod seccomp;
pub mod signals;
