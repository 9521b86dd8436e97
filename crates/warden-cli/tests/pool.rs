//! The warm pool (issue 12, used by `warden serve`): a pooled sandbox is a fresh one built
//! ahead of time, or one reset after an earlier run of the same owner. A run in it cannot find
//! what an earlier run wrote or left running, one owner's sandboxes never serve another, the
//! pool refills after each use, and nothing is left once the engine is dropped. Needs root (CI
//! runs as root).

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::{our_cgroups, World};
use warden_engine::{Engine, ExecutionRequest, Origin, SourceFile};

fn engine_with(world: &World, reuse: u64) -> Engine {
    Engine::new(pool_config(world, reuse)).expect("engine")
}

/// The configuration of an engine with a pool of one sandbox per spec, each serving `reuse`
/// runs.
fn pool_config(world: &World, reuse: u64) -> warden_engine::EngineConfig {
    let mut config = world
        .settings()
        .engine_config(PathBuf::from(env!("CARGO_BIN_EXE_warden")));
    config.zygote = true;
    config.pool_size = 1;
    config.pool_reuse = reuse;
    config
}

fn engine(world: &World) -> Engine {
    engine_with(world, 1)
}

fn bash(engine: &Engine, script: &str) -> String {
    bash_as(engine, None, script)
}

fn bash_as(engine: &Engine, token: Option<&str>, script: &str) -> String {
    let request = ExecutionRequest {
        language: Some("bash".into()),
        sources: vec![SourceFile {
            name: None,
            code: script.as_bytes().to_vec(),
            executable: false,
        }],
        origin: Origin::new("v1", token.map(str::to_owned)),
        ..ExecutionRequest::default()
    };
    let result = engine.execute(request).expect("executed").result;
    String::from_utf8_lossy(&result.stdout).into_owned()
}

