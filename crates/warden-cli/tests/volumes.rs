//! Named volumes end to end (issue 12, "Volumes: quota, read-only, isolation between
//! sessions"): `warden volume` and `warden run --volume` with the built binary. A file written
//! by one run is read by the next; a read-only mount refuses writes; a run without the volume
//! sees neither its path nor the host's directory; writing past the quota fails with ENOSPC
//! and the run still ends; a second writer is refused or waits, as configured; a volume in use
//! cannot be removed; and nothing stays mounted or attached to a loop device. Needs root (CI
//! runs as root).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Output};

use serde_json::Value;
use support::{json_of, World};

/// A `warden` running in the background, killed if the test ends before it does.
struct Holder(Option<Child>);

impl Holder {
    /// Waits for it to end; its output.
    fn finish(mut self) -> Output {
        let child = self.0.take().expect("not finished yet");
        child.wait_with_output().expect("warden ends")
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("not finished yet")
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Unmounts what a failed test would leave mounted under the world (a killed holder's
/// volume). Declared after the world and before the holders, so that it runs after they are
/// killed and before the world's directory goes.
struct Unmount<'w>(&'w World);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let dir = self.0.path().display().to_string();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for point in mountinfo.lines().filter_map(|l| l.split(' ').nth(4)) {
            if point.starts_with(&dir) {
                let _ = std::process::Command::new("/usr/bin/umount")
                    .arg(point)
                    .status();
            }
        }
    }
}

/// `warden run --json -l bash -c SCRIPT` with `extra` arguments (`--volume ...`).
fn run(world: &World, script: &str, extra: &[&str]) -> Output {
    world
        .warden()
        .args(["run", "--json", "-l", "bash", "--wall-time", "60s"])
        .args(extra)
        .args(["-c", script])
        .output()
        .expect("warden runs")
}

/// The result of a run that must have run.
fn result(out: &Output) -> Value {
    let result = json_of(out);
    assert!(result.get("error").is_none(), "{result:#}");
    result
}

