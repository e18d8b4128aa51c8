//! An Airflow deployment for one test, of either release the environment pins ([`Release`]), on a fresh
//! copy of that release's PostgreSQL template (migrated by the real `airflow db migrate` in `tests/env/up`).
//!
//! - Airflow 3.3.2: `api-server` (the Execution API the task supervisors talk to), `dag-processor` (parses
//!   `tests/airflow/dags`, and applies heartbeat-timeout callbacks: failed or up_for_retry) and `scheduler`
//!   with the LocalExecutor (its forked workers supervise the task processes).
//! - Airflow 2.11.2: `scheduler` alone, with the LocalExecutor. Its DagFileProcessorManager (a child of the
//!   scheduler) parses the DAGs and runs the zombie callbacks; each LocalExecutor worker forks an
//!   `airflow tasks run --local` supervisor (the LocalTaskJob, which heartbeats the `job` table), which forks
//!   the raw task process. No webserver, no API.
//!
//! Task heartbeats time out after [`HEARTBEAT_TIMEOUT_SECS`] in both, so a killed worker's task instance is
//! failed by Airflow within seconds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Row};
use testsupport::TiSpec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::hook::free_port;
use crate::procs::{Daemon, cmdline, kill_marked, parent_pid, signal, workspace_root};
use crate::wait_for;

/// The DAG in `tests/airflow/dags/kpo_zombie_dag.py`.
pub const DAG_ID: &str = "kpo_zombie_dag";
/// `[scheduler] task_instance_heartbeat_timeout` in these tests (default 300).
pub const HEARTBEAT_TIMEOUT_SECS: u64 = 15;

/// Which Airflow generation a [`Release`] belongs to: what runs, and how it is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// 2.x: `airflow scheduler` parses DAGs itself; LocalTaskJob heartbeats; `[scheduler]
    /// scheduler_zombie_task_threshold`.
    Two,
    /// 3.x: `api-server`, `dag-processor`, `scheduler`; task SDK supervisors heartbeat through the Execution
    /// API; `[scheduler] task_instance_heartbeat_timeout`.
    Three,
}

/// One Airflow release the tests run: its venv and its migrated template, both from `tests/env/up`.
#[derive(Debug)]
pub struct Release {
    pub version: &'static str,
    pub generation: Generation,
    /// Env file key of the venv's `airflow` executable.
    pub bin_key: &'static str,
    /// Env file key of the PostgreSQL template that release migrated (`postgres://…/NAME`).
    pub template_key: &'static str,
    /// Env file key that names the version `up` installed (checked against `version`).
    pub version_key: &'static str,
    /// Process titles between the task process (the TI row's `pid`) and its LocalExecutor worker, from
    /// the task upwards (each a prefix of the process's title).
    pub between_task_and_worker: &'static [&'static str],
}

/// Airflow 3.3.2 with provider cncf-kubernetes 10.25.0 (tests/env/locks/airflow-3.3.2.txt).
pub const AIRFLOW_3_3_2: Release = Release {
    version: "3.3.2",
    generation: Generation::Three,
    bin_key: "AIRFLOW3_BIN",
    template_key: "AIRFLOW3_PG_URL",
    version_key: "AIRFLOW3_VERSION",
    // supervise() in the worker forks the task process.
    between_task_and_worker: &[],
};

/// Airflow 2.11.2 with provider cncf-kubernetes 10.25.0 (tests/env/locks/airflow-2.11.2.txt).
pub const AIRFLOW_2_11_2: Release = Release {
    version: "2.11.2",
    generation: Generation::Two,
    bin_key: "AIRFLOW211_BIN",
    template_key: "AIRFLOW211_PG_URL",
    version_key: "AIRFLOW211_VERSION",
    // The worker forks `airflow tasks run --local` (LocalTaskJob), whose StandardTaskRunner forks the raw
    // task process.
    between_task_and_worker: &["airflow task supervisor"],
};

/// How long the api-server and the first parse may take: ~30 s on an idle machine, minutes when the cores
/// are shared with parallel builds.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(600);

