//! Typed wrappers over the Linux system calls and kernel interfaces warden needs that `nix`
//! does not wrap safely. The only crate of the workspace that contains `unsafe`; every block
//! carries a `// SAFETY:` comment.

// The workspace denies `unsafe_code`; this crate exists to hold the unsafe code it needs
// (DESIGN.md §7.1), each block checked by `clippy::undocumented_unsafe_blocks`.
#![allow(unsafe_code)]

pub mod capabilities;
pub mod fdpass;
pub mod ipc;
pub mod keys;
pub mod lock;
pub mod mount;
pub mod network;
pub mod process;
pub mod random;
pub mod seccomp;
pub mod signals;