fn warden(world: &World, args: &[&str]) -> Output {
    world.warden().args(args).output().expect("warden runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn volumes_dir(world: &World) -> PathBuf {
    world.path().join("data/volumes")
}

fn inspect(world: &World, name: &str) -> Value {
    json_of(&warden(world, &["volume", "inspect", name, "--json"]))
}

/// Nothing of the world's volumes is mounted, and no loop device is attached to `image`.
fn assert_nothing_left(world: &World, image: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let dir = world.path().display().to_string();
    assert!(
        !mountinfo.lines().any(|l| l.contains(&dir)),
        "a mount is left under {dir}:\n{mountinfo}"
    );
    let loops = std::process::Command::new("/usr/sbin/losetup")
        .arg("-j")
        .arg(image)
        .output()
        .expect("losetup runs");
    assert!(loops.status.success(), "{loops:?}");
    assert!(
        loops.stdout.is_empty(),
        "a loop device is left: {}",
        String::from_utf8_lossy(&loops.stdout)
    );
}

#[test]
fn a_volume_keeps_files_across_runs_and_is_seen_only_by_runs_that_ask_for_it() {
    let world = World::visible_to_sandboxes();
    let created = ok(&warden(
        &world,
        &["volume", "create", "data", "--size", "16MiB"],
    ));
    assert!(created.contains("created data (16MiB)"), "{created}");
    let image = volumes_dir(&world).join("data/image");

    let write = "printf '#!/bin/sh\\necho from-a-script\\n' > /data/tool.sh && \
                 chmod +x /data/tool.sh && head -c 100000 /dev/zero > /data/blob && \
                 echo kept > /data/note && /data/tool.sh";
    let written = result(&run(&world, write, &["--volume", "data:/data"]));
    assert_eq!(written["outcome"]["code"], 0, "{written:#}");
    assert_eq!(written["stdout"], "from-a-script\n", "{written:#}");
    assert_eq!(written["volumes"][0]["name"], "data", "{written:#}");
    assert_eq!(written["volumes"][0]["read_only"], false, "{written:#}");

    let read = result(&run(
        &world,
        "cat /data/note; stat -c %u /data/note; echo x > /data/other",
        &["--volume", "data:/data:ro"],
    ));
    assert_eq!(read["outcome"]["code"], 1, "{read:#}");
    assert_eq!(read["stdout"], "kept\n0\n", "{read:#}");
    let stderr = read["stderr"].as_str().unwrap_or_default();
    assert!(stderr.contains("Read-only file system"), "{read:#}");
    // The refused write is a security event (docs/events.md, Writes to read-only paths).
    let violations = read["security"]["violations"].as_array().cloned();
    let write = violations
        .iter()
        .flatten()
        .find(|v| v["kind"] == "readonly_write")
        .unwrap_or_else(|| panic!("no readonly_write in {read:#}"));
    assert_eq!(
        write["writes"]["attempts"][0]["path"], "/data/other",
        "{write:#}"
    );

    let host = volumes_dir(&world).display().to_string();
    let blind = result(&run(
        &world,
        &format!("ls /data; ls {host}; ls {}", world.path().display()),
        &[],
    ));
    assert_ne!(blind["outcome"]["code"], 0, "{blind:#}");
    assert_eq!(blind["stdout"], "", "{blind:#}");
    let stderr = blind["stderr"].as_str().unwrap_or_default();
    assert!(stderr.contains("'/data': No such file"), "{blind:#}");
    assert!(
        stderr.contains(&format!("'{host}': No such file")),
        "{blind:#}"
    );

    let info = inspect(&world, "data");
    assert_eq!(info["size_bytes"], 16 << 20, "{info:#}");
    assert!(
        info["used_bytes"].as_u64().unwrap_or(0) >= 100_000,
        "{info:#}"
    );
    assert!(info["last_used_at"].is_string(), "{info:#}");
    assert_eq!(info["in_use"]["attached"], false, "{info:#}");
    let listed = json_of(&warden(&world, &["volume", "ls", "--json"]));
    assert_eq!(listed[0]["name"], "data", "{listed:#}");
    assert_nothing_left(&world, &image);

    // The history keeps which volumes a run had.
    let id = written["id"].as_str().expect("an id");
    let shown = json_of(&warden(&world, &["show", id, "--json"]));
    assert_eq!(
        shown["security"]["volumes"][0]["path"], "/data",
        "{shown:#}"
    );

    // Bug hunt (docs, finding 14): `inspect` said `used 15360 bytes` where `ls` said 15KiB.
    let used = json_of(&warden(&world, &["volume", "inspect", "data", "--json"]))["used_bytes"]
        .as_u64()
        .expect("used_bytes");
    let inspected = ok(&warden(&world, &["volume", "inspect", "data"]));
    assert!(
        inspected.contains(&format!(
            "used       {} ({used} bytes)\n",
            warden_core::ByteSize(used)
        )),
        "{inspected}"
    );

    ok(&warden(&world, &["volume", "rm", "data"]));
    let gone = warden(&world, &["volume", "inspect", "data"]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no volume named \"data\""));
    let unknown = json_of(&run(&world, "true", &["--volume", "data:/data"]));
    assert!(
        unknown["error"]
            .as_str()
            .is_some_and(|e| e.contains("no volume named")),
        "{unknown:#}"
    );
}

#[test]
fn writing_past_the_quota_fails_with_no_space_and_the_run_still_ends() {
    let world = World::visible_to_sandboxes();
    ok(&warden(
        &world,
        &["volume", "create", "small", "--size", "8MiB"],
    ));
    let full = result(&run(
        &world,
        "head -c 20000000 /dev/zero > /data/big; echo status=$?; rm /data/big; \
         echo after > /data/after && cat /data/after",
        &["--volume", "small:/data", "--max-file-size", "64MiB"],
    ));
    assert_eq!(full["outcome"]["kind"], "exited", "{full:#}");
    assert_eq!(full["outcome"]["code"], 0, "{full:#}");
    assert_eq!(full["stdout"], "status=1\nafter\n", "{full:#}");
    let stderr = full["stderr"].as_str().unwrap_or_default();
    assert!(stderr.contains("No space left on device"), "{full:#}");
    assert_nothing_left(&world, &volumes_dir(&world).join("small/image"));
}