/// The test's witness of how Airflow moves a task instance: a trigger on `task_instance` (the test's own
/// database; Airflow never reads the side table) appends every row version whose `state` or `try_number`
/// changed, in commit order of the statements, so a state that lasts a millisecond is seen as well.
const TI_AUDIT: &str = "
CREATE TABLE kpo_e2e_ti_audit (
    seq bigserial PRIMARY KEY,
    task_id text NOT NULL,
    map_index integer NOT NULL,
    state text,
    try_number integer
);
CREATE FUNCTION kpo_e2e_ti_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR OLD.state IS DISTINCT FROM NEW.state
       OR OLD.try_number IS DISTINCT FROM NEW.try_number THEN
        INSERT INTO kpo_e2e_ti_audit (task_id, map_index, state, try_number)
        VALUES (NEW.task_id, NEW.map_index, NEW.state, NEW.try_number);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER kpo_e2e_ti_audit AFTER INSERT OR UPDATE ON task_instance
    FOR EACH ROW EXECUTE FUNCTION kpo_e2e_ti_audit();
";

/// What the DAG file reads from its environment.
#[derive(Clone, Debug)]
pub struct DagSettings {
    pub namespace: String,
    pub kubeconfig: PathBuf,
    pub toleration_key: String,
    pub toleration_value: String,
    /// How long `base` of healthy_kpo_task runs (a Go duration, e.g. `90s`).
    pub healthy_base_runs_for: String,
    /// `(context, how long base of remote_live_kpo_task runs)`: the DAG's two remote tasks, with their
    /// `cluster_context` (a context of `kubeconfig`). `None`: the DAG has no remote task.
    pub remote: Option<(String, String)>,
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

/// The test's own database, created from the release's template and dropped with the deployment.
#[derive(Debug)]
pub struct AirflowDb {
    /// The database name (`t_<release>_<unix seconds>_<random>`: `tests/env/up` drops a leftover by age).
    pub name: String,
    /// sqlx form, `postgres://…`.
    pub url: String,
    /// Airflow's SQLAlchemy form, `postgresql+psycopg2://…`.
    pub sqlalchemy_url: String,
}

fn admin_url() -> &'static str {
    testsupport::env().var("PG_ADMIN_URL")
}

impl AirflowDb {
    /// `CREATE DATABASE … TEMPLATE` the release's template (retried while another test copies it).
    async fn copy_of(release: &Release) -> AirflowDb {
        let template_url = testsupport::env().var(release.template_key);
        let (base, template) = template_url.rsplit_once('/').unwrap_or_else(|| {
            panic!(
                "{} is not a postgres://…/DB URL: run tests/env/up",
                release.template_key
            )
        });
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let short: String = release
            .version
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let name = format!("t_af{short}_{secs}_{}", testsupport::random_suffix(6));
        let mut conn = sqlx::PgConnection::connect(admin_url())
            .await
            .unwrap_or_else(|e| panic!("connect to PG_ADMIN_URL: {e}: run tests/env/up"));
        let sql = format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                .execute(&mut conn)
                .await
            {
                Ok(_) => break,
                Err(e)
                    if e.to_string().contains("being accessed by other users")
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!(
                    "{sql}: {e} (is the Airflow {} template migrated? run tests/env/up)",
                    release.version
                ),
            }
        }
        let _ = conn.close().await;
        let url = format!("{base}/{name}");
        AirflowDb {
            sqlalchemy_url: url.replacen("postgres://", "postgresql+psycopg2://", 1),
            url,
            name,
        }
    }

    /// `DROP DATABASE … WITH (FORCE)`, from a thread of its own (Drop cannot await).
    fn drop_now(&self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let res = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let mut c = sqlx::PgConnection::connect(admin_url())
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut c)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(res, Ok(Ok(()))) {
            eprintln!(
                "cannot drop database {}: {res:?} (tests/env/up drops it after a few hours)",
                self.name
            );
        }
    }
}

/// The running deployment. Dropping it kills the daemons' process groups and every process that carries
/// this deployment's marker in its environment (task processes run in process groups of their own).
pub struct Airflow {
    pub release: &'static Release,
    pub db: AirflowDb,
    pub dir: PathBuf,
    marker: String,
    env: Vec<(String, String)>,
    daemons: Vec<Daemon>,
    pool: PgPool,
}

