//! The kernel's random bytes through getrandom(2), which needs no descriptor: a process at its
//! limit of open files (`EMFILE`, a busy server) still gets them, where opening
//! `/dev/urandom` fails. `nix` does not wrap the call; `libc::getrandom` is glibc's wrapper of
//! the system call.

use nix::errno::Errno;

/// Fills `buf` with random bytes from the kernel's pool (flags 0: the urandom source, which
/// blocks only until the pool is first initialised at boot). Retries an interrupted or short
/// read; any other failure is returned, never replaced by something weaker.
pub fn fill_random(buf: &mut [u8]) -> Result<(), Errno> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe `rest`, writable memory borrowed for the
        // whole call; the kernel writes at most that many bytes into it.
        let got = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match usize::try_from(got) {
            Ok(n) => filled += n,
            Err(_) if Errno::last() == Errno::EINTR => {}
            Err(_) => return Err(Errno::last()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_filled_and_differ() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill_random(&mut a).expect("random bytes");
        fill_random(&mut b).expect("random bytes");
        assert_ne!(a, b);
        fill_random(&mut []).expect("nothing to fill");
    }
}