/// A directory `name` of the world with `mount ARGS` mounted on it (unmounted by the test's
/// [`Unmount`]).
fn mounted_dir(world: &World, name: &str, args: &[&str]) -> PathBuf {
    let dir = world.path().join(name);
    std::fs::create_dir(&dir).expect("mkdir");
    let mounted = std::process::Command::new("/usr/bin/mount")
        .args(args)
        .arg(&dir)
        .status()
        .expect("mount runs");
    assert!(mounted.success(), "mount {args:?} on {}", dir.display());
    dir
}

/// `warden ARGS` with its volumes in `dir`.
fn volumes_in(world: &World, dir: &Path, args: &[&str]) -> Output {
    world
        .warden()
        .env("WARDEN_VOLUMES_DIR", dir)
        .args(args)
        .output()
        .expect("warden runs")
}

/// Bug hunt: a volume's image was sparse, so its quota was space it did not have: on a host
/// file system that filled up, the program's writes succeeded and were then lost (the next run
/// read `Bad message`). The image's blocks are now reserved when it is created, and a volume
/// the host has no room for is refused, leaving nothing.
#[test]
fn a_volume_has_its_space_and_one_the_host_has_no_room_for_is_refused() {
    let world = World::visible_to_sandboxes();
    let _unmount = Unmount(&world);
    let disk = mounted_dir(
        &world,
        "small-disk",
        &["-t", "tmpfs", "-o", "size=24m", "tmpfs"],
    );
    let on_small = |args: &[&str]| volumes_in(&world, &disk, args);
    ok(&on_small(&["volume", "create", "fits", "--size", "16MiB"]));
    let image = disk.join("fits/image");
    let allocated =
        std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&image).expect("image")) * 512;
    // mkfs may leave a few blocks out; a sparse image has a few hundred KiB.
    assert!(
        allocated >= 15 << 20,
        "the image's blocks are its own: {allocated}"
    );
    let refused = on_small(&["volume", "create", "big", "--size", "16MiB"]);
    assert!(!refused.status.success(), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("no room on the host"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&disk)
        .expect("the volumes")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "fits" && n != "lost+found")
        .collect();
    assert!(left.is_empty(), "left by the refused volume: {left:?}");
    ok(&on_small(&["volume", "rm", "fits"]));
}

