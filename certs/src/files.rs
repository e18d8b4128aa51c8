//! Writing certificate files the way the kubelet writes a Secret volume.
//!
//! `dir/..<stamp>/` holds the files, `dir/..data` is a symlink to it, and each `dir/<name>` is a symlink
//! to `..data/<name>`. A new generation is written to a fresh `..<stamp>` directory and `..data` is
//! swapped with one `rename`, so a reader sees the old pair or the new pair, never a mix. The webhook's
//! hot reload is built for exactly this swap; `certs --out-dir` lets a webhook run outside the cluster
//! see the same thing.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::pki::Material;
use crate::{Error, Result};

/// The file names, as in the Secret (`ca.key` stays out of the webhook's volume in the manifests).
pub const CA_CRT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `files` (name, content, private?) into `dir` with an atomic `..data` swap; removes the
/// generation it replaced. Private files get mode 0600, the others 0644.
pub fn write_projected(dir: &Path, files: &[(&str, &str, bool)]) -> Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    fs::create_dir_all(dir).map_err(io(dir))?;
    let stamp = format!(
        "..{}_{}_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let gen_dir = dir.join(&stamp);
    fs::create_dir(&gen_dir).map_err(io(&gen_dir))?;
    for (name, content, private) in files {
        let p = gen_dir.join(name);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if *private { 0o600 } else { 0o644 })
            .open(&p)
            .map_err(io(&p))?;
        f.write_all(content.as_bytes()).map_err(io(&p))?;
        f.sync_all().map_err(io(&p))?;
    }
    let data = dir.join("..data");
    let old = fs::read_link(&data).ok();
    let tmp = dir.join("..data_tmp");
    let _ = fs::remove_file(&tmp);
    symlink(&stamp, &tmp).map_err(io(&tmp))?;
    fs::rename(&tmp, &data).map_err(io(&data))?;
    for (name, _, _) in files {
        let link = dir.join(name);
        let target = PathBuf::from("..data").join(name);
        if fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
            if link.symlink_metadata().is_ok() {
                fs::remove_file(&link).map_err(io(&link))?;
            }
            symlink(&target, &link).map_err(io(&link))?;
        }
    }
    if let Some(old) = old
        && old != Path::new(&stamp)
    {
        let _ = fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

/// Writes the four PEM files of `m` into `dir` (see [`write_projected`]).
pub fn write_material(dir: &Path, m: &Material) -> Result<()> {
    write_projected(
        dir,
        &[
            (CA_CRT, &m.ca_cert, false),
            (CA_KEY, &m.ca_key, true),
            (TLS_CRT, &m.tls_cert, false),
            (TLS_KEY, &m.tls_key, true),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("certs-files-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn swap_replaces_content_through_stable_paths_and_cleans_up() {
        let d = tmpdir("swap");
        write_projected(&d, &[("a", "one", false), ("k", "secret", true)]).unwrap();
        assert_eq!(fs::read_to_string(d.join("a")).unwrap(), "one");
        let first = fs::read_link(d.join("..data")).unwrap();
        write_projected(&d, &[("a", "two", false), ("k", "secret2", true)]).unwrap();
        assert_eq!(fs::read_to_string(d.join("a")).unwrap(), "two");
        assert_eq!(fs::read_to_string(d.join("k")).unwrap(), "secret2");
        assert_eq!(fs::read_link(d.join("a")).unwrap(), Path::new("..data/a"));
        assert!(
            !d.join(first).exists(),
            "the replaced generation is removed"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(d.join("k")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let entries = fs::read_dir(&d).unwrap().count();
        assert_eq!(entries, 4, "a, k, ..data and one generation");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn plain_files_left_by_hand_become_links() {
        let d = tmpdir("plain");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("a"), "old").unwrap();
        write_projected(&d, &[("a", "new", false)]).unwrap();
        assert_eq!(fs::read_to_string(d.join("a")).unwrap(), "new");
        assert!(
            fs::symlink_metadata(d.join("a"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
