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

/// The image's name in the archive: the `org.opencontainers.image.ref.name` annotation of its
/// `index.json` (`make image` writes IMAGE_REF there: the chart's default `image.repository` at the
/// workspace version). What a registry client or `ctr images import` names the image.
pub fn reference() -> String {
    let out = run(Command::new("tar")
        .arg("-xOf")
        .arg(archive())
        .arg("index.json"));
    let index: Value = serde_json::from_slice(&out.stdout).expect("index.json is JSON");
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .expect("index.json has manifests")
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "{}: one named image expected, index.json says {index}",
        archive().display()
    );
    names[0].to_owned()
}

/// (repository, tag) of an image reference `repository:tag` (a registry's port is not a tag).
pub fn split_reference(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => panic!("{reference:?} has no tag"),
    }
}

/// The image's platform for this machine, as a runtime picks it from the index.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("the image has no platform for {other}"),
    }
}

// ---- running what ships as a cluster runs it ---------------------------------------------------
// No container engine runs here: the runtime's and the kubelet's work done by hand, on the image's own
// root filesystem, binaries and user.

/// Where the kubelet mounts a pod's ServiceAccount token, the cluster CA and the namespace.
pub const SA_DIR: &str = "var/run/secrets/kubernetes.io/serviceaccount";

/// The local kube-apiserver as a pod reaches it: its port on 127.0.0.1 (KUBERNETES_SERVICE_HOST/PORT)
/// and the CA that signed its serving certificate (PEM), from the test env file.
pub struct Apiserver {
    pub port: u16,
    pub ca: Vec<u8>,
}

pub fn apiserver() -> Apiserver {
    let env = testsupport::env();
    let url = env.var("APISERVER_URL");
    let port = url
        .strip_prefix("https://127.0.0.1:")
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| {
            panic!("APISERVER_URL={url}: the in-cluster config needs the apiserver on https://127.0.0.1:PORT")
        });
    let ca_path = env.var("APISERVER_CA_CERT");
    let ca = std::fs::read(ca_path).unwrap_or_else(|e| panic!("APISERVER_CA_CERT={ca_path}: {e}"));
    Apiserver { port, ca }
}

/// What the kubelet does for one container: a copy of the image's root filesystem `image_rootfs` at
/// `into` (each container gets its own), with `token` (a TokenRequest token of the pod's
/// ServiceAccount; None when the pod mounts none), the CA and `namespace` at [`SA_DIR`]. Returns `into`.
pub fn pod_rootfs(
    image_rootfs: &Path,
    into: &Path,
    namespace: &str,
    token: Option<&str>,
    ca: &[u8],
) -> PathBuf {
    run(Command::new("cp").arg("-a").arg(image_rootfs).arg(into));
    if let Some(token) = token {
        let d = into.join(SA_DIR);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("token"), token.trim()).unwrap();
        std::fs::write(d.join("ca.crt"), ca).unwrap();
        std::fs::write(d.join("namespace"), namespace).unwrap();
    }
    into.to_path_buf()
}

/// `args` run from `rootfs` as `uid:gid` the way a runtime starts a container: `unshare` with a mount
/// and a PID namespace, `rootfs` as `/`, an environment holding only what the kubelet adds for the
/// API (KUBERNETES_SERVICE_HOST/PORT at `apiserver_port` on 127.0.0.1); the caller adds the
/// container's env.
pub fn container(rootfs: &Path, apiserver_port: u16, uid: u32, gid: u32, args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--pid", "--fork", "--kill-child"])
        .arg(format!("--root={}", rootfs.display()))
        .args(["--setuid", &uid.to_string(), "--setgid", &gid.to_string()])
        .args(args)
        .env_clear()
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", apiserver_port.to_string());
    c
}

/// [`container`] as the image's user ([`NONROOT`]), with `RUST_LOG=info`.
pub fn in_pod(rootfs: &Path, apiserver_port: u16, args: &[&str]) -> Command {
    let mut c = container(rootfs, apiserver_port, NONROOT, NONROOT, args);
    c.env("RUST_LOG", "info");
    c
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
    fn split_reference_keeps_a_registry_port() {
        assert_eq!(
            split_reference("ghcr.io/kpo-sweeper/kpo-sweeper:0.1.0"),
            ("ghcr.io/kpo-sweeper/kpo-sweeper", "0.1.0")
        );
        assert_eq!(
            split_reference("registry.local:5000/kpo-sweeper:1.2.3"),
            ("registry.local:5000/kpo-sweeper", "1.2.3")
        );
        assert!(
            std::panic::catch_unwind(|| split_reference("registry.local:5000/kpo-sweeper"))
                .is_err()
        );
    }

    #[test]
    fn the_three_crates_share_one_version() {
        assert!(!workspace_version().is_empty());
    }
}