/// Bug hunt: on a file system that cannot reserve space (ext2; ext3 without extents; some
/// network file systems), creating a volume failed with EOPNOTSUPP once images were
/// reserved. Its image is sparse there, as before, and the volume works.
#[test]
fn a_file_system_that_cannot_reserve_still_takes_volumes() {
    let world = World::visible_to_sandboxes();
    let _unmount = Unmount(&world);
    let image = world.path().join("ext2.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(64 << 20))
        .expect("an image");
    let formatted = std::process::Command::new("/usr/sbin/mkfs.ext2")
        .args(["-q", "-F"])
        .arg(&image)
        .status()
        .expect("mkfs.ext2 runs");
    assert!(formatted.success());
    let image = image.to_str().expect("a UTF-8 path");
    let disk = mounted_dir(&world, "ext2", &["-o", "loop", image]);
    let on_ext2 = |args: &[&str]| volumes_in(&world, &disk, args);
    ok(&on_ext2(&["volume", "create", "plain", "--size", "16MiB"]));
    let used = on_ext2(&[
        "run",
        "--json",
        "-l",
        "bash",
        "--volume",
        "plain:/data",
        "-c",
        "echo kept > /data/f && cat /data/f",
    ]);
    assert_eq!(
        result(&used)["stdout"],
        "kept\n",
        "{}",
        String::from_utf8_lossy(&used.stdout)
    );
    ok(&on_ext2(&["volume", "rm", "plain"]));
}

/// A writer run that holds the volume until the test creates `release` in it (through the
/// host's mount), then writes `a-done`.
fn hold_writer(world: &World, name: &str) -> Holder {
    let child = world
        .warden()
        .args(["run", "--json", "-l", "bash", "--wall-time", "60s"])
        .args(["--volume", &format!("{name}:/v")])
        .args([
            "-c",
            "touch /v/started; while [ ! -e /v/release ]; do sleep 0.05; done; \
             echo done > /v/a-done",
        ])
        .spawn()
        .expect("warden starts");
    Holder(Some(child))
}

/// Waits until the holder has started (its marker is on the host's mount).
fn wait_started(world: &World, name: &str, holder: &mut Holder) -> PathBuf {
    let mnt = volumes_dir(world).join(name).join("mnt");
    while !mnt.join("started").exists() {
        assert!(
            holder
                .child()
                .try_wait()
                .expect("the holder's status")
                .is_none(),
            "the holder ended before it started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    mnt
}

#[test]
fn a_second_writer_is_refused_readers_share_and_a_volume_in_use_stays() {
    let world = World::visible_to_sandboxes();
    let _unmount = Unmount(&world);
    ok(&warden(
        &world,
        &["volume", "create", "shared", "--size", "8MiB"],
    ));
    ok(&warden(
        &world,
        &["volume", "create", "idle", "--size", "8MiB"],
    ));
    let mut holder = hold_writer(&world, "shared");
    let mnt = wait_started(&world, "shared", &mut holder);

    let second = json_of(&run(&world, "echo no > /v/b", &["--volume", "shared:/v"]));
    let error = second["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("volume \"shared\" already has a writer"),
        "{second:#}"
    );
    let reader = result(&run(&world, "ls /v", &["--volume", "shared:/v:ro"]));
    assert_eq!(reader["outcome"]["code"], 0, "{reader:#}");
    assert!(
        reader["stdout"].as_str().unwrap_or("").contains("started"),
        "{reader:#}"
    );

    let info = inspect(&world, "shared");
    assert_eq!(info["in_use"]["attached"], true, "{info:#}");
    assert_eq!(info["in_use"]["writer"], true, "{info:#}");
    let busy = warden(&world, &["volume", "rm", "shared"]);
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("is in use"),
        "{busy:?}"
    );
    let pruned = ok(&warden(&world, &["volume", "prune"]));
    assert_eq!(pruned, "removed idle\n");

    std::fs::write(mnt.join("release"), b"").expect("released");
    let held = holder.finish();
    assert_eq!(result(&held)["outcome"]["code"], 0);
    assert_nothing_left(&world, &volumes_dir(&world).join("shared/image"));
    ok(&warden(&world, &["volume", "rm", "shared"]));
    let listed = json_of(&warden(&world, &["volume", "ls", "--json"]));
    assert_eq!(listed, serde_json::json!([]));
}

#[test]
fn with_wait_configured_a_second_writer_runs_after_the_first() {
    let world = World::visible_to_sandboxes();
    let _unmount = Unmount(&world);
    world.write_config("[volumes]\nconcurrent_writers = \"wait\"\nwriter_wait = \"60s\"\n");
    ok(&warden(
        &world,
        &["volume", "create", "queue", "--size", "8MiB"],
    ));
    let mut holder = hold_writer(&world, "queue");
    let mnt = wait_started(&world, "queue", &mut holder);
    let second = Holder(Some(
        world
            .warden()
            .args(["run", "--json", "-l", "bash", "--wall-time", "60s"])
            .args(["--volume", "queue:/v", "-c", "cat /v/a-done"])
            .spawn()
            .expect("warden starts"),
    ));
    // Had the second writer not waited, it would have run by now and found no `a-done`,
    // which the first writes only once released.
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::fs::write(mnt.join("release"), b"").expect("released");
    let first = holder.finish();
    assert_eq!(result(&first)["outcome"]["code"], 0);
    let second = result(&second.finish());
    assert_eq!(second["outcome"]["code"], 0, "{second:#}");
    assert_eq!(second["stdout"], "done\n", "{second:#}");
    assert_nothing_left(&world, &volumes_dir(&world).join("queue/image"));
}

#[test]
fn bad_names_sizes_paths_and_modes_are_refused() {
    let world = World::with_config(
        "[volumes]\nmax_size = \"64MiB\"\n[modes]\ntrusted_enabled = true\nnone = \"trusted\"\n",
    );
    for (args, said) in [
        (vec!["Data", "--size", "8MiB"], "invalid volume name"),
        (vec!["big", "--size", "65MiB"], "[volumes] max_size"),
        (vec!["tiny", "--size", "1MiB"], "outside 8MiB"),
    ] {
        let out = warden(&world, &[&["volume", "create"], args.as_slice()].concat());
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(said), "{stderr}");
    }
    ok(&warden(
        &world,
        &["volume", "create", "v", "--size", "8MiB"],
    ));
    let long = format!("v:/{}", "d".repeat(256));
    let longer = format!("v:{}", "/a".repeat(2100));
    for (extra, said) in [
        (
            vec!["--volume", "v:data", "--mode", "sandboxed"],
            "must be an absolute path",
        ),
        (
            vec!["--volume", "v:/", "--mode", "sandboxed"],
            "must be an absolute path",
        ),
        (
            vec!["--volume", "v:/work", "--mode", "sandboxed"],
            "workspace",
        ),
        (
            vec!["--volume", "v:/usr/lib", "--mode", "sandboxed"],
            "overlaps",
        ),
        (
            vec!["--volume", "v:/a", "--mode", "trusted"],
            "trusted mode",
        ),
        // A part the filesystem cannot hold (it failed in the sandbox's build: a 500 through
        // a server).
        (
            vec!["--volume", &long, "--mode", "sandboxed"],
            "has a part longer than a file name can be",
        ),
        // Regression (hunt srv 4): each part fits, the whole does not (a 500 through a
        // server).
        (
            vec!["--volume", &longer, "--mode", "sandboxed"],
            "is longer than 1024 bytes",
        ),
        // Regression (hunt srv 7): a newline in the path was mounted.
        (
            vec!["--volume", "v:/da\nta", "--mode", "sandboxed"],
            "control character",
        ),
    ] {
        let out = json_of(&run(&world, "true", &extra));
        let error = out["error"].as_str().unwrap_or_default();
        assert!(error.contains(said), "{extra:?}: {out:#}");
    }
    // Regression (hunt srv 7): `v:/x:ro:rw` was a writable mount at `/x:ro`, while `v:/a:b`
    // was refused: a path holding `:` is refused, NAME:PATH[:MODE] read one way only.
    for spec in ["v:/x:ro:rw", "v:/x:y:rw", "v:/a:b", "v:/x:ro:"] {
        let out = run(&world, "true", &["--volume", spec]);
        assert_eq!(out.status.code(), Some(2), "{spec}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("cannot hold ':'"), "{spec}: {stderr}");
    }
    assert_nothing_left(&world, &volumes_dir(&world).join("v/image"));
}

#[test]
fn a_mount_left_by_a_killed_warden_is_reused_and_then_undone() {
    let world = World::visible_to_sandboxes();
    let _unmount = Unmount(&world);
    ok(&warden(
        &world,
        &["volume", "create", "crash", "--size", "8MiB"],
    ));
    let mut holder = hold_writer(&world, "crash");
    wait_started(&world, "crash", &mut holder);
    holder.child().kill().expect("warden killed");
    holder.child().wait().expect("reaped");
    let image = volumes_dir(&world).join("crash/image");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        mountinfo.contains(&world.path().display().to_string()),
        "the killed warden's mount is left for the next lease to find"
    );
    let info = inspect(&world, "crash");
    assert_eq!(info["in_use"]["attached"], false, "{info:#}");
    assert_eq!(info["in_use"]["writer"], false, "{info:#}");
    let next = result(&run(&world, "ls /v", &["--volume", "crash:/v"]));
    assert_eq!(next["stdout"], "lost+found\nstarted\n", "{next:#}");
    assert_nothing_left(&world, &image);
    ok(&warden(&world, &["volume", "rm", "crash"]));
}

