//! The env file that `tests/env/up` writes (docs/design.md §8).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where `tests/env/up` writes the env file.
pub const DEFAULT_ENV_FILE: &str = "/tmp/kpo-sweeper-env/env.sh";
/// Overrides [`DEFAULT_ENV_FILE`].
pub const ENV_FILE_VAR: &str = "KPO_TEST_ENV_FILE";

/// The local test environment, as the env file describes it.
#[derive(Clone, Debug)]
pub struct TestEnv {
    /// Admin kubeconfig (client cert in `system:masters`) of the local kube-apiserver.
    pub kubeconfig: PathBuf,
    /// sqlx URL of the Airflow 3.x template database on PostgreSQL (read-only for tests).
    pub airflow3_pg_url: String,
    /// sqlx URL of the Airflow 2.10 template database on PostgreSQL (read-only for tests).
    pub airflow2_pg_url: String,
    /// sqlx URL of the Airflow 3.x template database on MariaDB (read-only for tests).
    pub airflow3_mysql_url: String,
    /// sqlx URL of the Airflow 3.x template database file (read-only for tests).
    pub airflow3_sqlite_url: String,
    /// The kube-apiserver's audit log (JSON lines; pods at Metadata level).
    pub audit_log: PathBuf,
    /// Every `KEY=value` of the env file (`APISERVER_URL`, `PG_ADMIN_URL`, `AIRFLOW3_PYTHON`, …).
    pub vars: BTreeMap<String, String>,
}

impl TestEnv {
    /// A variable of the env file; panics naming the file when it is absent.
    pub fn var(&self, key: &str) -> &str {
        self.vars.get(key).map(String::as_str).unwrap_or_else(|| {
            panic!("{key} is missing from the test env file: run tests/env/up (make test does)")
        })
    }

    /// The admin kubeconfig of the second control plane (`REMOTE_KUBECONFIG`, its own etcd and
    /// kube-apiserver; current context `remote`), for the multi-cluster sweep.
    pub fn remote_kubeconfig(&self) -> PathBuf {
        PathBuf::from(self.var("REMOTE_KUBECONFIG"))
    }

    /// Parses an env file (`KEY='value'` lines; `export`, comments, double quotes and bare values too).
    pub fn from_file(path: &Path) -> Result<TestEnv, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the test env file {}: {e}", path.display()))?;
        let vars = parse_env(&text);
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .ok_or_else(|| format!("{k} is missing from the test env file {}", path.display()))
        };
        Ok(TestEnv {
            kubeconfig: PathBuf::from(get("KUBECONFIG")?),
            airflow3_pg_url: get("AIRFLOW3_PG_URL")?,
            airflow2_pg_url: get("AIRFLOW2_PG_URL")?,
            airflow3_mysql_url: get("AIRFLOW3_MYSQL_URL")?,
            airflow3_sqlite_url: get("AIRFLOW3_SQLITE_URL")?,
            audit_log: PathBuf::from(get("APISERVER_AUDIT_LOG")?),
            vars,
        })
    }
}

/// The environment `tests/env/up` started, read once per test binary from `$KPO_TEST_ENV_FILE` or
/// [`DEFAULT_ENV_FILE`]. Panics when it is missing: a missing service fails the test.
pub fn env() -> &'static TestEnv {
    static ENV: OnceLock<TestEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let path = std::env::var_os(ENV_FILE_VAR)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ENV_FILE));
        match TestEnv::from_file(&path) {
            Ok(env) => env,
            Err(e) => panic!("{e}: run tests/env/up (make test does)"),
        }
    })
}

pub(crate) fn parse_env(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = if value.len() >= 2
            && ((value.starts_with('\'') && value.ends_with('\''))
                || (value.starts_with('"') && value.ends_with('"')))
        {
            &value[1..value.len() - 1]
        } else {
            value
        };
        vars.insert(key.trim().to_owned(), value.to_owned());
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_up_and_people_write() {
        let vars = parse_env(
            "# comment\nKUBECONFIG='/tmp/x/kubeconfig'\nexport A=\"b c\"\nB=plain\n\nC=''\nbogus line\n",
        );
        assert_eq!(vars["KUBECONFIG"], "/tmp/x/kubeconfig");
        assert_eq!(vars["A"], "b c");
        assert_eq!(vars["B"], "plain");
        assert_eq!(vars["C"], "");
        assert_eq!(vars.len(), 4);
    }

    #[test]
    fn a_missing_key_names_the_file() {
        let dir = std::env::temp_dir().join(format!("kpo-env-{}", crate::random_suffix(8)));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("env.sh");
        std::fs::write(&f, "KUBECONFIG='/k'\n").unwrap();
        let err = TestEnv::from_file(&f).unwrap_err();
        assert!(err.contains("AIRFLOW3_PG_URL"), "{err}");
        assert!(err.contains(&f.display().to_string()), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
