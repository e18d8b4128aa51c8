//! The image `make image` writes (`target/image/kpo-sweeper.oci.tar`, docs/design.md "Image"), read the
//! way a registry client and a container runtime read it: skopeo for the index, the manifests and the
//! configs; skopeo + umoci to unpack one platform's root filesystem, as a runtime would before it starts
//! a container. Debian's skopeo and umoci (`make image-tools` installs them); a missing tool or archive
//! fails with the command to run.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The three binaries the image ships, in /usr/local/bin.
pub const BINARIES: [&str; 3] = ["webhook", "sweeper", "certs"];
/// The platforms of the image index.
pub const ARCHES: [&str; 2] = ["amd64", "arm64"];
/// The user the image runs as (distroless's `nonroot`; the manifests' runAsUser).
pub const NONROOT: u32 = 65532;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/image is two levels down")
        .to_path_buf()
}

/// The archive `make image` writes; panics with what to run when it is missing.
pub fn archive() -> PathBuf {
    let p = repo().join("target/image/kpo-sweeper.oci.tar");
    assert!(
        p.is_file(),
        "{} is missing: run `make image` (make test does)",
        p.display()
    );
    p
}

/// The workspace's version: the `version` of the three binaries' crates (they must agree).
pub fn workspace_version() -> String {
    let versions: Vec<String> = BINARIES
        .iter()
        .map(|c| {
            let toml = std::fs::read_to_string(repo().join(c).join("Cargo.toml")).unwrap();
            toml.lines()
                .find_map(|l| l.strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or_else(|| panic!("{c}/Cargo.toml has no version line"))
                .to_owned()
        })
        .collect();
    assert!(
        versions.iter().all(|v| *v == versions[0]),
        "the binaries' crates disagree on the version: {versions:?}"
    );
    versions[0].clone()
}

/// Runs `cmd`, panics with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {what}: {e} (make image-tools installs the image tools)")
    });
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn archive_ref() -> String {
    format!("oci-archive:{}", archive().display())
}

/// The archive's top-level manifest: the image index (`skopeo inspect --raw`).
pub fn index() -> Value {
    json_of(run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &archive_ref(),
    ])))
}

/// The OCI image config of one platform (`skopeo inspect --config`).
pub fn image_config(arch: &str) -> Value {
    json_of(run(Command::new("skopeo").args([
        "--override-os",
        "linux",
        "--override-arch",
        arch,
        "inspect",
        "--config",
        &archive_ref(),
    ])))
}

/// One platform of the image, unpacked.
pub struct Unpacked {
    /// The bundle directory (rootfs/ and config.json).
    pub dir: PathBuf,
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// The OCI runtime config umoci derived from the image config (process.user, process.args, …).
    pub runtime_config: Value,
}

/// Unpacks platform `arch` of the archive into `dir` (created; must not exist): `skopeo copy` of that
/// platform's manifest into an OCI layout, then `umoci unpack` into a runtime bundle.
pub fn unpack(arch: &str, dir: &Path) -> Unpacked {
    std::fs::create_dir_all(dir).unwrap();
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    run(Command::new("skopeo").args([
        "--override-os",
        "linux",
        "--override-arch",
        arch,
        "copy",
        "--quiet",
        &archive_ref(),
        &format!("oci:{}:{arch}", layout.display()),
    ]));
    run(Command::new("umoci").args([
        "unpack",
        "--image",
        &format!("{}:{arch}", layout.display()),
        &bundle.display().to_string(),
    ]));
    let runtime_config =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    Unpacked {
        rootfs: bundle.join("rootfs"),
        dir: bundle,
        runtime_config,
    }
}

/// What the ELF header of a binary says: its machine and whether it asks for a program interpreter
/// (PT_INTERP: a dynamic loader, which an image without libc lacks).
#[derive(Debug, PartialEq, Eq)]
pub struct Elf {
    /// `e_machine`: 62 x86-64, 183 AArch64.
    pub machine: u16,
    pub dynamic: bool,
}

/// `e_machine` of each architecture.
pub fn elf_machine(arch: &str) -> u16 {
    match arch {
        "amd64" => 62,
        "arm64" => 183,
        _ => panic!("unknown arch {arch}"),
    }
}

/// Reads a 64-bit little-endian ELF header.
pub fn elf(bytes: &[u8]) -> Elf {
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(bytes[4], 2, "not a 64-bit ELF");
    assert_eq!(bytes[5], 1, "not little-endian");
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap());
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36) as usize, u16_at(0x38) as usize);
    let dynamic = (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) == 3 // PT_INTERP
    });
    Elf {
        machine: u16_at(0x12),
        dynamic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_tells_a_dynamic_binary() {
        // The test harness itself is a dynamically linked glibc executable.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let e = elf(&me);
        assert!(e.dynamic);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(e.machine, elf_machine("amd64"));
        }
    }

    #[test]
    fn the_three_crates_share_one_version() {
        assert!(!workspace_version().is_empty());
    }
}