#[test]
fn an_isolated_run_gets_volumes_too() {
    let world = World::visible_to_sandboxes();
    let _unmount = Unmount(&world);
    ok(&warden(
        &world,
        &["volume", "create", "gv", "--size", "8MiB"],
    ));
    let isolated = ["--mode", "isolated", "--volume"];
    let written = result(&run(
        &world,
        "echo from-gvisor > /data/note; head -c 20000000 /dev/zero > /data/big; \
         echo status=$?; rm /data/big",
        &[&isolated[..], &["gv:/data"]].concat(),
    ));
    assert_eq!(written["mode"], "isolated", "{written:#}");
    assert_eq!(written["stdout"], "status=1\n", "{written:#}");
    let stderr = written["stderr"].as_str().unwrap_or_default();
    assert!(stderr.contains("No space left on device"), "{written:#}");
    let read = result(&run(
        &world,
        "cat /data/note; echo x > /data/other",
        &[&isolated[..], &["gv:/data:ro"]].concat(),
    ));
    assert_eq!(read["stdout"], "from-gvisor\n", "{read:#}");
    let stderr = read["stderr"].as_str().unwrap_or_default();
    assert!(stderr.contains("Read-only file system"), "{read:#}");
    let sandboxed = result(&run(&world, "cat /data/note", &["--volume", "gv:/data"]));
    assert_eq!(sandboxed["stdout"], "from-gvisor\n", "{sandboxed:#}");
    assert_nothing_left(&world, &volumes_dir(&world).join("gv/image"));
}

