//! The Dockerfile's build step, without Docker (no engine runs here): take the `cargo build` command
//! from the repo's Dockerfile as written, run it, and check that the three binaries it makes are static
//! (no ELF interpreter: they run on distroless/static, which has no libc) and start.
//!
//! Needs the musl target and C compiler, as the Dockerfile's build stage installs them:
//! `rustup target add x86_64-unknown-linux-musl` and `apt-get install musl-tools`. Missing, the test
//! fails and says so. The build goes to its own target dir under ~/.cache/kpo-sweeper (kept between runs and clones).

use std::path::{Path, PathBuf};
use std::process::Command;

const BINARIES: [&str; 3] = ["webhook", "sweeper", "certs"];
const TARGET: &str = "x86_64-unknown-linux-musl";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("certs/ has a parent")
        .to_path_buf()
}

/// The `cargo build …` command of the Dockerfile's build stage (one `RUN` with line continuations).
fn dockerfile_build_command() -> String {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("read Dockerfile");
    let line = dockerfile
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("cargo build "))
        .expect("the Dockerfile has a `cargo build` line");
    line.trim_end_matches('\\').trim().to_string()
}

/// Whether an ELF file asks for a program interpreter (a dynamic loader): PT_INTERP among its
/// program headers.
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not a 64-bit ELF");
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

#[test]
fn has_interpreter_tells_a_dynamic_binary() {
    // The test harness itself is a dynamically linked glibc executable.
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    assert!(has_interpreter(&me));
}

#[test]
fn dockerfile_build_step_makes_static_binaries_that_run() {
    let cmd = dockerfile_build_command();
    assert!(cmd.contains(&format!("--target {TARGET}")), "{cmd}");
    assert!(
        cmd.contains("--release") && cmd.contains("--locked"),
        "{cmd}"
    );
    for b in BINARIES {
        assert!(cmd.contains(&format!("-p {b}")), "{cmd} does not build {b}");
    }

    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .expect("rustup on PATH");
    assert!(
        String::from_utf8_lossy(&installed.stdout).contains(TARGET),
        "the {TARGET} target is missing: rustup target add {TARGET} (and apt-get install musl-tools)"
    );
    assert!(
        Command::new("musl-gcc")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "musl-gcc is missing: apt-get install musl-tools"
    );

    // Outside the repo and keyed by target, like the other heavy caches (~/.cache/kpo-sweeper): a
    // later run, or CI on a fresh clone on the same machine, only rebuilds the workspace crates.
    let target_dir = std::env::var_os("KPO_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/kpo-sweeper")))
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).to_path_buf())
        .join(format!("target-docker-build-{TARGET}"));
    let status = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("run the Dockerfile's cargo build");
    assert!(status.success(), "`{cmd}` failed");

    for b in BINARIES {
        let bin = target_dir.join(TARGET).join("release").join(b);
        let elf = std::fs::read(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        assert!(!has_interpreter(&elf), "{b} is dynamically linked");
        let out = Command::new(&bin)
            .arg("--version")
            .env_clear()
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        assert!(out.status.success(), "{b} --version failed");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with(b),
            "{b} --version printed {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
