//! Execution ids (and the Judge0 tokens and job ids made from them) are the kernel's random
//! bits even when the process has no descriptor left: a file of its own, since it lowers the
//! process's limit on open files.

use std::time::Duration;

/// Bug hunt: `ExecutionId::random` read `/dev/urandom` and, when it could not open it (the
/// server at its limit of open files, `EMFILE`), made the id from the time and the pid: the
/// upper 32 of its 128 bits were zero, and the rest a clock reading a client can narrow
/// down, so job ids and Judge0 tokens could be guessed. Without a descriptor to spare, ids
/// are still random (or not made at all).
#[test]
fn ids_stay_random_without_a_descriptor_to_spare() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("the limit");
    // Every descriptor below the soft limit taken: the next open fails with EMFILE.
    setrlimit(Resource::RLIMIT_NOFILE, 64, hard).expect("a lower soft limit");
    let mut held = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        held.push(file);
    }
    assert!(
        std::fs::File::open("/dev/urandom").is_err(),
        "no descriptor is left"
    );
    let ids: Vec<String> = (0..16)
        .map(|_| {
            std::thread::sleep(Duration::from_micros(10));
            warden_engine::ExecutionId::random()
                .expect("an id from getrandom(2), which needs no descriptor")
                .to_string()
        })
        .collect();
    drop(held);
    for id in &ids {
        assert_eq!(id.len(), 32, "{id}");
        // The clock-and-pid fallback left bytes 12 to 15 zero.
        assert_ne!(&id[24..], "00000000", "a guessable id: {ids:?}");
    }
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
}