/// A compiled program that reads a header from its volume is not served another volume's
/// binary from the compile cache: the volume's files are in no cache key, so a run with
/// volumes compiles afresh and keeps nothing there (one user's volume could otherwise plant
/// the binary another runs with the same source).
#[test]
fn a_run_with_volumes_neither_takes_nor_leaves_a_compiled_binary_in_the_cache() {
    let world = World::new();
    let _unmount = Unmount(&world);
    for (name, message) in [("mine", "attacker binary"), ("theirs", "victim binary")] {
        ok(&warden(
            &world,
            &["volume", "create", name, "--size", "8MiB"],
        ));
        let header = format!("echo '#define MSG \"{message}\"' > /data/v.h");
        let wrote = result(&run(
            &world,
            &header,
            &["--volume", &format!("{name}:/data")],
        ));
        assert_eq!(wrote["outcome"]["code"], 0, "{wrote:#}");
    }
    let program = world.path().join("poison.c");
    std::fs::write(
        &program,
        "#include <stdio.h>\n#include \"/data/v.h\"\nint main(void) { puts(MSG); return 0; }\n",
    )
    .expect("written");
    let compiled = |name: &str| {
        result(
            &world
                .warden()
                .args(["run", "--json", "--volume", &format!("{name}:/data")])
                .arg(&program)
                .output()
                .expect("warden runs"),
        )
    };
    let first = compiled("mine");
    assert_eq!(first["stdout"], "attacker binary\n", "{first:#}");
    let second = compiled("theirs");
    assert_eq!(second["stdout"], "victim binary\n", "{second:#}");
    assert_eq!(second["compile"]["cached"], false, "{second:#}");
    for name in ["mine", "theirs"] {
        ok(&warden(&world, &["volume", "rm", name]));
    }
}
