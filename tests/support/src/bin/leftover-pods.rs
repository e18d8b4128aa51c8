//! `leftover-pods [--since RFC3339]`: the check at the end of `make test`. Lists the pods still in the
//! test namespaces (those labelled `kpo-sweeper.io/test`, created at or after `--since` when given) of
//! the env's apiserver, one line per namespace, and exits 1 when there is any: every test deletes the
//! pods it made (grace 0), pass or fail (`testsupport::DeletePodsOnDrop`).
#![forbid(unsafe_code)]
#![deny(warnings, rust_2018_idioms)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let since = match args.as_slice() {
        [] => None,
        [flag, at] if flag == "--since" => Some(
            at.parse::<k8s_openapi::jiff::Timestamp>()
                .map(Time)
                .unwrap_or_else(|e| {
                    eprintln!("leftover-pods: --since {at}: not an RFC 3339 time ({e})");
                    std::process::exit(2)
                }),
        ),
        _ => {
            eprintln!("usage: leftover-pods [--since RFC3339]");
            std::process::exit(2)
        }
    };
    let client = testsupport::client().await;
    let left = testsupport::leftover_pods(&client, since.as_ref())
        .await
        .unwrap_or_else(|e| {
            eprintln!("leftover-pods: cannot list namespaces and pods: {e}");
            std::process::exit(2)
        });
    if left.is_empty() {
        println!("leftover-pods: no pods left in test namespaces");
        return;
    }
    let total: usize = left.values().sum();
    for (ns, n) in &left {
        println!("leftover-pods: {n:>5} pod(s) in {ns}");
    }
    println!(
        "leftover-pods: {total} pod(s) left in {} test namespace(s): the tests that made these namespaces \
         must delete their pods (testsupport::DeletePodsOnDrop), pass or fail",
        left.len()
    );
    std::process::exit(1);
}
