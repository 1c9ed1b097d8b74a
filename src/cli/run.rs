//! `certplane run`: the pull loop from Git (see [`crate::run`]). Parses the
//! flags, picks the cache directory, turns SIGTERM/SIGINT into a graceful
//! stop, and exits 0 after it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::Args;

use super::ExitStatus;
use crate::run::RunSettings;
use crate::run::git::GitSettings;

/// Flags of `certplane run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The Git repository: https://…, ssh://…, git@host:path, file://… or a local path.
    #[arg(long, value_name = "URL")]
    pub repo: String,
    /// The branch to follow.
    #[arg(long = "ref", value_name = "BRANCH", default_value = "main")]
    pub branch: String,
    /// The certplane repository inside the Git repository (default: its root).
    #[arg(long, value_name = "SUBDIR")]
    pub path: Option<PathBuf>,
    /// How often to fetch and re-plan (Go-style duration: 30s, 1m, 1h).
    #[arg(long, default_value = "1m")]
    pub interval: crate::model::Duration,
    /// How long one reconcile may run before /readyz turns 503, without
    /// waiting for it to end (default: the interval).
    #[arg(long, value_name = "DURATION")]
    pub reconcile_timeout: Option<crate::model::Duration>,
    /// Cache directory for the clone (default: $XDG_CACHE_HOME/certplane/…,
    /// ~/.cache/certplane/…, or a temporary directory).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Write the cluster manifests to DIR (for Flux/Argo) instead of a cluster.
    #[arg(long, value_name = "DIR")]
    pub render: Option<PathBuf>,
    /// Serve /healthz, /readyz and /metrics here.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// Apply changes (the default).
    #[arg(long, conflicts_with = "plan_only")]
    pub apply: bool,
    /// Only plan: report what would change, apply nothing.
    #[arg(long)]
    pub plan_only: bool,
    /// Apply only commits with a good SSH signature by a key in --trusted-keys.
    #[arg(long, requires = "trusted_keys")]
    pub verify_signatures: bool,
    /// Trusted signing keys, in SSH allowed-signers format
    /// (`<principal> namespaces="git" ssh-ed25519 AAAA…`, one per line).
    #[arg(long, value_name = "FILE")]
    pub trusted_keys: Option<PathBuf>,
    /// CA bundle to trust for an https repository.
    #[arg(long, value_name = "FILE")]
    pub git_ca_bundle: Option<PathBuf>,
    /// Private key for an ssh repository.
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    /// known_hosts file for an ssh repository (host keys are always checked).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Leader election (boxed: it keeps `Command` small).
    #[command(flatten)]
    pub lease: Box<LeaseArgs>,
    /// The apply lock.
    #[command(flatten)]
    pub lock: super::lock::LockArgs,
}

/// Flags of leader election.
#[derive(Debug, Args)]
pub struct LeaseArgs {
    /// Elect a leader with a Kubernetes Lease when several replicas run:
    /// only the leader plans and applies; the others fetch and validate.
    #[arg(long)]
    pub leader_elect: bool,
    /// The Lease's name (default: certplane-leader).
    #[arg(long, value_name = "NAME", requires = "leader_elect")]
    pub lease_name: Option<String>,
    /// The Lease's namespace (default: $POD_NAMESPACE, else certplane-system).
    #[arg(long, value_name = "NS", requires = "leader_elect")]
    pub lease_namespace: Option<String>,
}

fn default_cache(url: &str, branch: &str) -> PathBuf {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{url}\n{branch}").as_bytes());
    let id: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("certplane").join(id)
}

/// Runs the loop until SIGTERM or SIGINT.
pub async fn run(args: RunArgs) -> ExitStatus {
    // The repository may not choose where the token goes: the operator must.
    if crate::operator::current().vault.address.is_none() {
        eprintln!(
            "error: certplane run needs the vault address from its operator: pass --vault-addr or set VAULT_ADDR (a repository's certplane.yaml cannot choose it)"
        );
        return ExitStatus::Error;
    }
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(|| default_cache(&args.repo, &args.branch));
    let locking = match args.lock.locking(&format!("{}@{}", args.repo, args.branch)) {
        Ok(l) => l,
        Err(s) => return s,
    };
    let settings = RunSettings {
        git: GitSettings {
            url: args.repo,
            branch: args.branch,
            cache,
            ca_bundle: args.git_ca_bundle,
            ssh_key: args.ssh_key,
            known_hosts: args.known_hosts,
        },
        path: args.path,
        interval: std::time::Duration::from_secs(args.interval.as_secs().max(1)),
        reconcile_timeout: std::time::Duration::from_secs(
            args.reconcile_timeout
                .unwrap_or(args.interval)
                .as_secs()
                .max(1),
        ),
        apply: !args.plan_only,
        allowed_signers: if args.verify_signatures {
            args.trusted_keys
        } else {
            None
        },
        render: args.render,
        listen: Some(args.listen),
        leader_elect: {
            let LeaseArgs {
                leader_elect,
                lease_name,
                lease_namespace,
            } = *args.lease;
            leader_elect
                .then(|| crate::run::lease::LeaseConfig::from_env(lease_name, lease_namespace))
        },
        locking,
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => return super::commands::fail(&e),
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("stop requested: finishing the reconcile in flight");
        let _ = tx.send(true);
    });
    let status = Arc::new(Mutex::new(crate::run::metrics::Status::default()));
    match crate::run::run(settings, status, rx).await {
        Ok(()) => ExitStatus::Clean,
        Err(e) => super::commands::fail(&e),
    }
}
