//! An Airflow 3.3.2 deployment for one test: `api-server` (the Execution API the task supervisors talk to),
//! `dag-processor` (parses `tests/airflow/dags`, and applies heartbeat-timeout callbacks: failed or
//! up_for_retry) and `scheduler` with the LocalExecutor (its forked workers supervise the task processes),
//! all on a fresh copy of the 3.3.2 template database on PostgreSQL. Task heartbeats time out after
//! [`HEARTBEAT_TIMEOUT_SECS`], so a killed worker's task instance is failed by Airflow within seconds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use testsupport::{DbKind, TestDb, TiSpec, fresh_db};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::hook::free_port;
use crate::procs::{Daemon, cmdline, kill_marked, parent_pid, signal, workspace_root};
use crate::wait_for;

/// The DAG in `tests/airflow/dags/kpo_zombie_dag.py`.
pub const DAG_ID: &str = "kpo_zombie_dag";
/// `[scheduler] task_instance_heartbeat_timeout` in these tests (default 300).
pub const HEARTBEAT_TIMEOUT_SECS: u64 = 15;

/// What the DAG file reads from its environment.
#[derive(Clone, Debug)]
pub struct DagSettings {
    pub namespace: String,
    pub kubeconfig: PathBuf,
    pub toleration_key: String,
    pub toleration_value: String,
    /// How long `base` of healthy_kpo_task runs (a Go duration, e.g. `90s`).
    pub healthy_base_runs_for: String,
}

/// One row of `task_instance`, as Airflow wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ti {
    pub dag_id: String,
    pub task_id: String,
    pub run_id: String,
    pub map_index: i64,
    pub try_number: i64,
    pub state: Option<String>,
    /// The task process's pid (what the supervisor reported when the TI started running).
    pub pid: Option<i64>,
}

impl Ti {
    /// As a [`TiSpec`], whose `key()` is the key the sweeper derives from this row.
    pub fn spec(&self) -> TiSpec {
        TiSpec {
            dag_id: self.dag_id.clone(),
            task_id: self.task_id.clone(),
            run_id: self.run_id.clone(),
            map_index: self.map_index,
            try_number: self.try_number,
            state: self.state.clone(),
        }
    }

    pub fn state(&self) -> &str {
        self.state.as_deref().unwrap_or("none")
    }
}

/// The running deployment. Dropping it kills the daemons' process groups and every process that carries
/// this deployment's marker in its environment (task processes run in process groups of their own).
pub struct Airflow {
    pub db: TestDb,
    pub dir: PathBuf,
    pub api_port: u16,
    marker: String,
    env: Vec<(String, String)>,
    daemons: Vec<Daemon>,
    pool: PgPool,
}

impl Drop for Airflow {
    fn drop(&mut self) {
        self.daemons.clear();
        kill_marked(&self.marker);
    }
}

async fn http_status(port: u16, path: &str) -> Result<u16, String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 64];
    let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not HTTP: {head:?}"))
}