/// Waits until the pool has a sandbox ready again.
fn refilled(engine: &Engine) {
    let start = Instant::now();
    while engine.pool_stats().map_or(0, |s| s.ready) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the pool never refilled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pooled_sandboxes_never_see_an_earlier_runs_data() {
    let world = World::new();
    let engine = engine(&world);
    let writer = "echo secret > /work/secret; echo secret > /tmp/secret; sleep 60 & echo wrote";
    assert_eq!(bash(&engine, writer), "wrote\n");
    for _ in 0..3 {
        refilled(&engine);
        let seen = bash(
            &engine,
            "ls -A /work /tmp; ps -eo comm= | grep -c '^sleep$' || true",
        );
        assert!(!seen.contains("secret"), "an earlier run's file: {seen}");
        assert!(
            seen.trim_end().ends_with('0'),
            "an earlier run's process: {seen}"
        );
    }
    let stats = engine.pool_stats().expect("a pool");
    assert!(stats.hits >= 3, "{stats:?}");
    drop(engine);
    assert_eq!(our_cgroups(), 0, "a sandbox outlived the engine");
}

/// Waits until the pool holds `n` sandboxes (fresh and reset).
fn ready(engine: &Engine, n: usize) {
    let start = Instant::now();
    while engine.pool_stats().map_or(0, |s| s.ready) < n {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the pool never held {n}: {:?}",
            engine.pool_stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_reused_sandbox_serves_one_owner_and_keeps_nothing_of_its_runs() {
    let world = World::new();
    let engine = engine_with(&world, 10);
    // Each run prints its sandbox (the network namespace is one per sandbox while it lives).
    let whose = "readlink /proc/self/ns/net";
    let writer = format!(
        "ipcmk -M 4096 >/dev/null; echo secret > /work/secret; echo secret > /tmp/secret; \
         (sleep 60 &); {whose}"
    );
    let first = bash_as(&engine, Some("alice"), &writer);
    ready(&engine, 2); // the fresh one built after the take, and alice's reset one
    let look = format!(
        "ls -A /work /tmp; ipcs -m | grep -c 0x; ps -eo comm= | grep -c '^sleep$'; {whose}"
    );
    let again = bash_as(&engine, Some("alice"), &look);
    assert_eq!(
        again,
        format!("/tmp:\n\n/work:\nmain.sh\n0\n0\n{first}"),
        "alice's second run is in her reset sandbox, empty"
    );
    let stats = engine.pool_stats().expect("a pool");
    assert!(stats.reused >= 1, "{stats:?}");

    // bob never gets a sandbox alice used, not even while alice's is idle in the pool.
    ready(&engine, 2);
    for _ in 0..3 {
        let bobs = bash_as(&engine, Some("bob"), whose);
        assert_ne!(bobs, first, "bob ran in alice's sandbox");
        ready(&engine, 2);
    }
    drop(engine);
    assert_eq!(our_cgroups(), 0, "a sandbox outlived the engine");
}

/// Bug hunt: the payload has the init's uid, so `prlimit` on pid 1 lowered the init's own
/// limits, and every later run of the owner in that reused sandbox inherited them (a 60 MiB
/// address space, 20 open files: the next program's `MemoryError`, or warden's own setup
/// failing to write the next program's file). The call is refused now, and the next run in
/// the reset sandbox has its own limits.
#[test]
fn a_run_cannot_lower_the_limits_of_the_next_in_its_sandbox() {
    let world = World::new();
    let engine = engine_with(&world, 10);
    let whose = "readlink /proc/self/ns/net";
    let first = bash_as(
        &engine,
        Some("alice"),
        &format!(
            "prlimit --pid 1 --as=62914560:62914560 --nofile=20:20 --fsize=100:100 \
             2>/dev/null || echo refused; {whose}"
        ),
    );
    let mut lines = first.lines();
    assert_eq!(lines.next(), Some("refused"), "{first}");
    let sandbox = lines.next().expect("its sandbox").to_owned();
    ready(&engine, 2); // the fresh one built after the take, and alice's reset one
    let again = bash_as(
        &engine,
        Some("alice"),
        &format!("ulimit -v; ulimit -n; {whose}"),
    );
    assert_eq!(
        again,
        format!("unlimited\n256\n{sandbox}\n"),
        "in the reset sandbox"
    );
    drop(engine);
    assert_eq!(our_cgroups(), 0, "a sandbox outlived the engine");
}

/// Runs `script` for `owner` in `n` threads at once; each prints what it printed.
fn at_once(engine: &Engine, owner: &str, script: &str, n: usize) -> Vec<String> {
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..n)
            .map(|_| scope.spawn(|| bash_as(engine, Some(owner), script)))
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("a run"))
            .collect()
    })
}

/// Sandboxes given back together are all kept for their owner's next runs (up to twice the
/// pool's size), so that callers that run at once and come back at once each find a reset
/// sandbox, and none is destroyed only for another to be built.
#[test]
fn sandboxes_given_back_at_once_are_all_kept_for_their_owner() {
    let world = World::new();
    let engine = engine_with(&world, 10);
    let slow = "sleep 0.3; readlink /proc/self/ns/net";
    let first = at_once(&engine, "carol", slow, 2);
    assert_ne!(first[0], first[1], "two runs at once, two sandboxes");
    // Both reset for carol, and a fresh one built (size 1).
    ready(&engine, 3);
    let before = engine.pool_stats().expect("a pool");
    let mut again = at_once(&engine, "carol", slow, 2);
    let after = engine.pool_stats().expect("a pool");
    assert_eq!(
        after.reused - before.reused,
        2,
        "both runs took a reset sandbox: {before:?} -> {after:?}"
    );
    let mut first = first;
    first.sort();
    again.sort();
    assert_eq!(again, first, "the same two sandboxes, reset");
    drop(engine);
    assert_eq!(our_cgroups(), 0, "a sandbox outlived the engine");
}

