//! The native half of `make bench` (scripts/bench/bench.py drives it; not
//! part of `make test`). One binary, three commands:
//!
//! * `vault-reads --addr URL --reads FILE [--concurrency N]`: the raw-read
//!   baseline. FILE holds `read PATH` / `list PATH` lines (the reads of a
//!   no-op plan, taken from the audit log); the token comes from
//!   `VAULT_TOKEN`. Prints what it did as one JSON line.
//! * `kube-server`: a scripted loopback API server (discovery, GET, lists,
//!   server-side apply and its dry run; see [`kube_server`]). Prints
//!   `listening 127.0.0.1:PORT`, then serves until killed.
//! * `kube-raw --addr URL --log FILE [--concurrency N]`: replays the
//!   requests the server recorded (its `/__bench/log`), raw, in parallel.
//!   With `--kubeconfig FILE [--context NAME]` instead of `--addr`: to the
//!   API server of that kubeconfig (a real one), through a kube client.
//!   Prints what it did as one JSON line.

mod kube_server;
mod raw;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: scale vault-reads --addr URL --reads FILE [--concurrency N]\n\
         \x20      scale kube-server\n\
         \x20      scale kube-raw (--addr URL | --kubeconfig FILE [--context NAME]) --log FILE [--concurrency N]"
    );
    ExitCode::from(2)
}

/// `--name value` pairs (cargo bench appends a bare `--bench`: ignored).
fn options(args: &[String]) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--bench" {
            continue;
        }
        let Some(name) = a.strip_prefix("--") else {
            return Err(format!("unexpected argument {a:?}"));
        };
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        out.insert(name.to_string(), value.clone());
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        return usage();
    };
    let opts = match options(&args[1..]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("scale: {e}");
            return usage();
        }
    };
    // The raw clients run on certplane's one-shot runtime (one thread: on
    // the two cores the server shares, handing each reply from a worker
    // thread to the one waiting for it took more CPU than reading it;
    // 10,806 Vault reads 1.38 to 0.69 s of CPU, 6.05 to 5.03 s of wall,
    // the 2,045 API requests 0.060 to 0.050 s); the scripted API server
    // keeps two workers.
    let built = certplane::cli::runtime(command == "kube-server");
    let runtime = match built {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scale: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command.as_str() {
            "vault-reads" => vault_reads(&opts).await,
            "kube-server" => kube_server().await,
            "kube-raw" => kube_raw(&opts).await,
            _ => Err(format!("unknown command {command:?}")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scale {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn need<'a>(
    opts: &'a std::collections::BTreeMap<String, String>,
    k: &str,
) -> Result<&'a str, String> {
    opts.get(k)
        .map(String::as_str)
        .ok_or_else(|| format!("--{k} is required"))
}

fn concurrency(
    opts: &std::collections::BTreeMap<String, String>,
    default: usize,
) -> Result<usize, String> {
    match opts.get("concurrency") {
        None => Ok(default),
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("--concurrency {c:?} is not a positive number")),
    }
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

async fn vault_reads(opts: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    let addr = need(opts, "addr")?;
    let reads = raw::VaultRead::parse_lines(&read(need(opts, "reads")?)?)?;
    let token = std::env::var("VAULT_TOKEN").map_err(|_| "VAULT_TOKEN is not set".to_string())?;
    let n = concurrency(opts, certplane::vault::observe::CONCURRENCY)?;
    let client = raw::client(n)?;
    let done = raw::vault_reads(&client, addr, &token, &reads, n).await;
    println!(
        "{}",
        serde_json::to_string(&done).map_err(|e| e.to_string())?
    );
    Ok(())
}

async fn kube_server() -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening {addr}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    kube_server::serve(listener).await;
    Ok(())
}

async fn kube_raw(opts: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    let requests: Vec<kube_server::Recorded> = read(need(opts, "log")?)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("a bad log line ({e}): {l}")))
        .collect::<Result<_, _>>()?;
    let n = concurrency(opts, 8)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match opts.get("kubeconfig") {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("cannot read the kubeconfig {path}: {e}"))?;
            let options = kube::config::KubeConfigOptions {
                context: opts.get("context").cloned(),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| format!("cannot use the kubeconfig {path}: {e}"))?
        }
        None => {
            let addr = need(opts, "addr")?;
            kube::Config::new(
                addr.parse()
                    .map_err(|e| format!("--addr {addr:?} is not a URL: {e}"))?,
            )
        }
    };
    // certplane's own connection pool (at most 8 connections): the replay
    // differs from the plan only in what certplane does around the requests.
    let client = certplane::cluster::pool::client(config, std::time::Duration::from_secs(10))
        .map_err(|e| format!("cannot make a kube client: {e}"))?;
    let done = raw::kube_requests_via(&client, &requests, n).await;
    println!(
        "{}",
        serde_json::to_string(&done).map_err(|e| e.to_string())?
    );
    Ok(())
}