impl Airflow {
    /// Copies the 3.3.2 template DB, starts api-server, dag-processor and scheduler with logs under `dir`,
    /// and waits until the API answers and the DAG is parsed (serialized into the DB).
    pub async fn start(dir: &Path, dag: &DagSettings) -> Airflow {
        let db = fresh_db(DbKind::Airflow3Postgres).await;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&db.url)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", db.name));
        let home = dir.join("airflow-home");
        std::fs::create_dir_all(&home).unwrap();
        let api_port = free_port();
        let marker_value = format!("{}-{}", db.name, std::process::id());
        let dags = workspace_root().join("tests/airflow/dags");
        let env: Vec<(String, String)> = [
            ("AIRFLOW_HOME", home.display().to_string()),
            (
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                db.sqlalchemy_url.clone(),
            ),
            ("AIRFLOW__CORE__DAGS_FOLDER", dags.display().to_string()),
            ("AIRFLOW__CORE__EXECUTOR", "LocalExecutor".to_owned()),
            ("AIRFLOW__CORE__PARALLELISM", "6".to_owned()),
            ("AIRFLOW__CORE__LOAD_EXAMPLES", "False".to_owned()),
            (
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION",
                "False".to_owned(),
            ),
            ("AIRFLOW__CORE__UNIT_TEST_MODE", "False".to_owned()),
            (
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                format!("http://127.0.0.1:{api_port}/execution/"),
            ),
            ("AIRFLOW__API__HOST", "127.0.0.1".to_owned()),
            ("AIRFLOW__API__PORT", api_port.to_string()),
            (
                "AIRFLOW__API__BASE_URL",
                format!("http://127.0.0.1:{api_port}"),
            ),
            (
                "AIRFLOW__API_AUTH__JWT_SECRET",
                format!("jwt-{marker_value}"),
            ),
            (
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS",
                "True".to_owned(),
            ),
            (
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT",
                HEARTBEAT_TIMEOUT_SECS.to_string(),
            ),
            (
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL",
                "2".to_owned(),
            ),
            ("AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", "2".to_owned()),
            ("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "5".to_owned()),
            ("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO".to_owned()),
            // The scheduler serves task logs on this port (default 8793): one per deployment.
            (
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
                free_port().to_string(),
            ),
            ("KPO_E2E_NAMESPACE", dag.namespace.clone()),
            ("KPO_E2E_KUBECONFIG", dag.kubeconfig.display().to_string()),
            ("KPO_E2E_TOLERATION_KEY", dag.toleration_key.clone()),
            ("KPO_E2E_TOLERATION_VALUE", dag.toleration_value.clone()),
            (
                "KPO_E2E_HEALTHY_BASE_RUNS_FOR",
                dag.healthy_base_runs_for.clone(),
            ),
            ("KPO_AIRFLOW_E2E_RUN", marker_value.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut af = Airflow {
            db,
            dir: dir.to_owned(),
            api_port,
            marker: format!("KPO_AIRFLOW_E2E_RUN={marker_value}"),
            env,
            daemons: Vec::new(),
            pool,
        };
        for (name, args) in [
            (
                "api-server",
                &["api-server", "--port", &api_port.to_string()][..],
            ),
            ("dag-processor", &["dag-processor"][..]),
            ("scheduler", &["scheduler"][..]),
        ] {
            let log = dir.join(format!("{name}.log"));
            let d = Daemon::spawn(name, &mut af.command(args), &log);
            af.daemons.push(d);
        }
        wait_for(
            "the Airflow api-server to answer /api/v2/monitor/health",
            Duration::from_secs(180),
            || async {
                af.check_alive();
                match http_status(api_port, "/api/v2/monitor/health").await {
                    Ok(200) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
        wait_for(
            "the dag-processor to serialize kpo_zombie_dag",
            Duration::from_secs(180),
            || async {
                af.check_alive();
                let n: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM serialized_dag WHERE dag_id = $1")
                        .bind(DAG_ID)
                        .fetch_one(&af.pool)
                        .await
                        .map_err(|e| e.to_string())?;
                if n > 0 {
                    Ok(())
                } else {
                    Err(format!(
                        "not serialized yet; dag-processor log:\n{}",
                        af.daemons[1].log_tail(10)
                    ))
                }
            },
        )
        .await;
        af
    }

    /// The venv's `airflow` with this deployment's environment (and no ambient KUBECONFIG).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(testsupport::env().var("AIRFLOW3_BIN"));
        c.args(args)
            .env_remove("KUBECONFIG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir);
        c
    }

    /// Runs an `airflow` CLI command to completion; panics with its output when it fails.
    pub async fn cli(&self, args: &[&str]) -> String {
        let mut cmd = tokio::process::Command::from(self.command(args));
        let out = cmd
            .output()
            .await
            .unwrap_or_else(|e| panic!("airflow {args:?}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "airflow {args:?} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Panics, with the log's tail, when a daemon has exited.
    pub fn check_alive(&self) {
        for d in &self.daemons {
            if !d.alive() {
                panic!(
                    "airflow {} exited; its log ({}):\n{}",
                    d.name,
                    d.log.display(),
                    d.log_tail(40)
                );
            }
        }
    }

    /// Every task instance of the DAG, ordered by task and map index.
    pub async fn tis(&self) -> Vec<Ti> {
        let rows = sqlx::query(
            "SELECT dag_id, task_id, run_id, map_index, try_number, state, pid FROM task_instance \
             WHERE dag_id = $1 ORDER BY task_id, map_index",
        )
        .bind(DAG_ID)
        .fetch_all(&self.pool)
        .await
        .unwrap_or_else(|e| panic!("read task_instance: {e}"));
        rows.iter()
            .map(|r| Ti {
                dag_id: r.get("dag_id"),
                task_id: r.get("task_id"),
                run_id: r.get("run_id"),
                map_index: i64::from(r.get::<i32, _>("map_index")),
                try_number: i64::from(r.get::<i32, _>("try_number")),
                state: r.get("state"),
                pid: r.get::<Option<i32>, _>("pid").map(i64::from),
            })
            .collect()
    }

    /// The task instance `task_id`[`map_index`].
    pub async fn ti(&self, task_id: &str, map_index: i64) -> Option<Ti> {
        self.tis()
            .await
            .into_iter()
            .find(|t| t.task_id == task_id && t.map_index == map_index)
    }

    /// Waits until `task_id`[`map_index`] satisfies `pred`; returns the row.
    pub async fn wait_ti(
        &self,
        what: &str,
        task_id: &str,
        map_index: i64,
        timeout: Duration,
        pred: impl Fn(&Ti) -> bool,
    ) -> Ti {
        let pred = &pred;
        wait_for(what, timeout, || async {
            self.check_alive();
            match self.ti(task_id, map_index).await {
                Some(t) if pred(&t) => Ok(t),
                other => Err(format!("{other:?}")),
            }
        })
        .await
    }

    /// SIGKILLs the LocalExecutor worker that supervises `ti`'s task process, then the task process
    /// itself, as a crashed worker would vanish: no on_kill, no cleanup, no final state. Returns the pids.
    pub fn kill_worker(&self, ti: &Ti) -> (u32, u32) {
        let task_pid = ti
            .pid
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or_else(|| panic!("{ti:?} has no pid"));
        let worker = parent_pid(task_pid)
            .unwrap_or_else(|| panic!("task process {task_pid} of {ti:?} is not running"));
        let title = cmdline(worker).unwrap_or_default();
        assert!(
            title.contains("LocalExecutor"),
            "the parent {worker} of task process {task_pid} is not a LocalExecutor worker: {title:?}"
        );
        assert!(signal(worker, "KILL"), "kill -KILL {worker}");
        signal(task_pid, "KILL");
        (worker, task_pid)
    }
}
