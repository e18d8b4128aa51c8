//! Workspace binaries and the processes these tests start.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// Paths of the workspace's binaries: `webhook`, `sweeper`, `certs`.
#[derive(Debug)]
pub struct Binaries {
    pub webhook: PathBuf,
    pub sweeper: PathBuf,
    pub certs: PathBuf,
}

/// The `webhook`, `sweeper` and `certs` binaries, fresh: `cargo test --workspace --locked --no-run` (what
/// `make test` itself runs, so there a no-op that rebuilds nothing, features and profile being the same),
/// with their paths taken from cargo's own JSON messages (`CARGO_BIN_EXE_*` exists only for a package's
/// own binaries). Run alone (`cargo test -p airflow-e2e`), the first call builds the workspace's tests.
pub fn binaries() -> &'static Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .args([
                "test",
                "--workspace",
                "--locked",
                "--no-run",
                "--message-format=json-render-diagnostics",
            ])
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} test --no-run: {e}", env!("CARGO")));
        assert!(
            out.status.success(),
            "cargo test --workspace --no-run failed ({})",
            out.status
        );
        let mut exes = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            // The plain binary (cargo builds it for the package's integration tests), not its unit-test
            // harness (same target, profile.test true).
            let is_bin = msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
                && msg["profile"]["test"] == false;
            if msg["reason"] == "compiler-artifact"
                && is_bin
                && let (Some(name), Some(exe)) =
                    (msg["target"]["name"].as_str(), msg["executable"].as_str())
            {
                exes.insert(name.to_owned(), PathBuf::from(exe));
            }
        }
        let mut take = |name: &str| {
            exes.remove(name)
                .unwrap_or_else(|| panic!("cargo test --no-run reported no `{name}` binary"))
        };
        Binaries {
            webhook: take("webhook"),
            sweeper: take("sweeper"),
            certs: take("certs"),
        }
    })
}

/// A process started in its own process group, its output in a log file. Dropping it SIGKILLs the
/// group and reaps the leader.
pub struct Daemon {
    pub name: String,
    pub log: PathBuf,
    child: Child,
}

impl Daemon {
    /// Spawns `cmd` as the leader of a new process group, stdout and stderr appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Daemon {
        let out = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Daemon {
            name: name.to_owned(),
            log: log.to_owned(),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the leader still runs (not exited, not a zombie waiting to be reaped).
    pub fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .ok()
            .and_then(|s| {
                let rest = &s[s.rfind(')')? + 1..];
                rest.split_whitespace().next().map(|st| st != "Z")
            })
            .unwrap_or(false)
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        signal_group(self.child.id(), "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of a file ("" when unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `kill -SIG -- -PGID`.
pub fn signal_group(pgid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// `kill -SIG PID`; whether it was delivered.
pub fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The parent pid of `pid` (from /proc), if it runs.
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid …; comm may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The command line of `pid` (NULs as spaces), if it runs.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&raw)
            .replace('\0', " ")
            .trim()
            .to_owned(),
    )
}

/// SIGKILLs every process whose environment holds `marker` (`KEY=value`): Airflow's task processes
/// start their own process groups, so a group kill of the daemons misses them. Returns how many.
pub fn kill_marked(marker: &str) -> usize {
    let me = std::process::id();
    let mut n = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()) && signal(pid, "KILL") {
            n += 1;
        }
    }
    n
}
