//! Database URLs: sqlx's forms and Airflow's SQLAlchemy ones, redaction of the password (and of
//! every parameter that may hold a secret), and the parameters passed on to the driver.

use crate::error::{Error, Result};

use super::AIRFLOW_CONN_ENV;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Postgres,
    MySql,
    Sqlite,
}

/// A parsed DB URL. `Debug` and `Display` show it without the password.
#[derive(Clone)]
pub struct DbUrl {
    pub kind: DbKind,
    /// What sqlx connects to: a URL for PostgreSQL and MySQL, a file path for SQLite.
    target: String,
    /// For messages: the URL without its password.
    display: String,
    /// The password as written and percent-decoded, to scrub from driver messages.
    secrets: Vec<String>,
    /// The query parameters not passed on to the driver (keys only): sqlx would log an unknown
    /// one with its value (`ignoring unrecognized connect parameter`), and `sslpassword=` is a
    /// secret.
    dropped: Vec<String>,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbUrl")
            .field("kind", &self.kind)
            .field("url", &self.display)
            .finish()
    }
}

impl std::fmt::Display for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl DbUrl {
    /// The URL from `--db-url`, else from Airflow's own environment variable.
    pub fn resolve(flag: Option<&str>) -> Result<DbUrl> {
        if let Some(url) = flag.filter(|u| !u.is_empty()) {
            return DbUrl::parse(url);
        }
        for var in AIRFLOW_CONN_ENV {
            if let Ok(url) = std::env::var(var)
                && !url.is_empty()
            {
                return DbUrl::parse(&url);
            }
        }
        Err(Error::NoDbUrl)
    }

    pub fn parse(url: &str) -> Result<DbUrl> {
        let (display, secrets) = redact_url(url);
        let bad = |reason: &str| Error::DbUrl {
            url: display.clone(),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(bad(
                "no scheme (expected postgres://, mysql:// or sqlite://)",
            ));
        };
        let mut dropped = Vec::new();
        // SQLAlchemy's `dialect+driver`: the driver does not matter to us.
        let dialect = scheme
            .split('+')
            .next()
            .unwrap_or(scheme)
            .to_ascii_lowercase();
        let (kind, target) = match dialect.as_str() {
            "postgres" | "postgresql" => {
                let rest = rest
                    .strip_prefix("//")
                    .ok_or_else(|| bad("expected postgres://"))?;
                let (rest, d) = driver_params(rest, PG_PARAMS);
                dropped = d;
                (DbKind::Postgres, format!("postgres://{rest}"))
            }
            "mysql" | "mariadb" => {
                let rest = rest
                    .strip_prefix("//")
                    .ok_or_else(|| bad("expected mysql://"))?;
                let (rest, d) = driver_params(rest, MYSQL_PARAMS);
                dropped = d;
                (DbKind::MySql, format!("mysql://{rest}"))
            }
            "sqlite" => (
                DbKind::Sqlite,
                sqlite_path(rest).ok_or_else(|| bad("no file path"))?,
            ),
            _ => {
                return Err(bad(
                    "unsupported database (the sweeper reads PostgreSQL, MySQL/MariaDB and SQLite)",
                ));
            }
        };
        Ok(DbUrl {
            kind,
            target,
            display,
            secrets,
            dropped,
        })
    }

    /// What sqlx connects to: a URL for PostgreSQL and MySQL, a file path for SQLite.
    pub(super) fn target(&self) -> &str {
        &self.target
    }

    /// The query parameters' keys that are not passed on to the driver.
    pub fn dropped(&self) -> &[String] {
        &self.dropped
    }

