//! `sweeper`: see `sweeper --help`.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // kube and sqlx both use rustls; ring is the one provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Invalid flags exit 1 (clap's own 2 is the circuit breaker's code here).
    let args = match sweeper::Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                sweeper::exit::ERROR
            } else {
                sweeper::exit::OK
            });
        }
    };
    sweeper::init_tracing(args.log_format);
    if args.interval.every.is_some() {
        return sweeper::interval::main(args).await;
    }
    let output = args.output;
    match sweeper::run(args).await {
        Ok(out) => {
            // Not println!: it panics (exit 101) when stdout is closed, e.g. `sweeper | head -1`.
            let printed = out.report.write(output, std::io::stdout().lock());
            if let Some(why) = &out.breaker {
                eprintln!("kpo-sweeper: {why}");
            }
            for line in out.report.failed_clusters() {
                eprintln!("{line}");
            }
            if let Some(e) = &out.error {
                tracing::error!(kind = e.metric_label(), "{e}");
                eprintln!(
                    "kpo-sweeper: error: {e}; {} pods were deleted before it (listed in the report), none after",
                    out.report.summary.deleted
                );
            }
            eprintln!("{}", out.report.summary_line());
            match printed {
                Ok(()) => ExitCode::from(out.exit),
                Err(e) => {
                    eprintln!("kpo-sweeper: error: cannot write the report to stdout: {e}");
                    ExitCode::from(if out.exit == sweeper::exit::OK {
                        sweeper::exit::ERROR
                    } else {
                        out.exit
                    })
                }
            }
        }
        Err(e) => {
            tracing::error!(kind = e.metric_label(), "{e}");
            eprintln!("kpo-sweeper: error: {e}; nothing was deleted");
            ExitCode::from(sweeper::exit::ERROR)
        }
    }
}