impl Drop for Airflow {
    fn drop(&mut self) {
        self.daemons.clear();
        kill_marked(&self.marker);
        self.db.drop_now();
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
    /// Copies the release's template DB, starts its daemons with logs under `dir` (3.x: api-server,
    /// dag-processor, scheduler; 2.x: scheduler), and waits until they answer and the DAG is parsed
    /// (serialized into the DB).
    pub async fn start(release: &'static Release, dir: &Path, dag: &DagSettings) -> Airflow {
        let env_version = testsupport::env().var(release.version_key);
        assert_eq!(
            env_version, release.version,
            "the env file's {} is {env_version}, this test runs Airflow {}: run tests/env/up from this \
             checkout",
            release.version_key, release.version
        );
        let db = AirflowDb::copy_of(release).await;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&db.url)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", db.name));
        sqlx::raw_sql(TI_AUDIT)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "install the task_instance audit trigger in {}: {e}",
                    db.name
                )
            });
        let home = dir.join("airflow-home");
        std::fs::create_dir_all(&home).unwrap();
        let marker_value = format!("{}-{}", db.name, std::process::id());
        let dags = workspace_root().join("tests/airflow/dags");
        let hb = HEARTBEAT_TIMEOUT_SECS.to_string();
        let mut env: Vec<(&str, String)> = vec![
            ("AIRFLOW_HOME", home.display().to_string()),
            (
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                db.sqlalchemy_url.clone(),
            ),
            ("AIRFLOW__CORE__DAGS_FOLDER", dags.display().to_string()),
            ("AIRFLOW__CORE__EXECUTOR", "LocalExecutor".to_owned()),
            ("AIRFLOW__CORE__PARALLELISM", "8".to_owned()),
            ("AIRFLOW__CORE__LOAD_EXAMPLES", "False".to_owned()),
            (
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION",
                "False".to_owned(),
            ),
            ("AIRFLOW__CORE__UNIT_TEST_MODE", "False".to_owned()),
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
        ];
        if let Some((context, live_runs_for)) = &dag.remote {
            env.extend([
                ("KPO_E2E_REMOTE_CONTEXT", context.clone()),
                ("KPO_E2E_REMOTE_LIVE_RUNS_FOR", live_runs_for.clone()),
            ]);
        }
        // (name, arguments) of the daemons, the one that parses the DAGs named by `parser`.
        let (daemons, parser): (Vec<(&str, Vec<String>)>, &str) = match release.generation {
            Generation::Three => {
                let api_port = free_port();
                env.extend([
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
                        hb.clone(),
                    ),
                    (
                        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL",
                        "2".to_owned(),
                    ),
                    ("AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", "2".to_owned()),
                    ("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "5".to_owned()),
                ]);
                let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect();
                (
                    vec![
                        (
                            "api-server",
                            args(&["api-server", "--port", &api_port.to_string()]),
                        ),
                        ("dag-processor", args(&["dag-processor"])),
                        ("scheduler", args(&["scheduler"])),
                    ],
                    "dag-processor",
                )
            }
            Generation::Two => {
                env.extend([
                    (
                        "AIRFLOW__SCHEDULER__SCHEDULER_ZOMBIE_TASK_THRESHOLD",
                        hb.clone(),
                    ),
                    // Airflow's default, 10 s. Not less: 2.x runs a zombie's failure callback without
                    // checking its try_number, and the scheduler detects a zombie again on every interval
                    // until that callback has run in the DAG processor (≈ 3 s here), so a duplicate
                    // callback would fail the retry that already runs (seen with 2 s).
                    (
                        "AIRFLOW__SCHEDULER__ZOMBIE_DETECTION_INTERVAL",
                        "10".to_owned(),
                    ),
                    // Default 0: heartbeat every zombie threshold, which would make every task a zombie.
                    (
                        "AIRFLOW__SCHEDULER__LOCAL_TASK_JOB_HEARTBEAT_SEC",
                        "2".to_owned(),
                    ),
                    (
                        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL",
                        "5".to_owned(),
                    ),
                    ("AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL", "10".to_owned()),
                    (
                        "AIRFLOW__WEBSERVER__SECRET_KEY",
                        format!("secret-{marker_value}"),
                    ),
                ]);
                (
                    vec![("scheduler", vec!["scheduler".to_owned()])],
                    "scheduler",
                )
            }
        };
        let mut af = Airflow {
            release,
            db,
            dir: dir.to_owned(),
            marker: format!("KPO_AIRFLOW_E2E_RUN={marker_value}"),
            env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            daemons: Vec::new(),
            pool,
        };
        for (name, args) in &daemons {
            let log = dir.join(format!("{name}.log"));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let d = Daemon::spawn(name, &mut af.command(&args), &log);
            af.daemons.push(d);
        }
        if release.generation == Generation::Three {
            let api_port: u16 = af.env_var("AIRFLOW__API__PORT").parse().unwrap();
            wait_for(
                "the Airflow api-server to answer /api/v2/monitor/health",
                STARTUP_TIMEOUT,
                || async {
                    af.check_alive();
                    match http_status(api_port, "/api/v2/monitor/health").await {
                        Ok(200) => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                },
            )
            .await;
        }
        let parser = af
            .daemons
            .iter()
            .position(|d| d.name == parser)
            .expect("the parsing daemon");
        wait_for(
            &format!(
                "the {} to serialize kpo_zombie_dag",
                af.daemons[parser].name
            ),
            STARTUP_TIMEOUT,
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
                        "not serialized yet; {} log:\n{}",
                        af.daemons[parser].name,
                        af.daemons[parser].log_tail(10)
                    ))
                }
            },
        )
        .await;
        af
    }

    /// The value of one of this deployment's environment variables.
    fn env_var(&self, key: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{key} is not set for Airflow {}", self.release.version))
    }

    /// The venv's `airflow` with this deployment's environment (and no ambient KUBECONFIG).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(testsupport::env().var(self.release.bin_key));
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

    /// Every (state, try_number) the row of `task_id`[`map_index`] went through, oldest first (see
    /// [`TI_AUDIT`]): `("none", 0)` when the run created it, then one entry per change.
    pub async fn ti_history(&self, task_id: &str, map_index: i64) -> Vec<(String, i64)> {
        let rows = sqlx::query(
            "SELECT state, try_number FROM kpo_e2e_ti_audit WHERE task_id = $1 AND map_index = $2 \
             ORDER BY seq",
        )
        .bind(task_id)
        .bind(i32::try_from(map_index).expect("map_index fits an integer"))
        .fetch_all(&self.pool)
        .await
        .unwrap_or_else(|e| panic!("read kpo_e2e_ti_audit: {e}"));
        rows.iter()
            .map(|r| {
                let state: Option<String> = r.get("state");
                let try_number: Option<i32> = r.get("try_number");
                (
                    state.unwrap_or_else(|| "none".to_owned()),
                    try_number.map_or(-1, i64::from),
                )
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

    /// SIGKILLs the LocalExecutor worker that runs `ti`, every process between it and the task process
    /// (2.x: the `airflow tasks run --local` supervisor that heartbeats), and the task process itself,
    /// top down, as a crashed worker would vanish: no on_kill, no cleanup, no final state, no heartbeat.
    /// Checks the process chain against the release's ([`Release::between_task_and_worker`]). Returns the
    /// killed pids with their titles, worker first.
    pub fn kill_worker(&self, ti: &Ti) -> Vec<(u32, String)> {
        let task_pid = ti
            .pid
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or_else(|| panic!("{ti:?} has no pid"));
        let title_of = |pid: u32| cmdline(pid).unwrap_or_default();
        let mut chain = vec![(task_pid, title_of(task_pid))];
        for expected in self
            .release
            .between_task_and_worker
            .iter()
            .copied()
            .chain(["airflow worker -- LocalExecutor"])
        {
            let below = chain.last().unwrap().0;
            let parent = parent_pid(below)
                .unwrap_or_else(|| panic!("process {below} of {ti:?} is not running: {chain:?}"));
            let title = title_of(parent);
            assert!(
                title.starts_with(expected),
                "Airflow {}: the parent {parent} of {below} is {title:?}, not {expected:?} (chain from \
                 the task process up: {chain:?})",
                self.release.version
            );
            chain.push((parent, title));
        }
        chain.reverse();
        for (pid, title) in &chain {
            assert!(signal(*pid, "KILL"), "kill -KILL {pid} ({title})");
        }
        chain
    }
}