    /// `msg` with every occurrence of the password replaced.
    pub fn scrub(&self, msg: &str) -> String {
        let mut out = msg.to_owned();
        for s in &self.secrets {
            if !s.is_empty() {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

/// The SQLite file path of `sqlite:<rest>`. SQLAlchemy writes an absolute path with four slashes
/// (`sqlite:////abs/airflow.db`, the only form Airflow accepts); sqlx writes `sqlite:///abs` or
/// `sqlite://rel`, and `sqlite:path`. Query parameters are dropped: the file is always opened
/// read-only.
fn sqlite_path(rest: &str) -> Option<String> {
    let rest = rest.split('?').next().unwrap_or(rest);
    let path = match rest.strip_prefix("//") {
        Some(p) if p.starts_with("//") => &p[1..],
        Some(p) => p,
        None => rest,
    };
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

/// The PostgreSQL query parameters passed on to sqlx (libpq's names sqlx reads): TLS, host, port,
/// database, user, password, startup `options`. Everything else (libpq's `sslpassword`,
/// `connect_timeout`, `target_session_attrs`, `keepalives`, …) is dropped.
const PG_PARAMS: &[(&str, &str)] = &[
    ("sslmode", "sslmode"),
    ("ssl-mode", "sslmode"),
    ("sslrootcert", "sslrootcert"),
    ("ssl-root-cert", "sslrootcert"),
    ("ssl-ca", "sslrootcert"),
    ("sslcert", "sslcert"),
    ("ssl-cert", "sslcert"),
    ("sslkey", "sslkey"),
    ("ssl-key", "sslkey"),
    ("host", "host"),
    ("hostaddr", "hostaddr"),
    ("port", "port"),
    ("dbname", "dbname"),
    ("user", "user"),
    ("password", "password"),
    ("application_name", "application_name"),
    ("options", "options"),
];

/// The MySQL query parameters passed on to sqlx, with MySQLdb/PyMySQL spellings (`ssl_mode`,
/// `unix_socket`) translated; the rest (`charset=utf8` and the like: the sweeper picks its own
/// connection charset) is dropped.
const MYSQL_PARAMS: &[(&str, &str)] = &[
    ("ssl_mode", "ssl-mode"),
    ("sslmode", "ssl-mode"),
    ("ssl-mode", "ssl-mode"),
    ("ssl_ca", "ssl-ca"),
    ("sslca", "ssl-ca"),
    ("ssl-ca", "ssl-ca"),
    ("ssl_cert", "ssl-cert"),
    ("sslcert", "ssl-cert"),
    ("ssl-cert", "ssl-cert"),
    ("ssl_key", "ssl-key"),
    ("sslkey", "ssl-key"),
    ("ssl-key", "ssl-key"),
    ("unix_socket", "socket"),
    ("socket", "socket"),
];

/// `rest` (after `scheme://`) with only the query parameters `known` names, translated to the
/// driver's spelling, and the keys of those dropped.
fn driver_params(rest: &str, known: &[(&str, &str)]) -> (String, Vec<String>) {
    let Some((base, query)) = rest.split_once('?') else {
        return (rest.to_owned(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match known.iter().find(|(name, _)| *name == k) {
            Some((_, to)) => kept.push(format!("{to}={v}")),
            None => dropped.push(k.to_owned()),
        }
    }
    if kept.is_empty() {
        (base.to_owned(), dropped)
    } else {
        (format!("{base}?{}", kept.join("&")), dropped)
    }
}

/// Whether a query parameter's value may be a secret, or point at one (a client key's path): it
/// is then never shown, and scrubbed from driver messages.
fn is_secret_param(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "passphrase"]
        .iter()
        .any(|w| k.contains(w))
        || k.ends_with("key")
}

/// What messages show of `url`, and the strings scrubbed from driver messages (see [`DbUrl`]).
pub fn redacted(url: &str) -> (String, Vec<String>) {
    redact_url(url)
}

/// The URL with the password cut out, and every string that may be the password (as written and
/// percent-decoded), longest first, to scrub from driver messages.
///
/// Whatever the input — a URL, a malformed one (`postgresql:/u:pw@h/db`, `u:pw@h/db`), a libpq
/// `key=value` string, a password holding `@ : / ? # &` unencoded — the display never holds the
/// password: what cannot be redacted with certainty is not shown at all.
fn redact_url(url: &str) -> (String, Vec<String>) {
    let mut secrets = secret_candidates(url);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    let (display, well_formed) = match url.find("://") {
        Some(idx) if is_scheme(&url[..idx]) && is_known_dialect(&url[..idx]) => {
            (redact_well_formed(url, idx), true)
        }
        // Not a database we read, so nothing is lost by not showing it, and it may not even be a
        // scheme: `user:pw@host/db` with a password that starts with `//` reads as `user://…`.
        Some(idx) if is_scheme(&url[..idx]) => (not_shown(url, "unsupported database"), false),
        // `sqlite:relative.db`: a path, nothing secret in it.
        None if is_plain_sqlite(url) => (url.to_owned(), true),
        _ => (not_shown(url, "malformed URL"), false),
    };
    // The last guard: a display that still holds any candidate is not shown (a well-formed URL
    // whose password is also its user name, host or database: `postgres://airflow:airflow@…`).
    if secrets
        .iter()
        .any(|s| !s.is_empty() && display.contains(s.as_str()))
    {
        let why = if well_formed {
            "its password also appears elsewhere in it"
        } else {
            "malformed URL"
        };
        return (not_shown(url, why), secrets);
    }
    (display, secrets)
}

/// A URL scheme: a letter, then letters, digits, `+`, `-` or `.` (SQLAlchemy's `dialect+driver`).
fn is_scheme(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '+' | '-' | '.'))
}

/// `sqlite:` followed by a path with no `@`, `:` or `=` in it.
fn is_plain_sqlite(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("sqlite:"))
        && !url[7..].contains(['@', ':', '='])
}

/// Whether a scheme (`dialect+driver`) names a database the sweeper reads.
fn is_known_dialect(scheme: &str) -> bool {
    let dialect = scheme
        .split('+')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    matches!(
        dialect.as_str(),
        "postgres" | "postgresql" | "mysql" | "mariadb" | "sqlite"
    )
}

/// What is shown of an input that cannot be shown: its dialect when it starts with a known one.
fn not_shown(url: &str, why: &str) -> String {
    let head = url.split([':', '/']).next().unwrap_or_default();
    let known = is_known_dialect(head)
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '_');
    if known {
        format!("{head}://… ({why}, not shown: it may hold a password)")
    } else {
        "(a connection string that may hold a password, not shown)".to_owned()
    }
}

/// Every substring that may be the password: after `user:` up to the first and up to the last `@`
/// (SQLAlchemy stops at the first, a password with an unencoded `@` runs to the last); after any
/// `password=` up to the next separator and up to the end; each also percent-decoded.
fn secret_candidates(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Where the user info starts: after `scheme://`, else after a leading dialect.
    let mut bodies = Vec::new();
    match url.find("://") {
        Some(i) if is_scheme(&url[..i]) => bodies.push(&url[i + 3..]),
        _ => {
            // `scheme:/u:pw@h`, `scheme:u:pw@h` or `u:pw@h`: skip a leading dialect and slashes.
            let rest = match url.split_once(':') {
                Some((head, rest)) if is_scheme(head) && rest.contains(':') => rest,
                _ => url,
            };
            bodies.push(rest.trim_start_matches('/'));
        }
    }
    for body in bodies {
        if let Some(colon) = body.find(':') {
            let after = &body[colon + 1..];
            if let Some(first) = after.find('@') {
                out.push(after[..first].to_owned());
            }
            if let Some(last) = after.rfind('@') {
                out.push(after[..last].to_owned());
            }
        }
    }
    let lower = url.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password") {
        let start = from + i + "password".len();
        let rest = url[start..].trim_start_matches([' ', '=', ':']);
        let rest = rest.trim_start_matches(['\'', '"']);
        let end = rest.find(['&', ' ', '\'', '"', ';']).unwrap_or(rest.len());
        out.push(rest[..end].to_owned());
        out.push(rest.to_owned());
        from = start;
    }
    // Other parameters that hold or point at a secret (`sslkey=/path/client.key`).
    if let Some((_, query)) = url.split_once('?') {
        for kv in query.split(['&', ';']) {
            if let Some((k, v)) = kv.split_once('=')
                && is_secret_param(k.trim())
            {
                out.push(v.to_owned());
            }
        }
    }
    let decoded: Vec<String> = out.iter().map(|s| percent_decode(s)).collect();
    out.extend(decoded);
    out.retain(|s| !s.is_empty());
    out
}

/// `scheme://[user[:password]@]host…`: the password cut out, and any `password=` query parameter
/// with everything after it.
fn redact_well_formed(url: &str, idx: usize) -> String {
    let (scheme, rest) = (&url[..idx + 3], &url[idx + 3..]);
    let head_end = rest.find('?').unwrap_or(rest.len());
    // SQLAlchemy reads a password up to the `@` (`user:pa?ss@host`): a `?` in it does not start
    // the query.
    let at = rest[..head_end].rfind('@').or_else(|| {
        rest.find('@').filter(|&at| {
            rest[..at]
                .split_once(':')
                .is_some_and(|(u, _)| !u.contains('/'))
        })
    });
    let Some(at) = at else {
        return strip_password_param(url);
    };
    let userinfo = &rest[..at];
    let after = &rest[at..];
    match userinfo.split_once(':') {
        Some((user, _password)) => strip_password_param(&format!("{scheme}{user}{after}")),
        None => strip_password_param(url),
    }
}

/// The URL without its `password=` query parameter, and without anything after it (an unencoded
/// `&` or `#` may be part of the password); other secret parameters' values shown as `***`.
fn strip_password_param(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let mut kept = Vec::new();
    for kv in query.split('&') {
        if kv.to_ascii_lowercase().starts_with("password") {
            break;
        }
        match kv.split_once('=') {
            Some((k, _)) if is_secret_param(k) => kept.push(format!("{k}=***")),
            _ => kept.push(kv.to_owned()),
        }
    }
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlalchemy_urls_are_accepted_and_redacted() {
        let u =
            DbUrl::parse("postgresql+psycopg2://airflow:s3cr%40t@db:5432/airflow?sslmode=require")
                .unwrap();
        assert_eq!(u.kind, DbKind::Postgres);
        assert_eq!(
            u.target,
            "postgres://airflow:s3cr%40t@db:5432/airflow?sslmode=require"
        );
        assert_eq!(
            u.to_string(),
            "postgresql+psycopg2://airflow@db:5432/airflow?sslmode=require"
        );
        assert_eq!(
            u.scrub("auth failed for s3cr@t and s3cr%40t"),
            "auth failed for *** and ***"
        );
        assert!(!format!("{u:?}").contains("s3cr"));

        let u = DbUrl::parse(
            "mysql+mysqldb://airflow:pw@maria/airflow?charset=utf8mb4&ssl_mode=REQUIRED",
        )
        .unwrap();
        assert_eq!(u.kind, DbKind::MySql);
        assert_eq!(
            u.target,
            "mysql://airflow:pw@maria/airflow?ssl-mode=REQUIRED"
        );
        assert_eq!(
            u.to_string(),
            "mysql+mysqldb://airflow@maria/airflow?charset=utf8mb4&ssl_mode=REQUIRED"
        );

        let u = DbUrl::parse("sqlite:////var/lib/airflow/airflow.db").unwrap();
        assert_eq!(
            (u.kind, u.target.as_str()),
            (DbKind::Sqlite, "/var/lib/airflow/airflow.db")
        );
        let u = DbUrl::parse("sqlite:///tmp/x.db").unwrap();
        assert_eq!(u.target, "/tmp/x.db");
        let u = DbUrl::parse("sqlite://rel.db?mode=rwc").unwrap();
        assert_eq!(u.target, "rel.db");
        // SQLAlchemy takes a password up to the `@`, `?` included.
        let u = DbUrl::parse("postgresql+psycopg2://airflow:pa?ss@db/airflow").unwrap();
        assert_eq!(u.to_string(), "postgresql+psycopg2://airflow@db/airflow");
        assert_eq!(u.scrub("bad password pa?ss"), "bad password ***");
        let u = DbUrl::parse("postgres://h/db?sslcert=/home/a@b/c").unwrap();
        assert_eq!(u.to_string(), "postgres://h/db?sslcert=/home/a@b/c");
        let u = DbUrl::parse("postgres://u@h/db?password=hunter22").unwrap();
        assert_eq!(u.to_string(), "postgres://u@h/db");
        assert_eq!(u.scrub("x hunter22"), "x ***");
    }

    #[test]
    fn unsupported_or_malformed_urls_fail_without_the_password() {
        let e = DbUrl::parse("mssql+pyodbc://sa:topsecret@h/db").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
        // `user:password@host/db` whose password starts with `//` reads as a URL of scheme `aaa`
        // with the user `A0=??a` (found by the secrets property test).
        let e = DbUrl::parse("aaa://A0=??a@aaa/aa0").unwrap_err();
        assert!(!e.to_string().contains("A0=??a"), "{e}");
        assert_eq!(e.metric_label(), "db-url");
        assert!(DbUrl::parse("nonsense").is_err());
        // A libpq key/value string is no URL; its password is not echoed either.
        let e = DbUrl::parse("host=db user=airflow password=topsecret dbname=airflow").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
        assert!(DbUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn a_well_formed_url_whose_password_repeats_is_not_called_malformed() {
        // The Helm chart's default credentials, postgres:postgres, and the env's airflow:airflow.
        for url in [
            "postgresql://postgres:postgres@airflow-pgbouncer:6543/airflow-metadata",
            "postgres://airflow:airflow@127.0.0.1:5432/airflow",
        ] {
            let (shown, _) = redacted(url);
            assert!(
                !shown.contains(":postgres@") && !shown.contains(":airflow@"),
                "{shown}"
            );
            assert!(!shown.contains("malformed"), "{shown}");
            assert!(
                shown.contains("its password also appears elsewhere in it"),
                "{shown}"
            );
        }
        assert!(
            redacted("postgresql:/u:pw@h/db")
                .0
                .contains("malformed URL")
        );
    }
}
