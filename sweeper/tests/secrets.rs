//! No output ever holds the database password, whatever string `--db-url` or
//! `AIRFLOW__DATABASE__SQL_ALCHEMY_CONN` holds: well-formed and malformed URLs, libpq key=value
//! strings, percent-encoded passwords, passwords with `@ : / ? # &` in them. A property test over
//! generated strings, then the real binary on the forms operators actually mistype.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use clap::Parser;
use proptest::prelude::*;
use sweeper::db::DbUrl;

/// Percent-encodes everything but unreserved characters, as a careful operator would.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every string a user could see for `input`: the parsed URL's Display and Debug (or the parse
/// error), a driver message echoing the input scrubbed, and `Args`' Debug.
fn outputs(input: &str) -> Vec<String> {
    let mut out = Vec::new();
    match DbUrl::parse(input) {
        Ok(u) => {
            out.push(u.to_string());
            out.push(format!("{u:?}"));
            out.push(u.scrub(&format!("connection to {input} failed")));
        }
        Err(e) => {
            out.push(e.to_string());
            out.push(format!("{e:?}"));
        }
    }
    let args = sweeper::Args::try_parse_from(["sweeper", "-A", "--db-url", input]).unwrap();
    out.push(format!("{args:?}"));
    out
}

const SCHEMES: &[&str] = &[
    "postgresql+psycopg2",
    "postgresql",
    "postgres",
    "mysql+mysqldb",
    "mysql",
    "mariadb",
    "sqlite",
    "mssql+pyodbc",
];

fn forms(scheme: &str, user: &str, pw: &str, host: &str, db: &str) -> Vec<String> {
    vec![
        format!("{scheme}://{user}:{pw}@{host}/{db}"),
        format!("{scheme}://{user}:{pw}@{host}:5432/{db}?sslmode=require"),
        format!("{scheme}://{user}:{}@{host}/{db}", pct(pw)),
        format!(
            "{scheme}://{user}:{}@{host}:3306/{db}?charset=utf8",
            pct(pw)
        ),
        format!("{scheme}:/{user}:{pw}@{host}/{db}"),
        format!("{scheme}:{user}:{pw}@{host}/{db}"),
        format!("{user}:{pw}@{host}/{db}"),
        format!("{scheme}//{user}:{pw}@{host}/{db}"),
        format!("host={host} user={user} password={pw} dbname={db}"),
        format!("{scheme}://{user}@{host}/{db}?password={pw}"),
        format!(
            "{scheme}://{user}@{host}/{db}?sslmode=require&password={}",
            pct(pw)
        ),
        format!("{scheme}://{user}:{pw}@{host}/{db}#frag"),
        format!(" {scheme}://{user}:{pw}@{host}/{db}"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn no_output_holds_the_password(
        scheme in prop::sample::select(SCHEMES),
        user in "[a-z][a-z0-9_]{2,10}",
        pw in "[A-Za-z0-9@:/?#%&=+!$ .,;*-]{8,24}",
        host in "[a-z][a-z0-9.-]{2,12}",
        db in "[a-z][a-z0-9_]{2,10}",
    ) {
        // A password that is part of the rest of the string cannot be told apart from it.
        prop_assume!(![user.as_str(), host.as_str(), db.as_str(), scheme].iter().any(|p| p.contains(pw.as_str())));
        prop_assume!(pw.chars().any(|c| c.is_ascii_alphanumeric()));
        for input in forms(scheme, &user, &pw, &host, &db) {
            let decoded_pct = pct(&pw);
            for o in outputs(&input) {
                prop_assert!(!o.contains(pw.as_str()), "input {input:?} printed {o:?}");
                if decoded_pct != pw {
                    prop_assert!(!o.contains(decoded_pct.as_str()), "input {input:?} printed {o:?}");
                }
            }
        }
    }
}

/// libpq's parameters whose value is a secret or points at one, in the URL's query.
const SECRET_PARAMS: &[&str] = &["sslpassword", "sslkey", "ssl-key", "ssl_key", "password"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// No output holds a secret URL parameter's value, and a parameter the driver does not get
    /// (sqlx would log it with its value) is named among the dropped ones.
    #[test]
    fn no_output_holds_a_secret_parameter(
        scheme in prop::sample::select(&SCHEMES[..6]),
        key in prop::sample::select(SECRET_PARAMS),
        before in prop::sample::select(&["", "sslmode=require&", "connect_timeout=10&", "application_name=x&"][..]),
        value in "[A-Za-z0-9/._+-]{8,24}",
        host in "[a-z][a-z0-9.-]{2,12}",
        db in "[a-z][a-z0-9_]{2,10}",
    ) {
        prop_assume!(value.chars().filter(|c| c.is_ascii_alphanumeric()).count() >= 4);
        prop_assume!(![host.as_str(), db.as_str(), scheme, before].iter().any(|p| p.contains(value.as_str())));
        let input = format!("{scheme}://airflow@{host}/{db}?{before}{key}={value}");
        for o in outputs(&input) {
            prop_assert!(!o.contains(value.as_str()), "input {input:?} printed {o:?}");
        }
        if key == "sslpassword" {
            let u = DbUrl::parse(&input).unwrap();
            prop_assert!(u.dropped().iter().any(|k| k == key), "{input:?}: {:?}", u.dropped());
        }
    }
}

/// The forms from the issue, through the real binary: exit 1, and neither stdout nor stderr holds
/// the password (text and JSON logs).
#[test]
fn malformed_urls_are_never_echoed_by_the_binary() {
    for url in [
        "postgresql:/airflow:hunter2@db/airflow",
        "airflow:hunter2@db/airflow",
        "postgresql://airflow:hun@ter2@db/airflow",
        "postgresql://airflow:hunter2/x?y#z@db/airflow",
        "mysql+mysqldb//airflow:hunter2@db/airflow",
        "host=db user=airflow password=hunter2 dbname=airflow",
        "mssql+pyodbc://sa:hunter2@db/airflow",
    ] {
        for (how, log_format) in [("flag", "text"), ("env", "json")] {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sweeper"));
            cmd.args(["--namespace", "airflow", "--log-format", log_format]);
            for (k, _) in std::env::vars() {
                if k.starts_with("KPO_SWEEPER_") || k.starts_with("AIRFLOW__") || k == "KUBECONFIG"
                {
                    cmd.env_remove(k);
                }
            }
            if how == "flag" {
                cmd.args(["--db-url", url]);
            } else {
                cmd.env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", url);
            }
            let out = cmd.output().expect("sweeper runs");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.status.code(), Some(1), "{url}: {text}");
            assert!(!text.contains("hunter2"), "{url} via {how}: {text}");
            assert!(text.contains("nothing was deleted"), "{url}: {text}");
        }
    }
}
