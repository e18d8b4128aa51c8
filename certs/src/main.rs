//! `certs`: generate, install and rotate the kpo-sweeper webhook's certificates.
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("cannot install the ring crypto provider"))?;
    let args = certs::cli::Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only on a terminal: a Job's log or CI's pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match args.log_format {
        certs::cli::LogFormat::Json => fmt.json().init(),
        certs::cli::LogFormat::Text => fmt.init(),
    }
    let outcome = args.run().await?;
    println!("{outcome}");
    Ok(())
}