/// The memory pressure the next test's pool sees.
static PRESSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn pressed() -> bool {
    PRESSED.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn under_memory_pressure_the_pool_shrinks_and_runs_go_on() {
    use std::sync::atomic::Ordering;
    let world = World::new();
    let mut config = pool_config(&world, 10);
    config.memory_pressure = pressed;
    let engine = Engine::new(config).expect("engine");
    assert_eq!(bash(&engine, "echo one"), "one\n");
    ready(&engine, 2); // a fresh one and the reset one

    PRESSED.store(true, Ordering::SeqCst);
    let start = Instant::now();
    while engine.pool_stats().map_or(1, |s| s.ready) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the pool never shrank: {:?}",
            engine.pool_stats()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(engine.pool_stats().expect("a pool").shrunk >= 2);
    // Runs go on, each building its own; nothing is kept or built while the pressure lasts.
    assert_eq!(bash(&engine, "echo two"), "two\n");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(engine.pool_stats().expect("a pool").ready, 0);

    PRESSED.store(false, Ordering::SeqCst);
    assert_eq!(bash(&engine, "echo three"), "three\n");
    ready(&engine, 1);
    drop(engine);
    assert_eq!(our_cgroups(), 0, "a sandbox outlived the engine");
}

#[test]
fn languages_named_in_the_configuration_are_ready_from_the_start() {
    let world = World::new();
    let mut config = world
        .settings()
        .engine_config(PathBuf::from(env!("CARGO_BIN_EXE_warden")));
    config.zygote = true;
    config.pool_size = 0;
    config.pool_languages = vec![("bash".into(), 2)];
    let engine = Engine::new(config).expect("engine");
    engine.warm_pool().expect("the pool starts");
    let start = Instant::now();
    while engine.pool_stats().map_or(0, |s| s.ready) < 2 {
        assert!(start.elapsed() < Duration::from_secs(30), "never built");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The first bash run takes one: a hit, not a miss; python has no pool (size 0).
    assert_eq!(bash(&engine, "echo warm"), "warm\n");
    let stats = engine.pool_stats().expect("a pool");
    assert_eq!((stats.hits, stats.misses), (1, 0), "{stats:?}");

    let mut config = world
        .settings()
        .engine_config(PathBuf::from(env!("CARGO_BIN_EXE_warden")));
    config.pool_languages = vec![("cobol".into(), 1)];
    let engine = Engine::new(config).expect("engine");
    let refused = engine.warm_pool().expect_err("an unknown language");
    assert!(refused.to_string().contains("cobol"), "{refused}");
    drop(engine);
}

/// Bug hunt: every distinct set of limits is a spec of its own, and the pool kept a fresh
/// sandbox for each, for ever (a client varying the wall time by a millisecond made a server
/// hold hundreds of helpers, cgroups and mounts). Now at most 8 × `pool_size` specs' fresh
/// sandboxes are kept, and those of a spec no run asked for in `pool_idle` are destroyed.
#[test]
fn fresh_sandboxes_of_many_specs_are_bounded_and_expire() {
    let world = World::new();
    let mut config = pool_config(&world, 1);
    config.pool_idle = Duration::from_secs(2);
    let engine = Engine::new(config).expect("engine");
    let most = std::cell::Cell::new(0);
    let watch = |engine: &Engine| {
        let ready = engine.pool_stats().map_or(0, |s| s.ready);
        most.set(most.get().max(ready));
    };
    for i in 0..12 {
        let request = ExecutionRequest {
            language: Some("bash".into()),
            sources: vec![SourceFile {
                name: None,
                code: b"true".to_vec(),
                executable: false,
            }],
            limits: warden_core::LimitOverrides {
                wall_time: Some(Duration::from_millis(5000 + i)),
                ..warden_core::LimitOverrides::default()
            },
            ..ExecutionRequest::default()
        };
        engine.execute(request).expect("executed");
        // Let the refill thread build what it will.
        std::thread::sleep(Duration::from_millis(150));
        watch(&engine);
    }
    assert!(most.get() <= 8, "fresh sandboxes kept: {}", most.get());
    let start = Instant::now();
    while engine.pool_stats().map_or(0, |s| s.ready) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the fresh sandboxes never expired: {:?}",
            engine.pool_stats()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(engine);
    assert_eq!(our_cgroups(), 0, "a sandbox outlived the engine");
}
