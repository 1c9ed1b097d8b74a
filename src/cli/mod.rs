//! The command line: argument parsing, logging set-up, and one function per
//! command over the one [`pipeline`](crate::pipeline).

mod ci;
mod commands;
pub mod completions;
mod exit;
mod lock;
pub mod operator;
mod policy;
mod progress;
mod report;
mod run;
mod status;
mod verify;
mod watch;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

pub use exit::ExitStatus;

/// certplane: Git as the single source of truth for Vault PKI and cert-manager.
#[derive(Debug, Parser)]
#[command(name = "certplane", version, about, long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Never colour the output (also: NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// The operator's Vault connection and what repositories may read.
    #[command(flatten)]
    pub operator: operator::OperatorArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Plan output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// A per-object, per-field diff for people.
    Human,
    /// A JSON document for machines.
    Json,
    /// A pull-request comment: a table of changes, then the diff in `<details>`.
    Markdown,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the repository offline: 0 valid, 1 invalid.
    Validate {
        /// The repository (default: current directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Also accept references to mounts and roles that the live Vault
        /// has but the repository does not declare (reads Vault; writes nothing).
        #[arg(long)]
        live: bool,
    },
    /// Show what apply would change: 0 no changes, 2 changes, 1 error.
    Plan {
        /// The repository (default: current directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Output::Human)]
        output: Output,
        /// Write the cluster manifests to DIR (for Flux/Argo) instead of a cluster.
        #[arg(long, value_name = "DIR")]
        render: Option<PathBuf>,
        /// With `prune: true`, also delete PKI mounts that hold a CA.
        #[arg(long)]
        allow_destroy_ca: bool,
        /// Also save the whole plan (no secret values) to FILE, for `apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Converge Vault to the repository. Applies nothing if any check fails.
    /// `apply PLAN_FILE` applies a plan saved with `plan --out` instead.
    Apply {
        /// The repository (default: current directory), or a saved plan file.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Apply exactly this saved plan (`plan --out`); DIR is its repository.
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        /// Apply without asking; required when stdin is not a terminal.
        #[arg(long)]
        auto_approve: bool,
        /// Output format of the plan shown before applying.
        #[arg(short, long, value_enum, default_value_t = Output::Human)]
        output: Output,
        /// Write the cluster manifests to DIR (for Flux/Argo) instead of a cluster.
        #[arg(long, value_name = "DIR")]
        render: Option<PathBuf>,
        /// With `prune: true`, also delete PKI mounts that hold a CA.
        #[arg(long)]
        allow_destroy_ca: bool,
        /// The apply lock.
        #[command(flatten)]
        lock: lock::LockArgs,
    },
    /// Remove the apply lock whoever holds it (after a holder died and
    /// before its lease ends), printing whose it was.
    ForceUnlock {
        /// The repository (default: current directory): it names the Vault.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The KV version 2 mount holding the apply lock.
        #[arg(long, value_name = "PATH")]
        lock_mount: Option<String>,
    },
    /// For each Vault Issuer, do what cert-manager will do: log in with its
    /// credentials, sign a throwaway CSR, check the chain. 0 all pass, 1 any fails.
    /// With --vault-addr, Vault is reached there instead of at each Issuer's
    /// `server` (e.g. from outside the cluster).
    Verify {
        /// The repository (default: current directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Re-plan on every change of the repository's files (and apply with
    /// --apply) until Ctrl-C.
    Watch {
        /// The repository (default: current directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Apply each new plan without asking.
        #[arg(long)]
        apply: bool,
        /// Wait this long after the last change before re-planning.
        #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = watch::parse_debounce)]
        debounce: std::time::Duration,
        /// Write the cluster manifests to DIR (for Flux/Argo) instead of a cluster.
        #[arg(long, value_name = "DIR")]
        render: Option<PathBuf>,
        /// The apply lock.
        #[command(flatten)]
        lock: lock::LockArgs,
    },
    /// Show the live PKI tree, read-only: 0 fine, 1 a CA inside its
    /// rotateBefore window or expired.
    ///
    /// For each PkiMount of the repository: its issuers in Vault (default,
    /// retired, cross-signed twins, pending keys), who signed each, notAfter
    /// and time left, down to the cert-manager Issuers and Certificates of
    /// the repository that sign through them. Connects to Vault like plan
    /// (one login) and only reads: no write, no lock, no cluster needed.
    /// Exits 1 when a CA in use (a mount's default issuer, or one a role or
    /// Issuer pins) is inside its rotateBefore window or expired, naming
    /// each on stderr, or on an error.
    Status {
        /// The repository (default: current directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Output format: a tree for people, JSON, or a picture (Mermaid,
        /// Graphviz dot) for a pull request or a wiki.
        #[arg(short, long, visible_alias = "format", value_enum, default_value_t = status::StatusFormat::Human)]
        output: status::StatusFormat,
    },
    /// Print the minimal Vault policy (HCL) that applying the repository needs.
    Policy {
        /// The repository (default: current directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The KV version 2 mount holding the apply lock.
        #[arg(long, value_name = "PATH")]
        lock_mount: Option<String>,
    },
    /// Follow a Git branch: fetch on an interval, apply new commits, repair
    /// drift; serves /healthz, /readyz and /metrics. Stops on SIGTERM/SIGINT.
    Run(Box<run::RunArgs>),
    /// Write the JSON Schemas of every certplane kind, the plan report (`-o
    /// json`) and the plan file (`--out`) to a directory.
    Schemas {
        /// Where to write them.
        #[arg(default_value = "schemas")]
        out: PathBuf,
    },
    /// `completions SHELL` and `man [DIR]`, generated from these definitions.
    #[command(flatten)]
    Generate(completions::Generate),
}

/// Every file of `schemas/` by name: the kinds' schemas
/// ([`crate::model::schema::all`]), then the two machine formats: the plan
/// report of `plan -o json` (`plan-output.json`) and the plan file of `plan
/// --out` (`plan-file.json`). `certplane schemas DIR` writes them.
pub fn schema_files() -> Vec<(String, serde_json::Value)> {
    let mut files = crate::model::schema::all();
    files.push((
        crate::plan::json::SCHEMA_FILE.to_string(),
        crate::plan::json::schema(),
    ));
    files.push((ci::SCHEMA_FILE.to_string(), ci::schema()));
    files
}

/// Filter for the log subscriber: certplane's own events from `-v`, but the
/// report of `run` (one line per reconcile, every refused commit) always.
/// Third-party crates are capped at `info`
/// whatever the user asks: their debug and trace output can carry request
/// bodies and headers, and those carry tokens.
fn log_filter(verbose: u8) -> EnvFilter {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // `run`'s one line per reconcile and its refusals are shown at every
    // verbosity (CERTPLANE_LOG, when set, decides alone).
    let user = std::env::var("CERTPLANE_LOG")
        .unwrap_or_else(|_| format!("certplane={level},{}=info", crate::run::REPORT_TARGET));
    let caps = [
        "hyper",
        "hyper_util",
        "reqwest",
        "rustify",
        "rustls",
        "h2",
        "kube",
        "kube_client",
        "tower",
        "tower_http",
    ]
    .map(|t| format!("{t}=info"))
    .join(",");
    EnvFilter::try_new(format!("warn,{user},{caps}")).unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "warn,certplane={level},{}=info,{caps}",
            crate::run::REPORT_TARGET
        ))
    })
}

fn init_logging(cli: &Cli) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter(cli.verbose))
        .with_writer(std::io::stderr)
        .with_target(true);
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(colour_wanted(cli.no_color, false))
            .try_init(),
    };
}

/// Whether to colour: never with `--no-color` or `NO_COLOR`, else only on a
/// terminal.
fn colour_wanted(no_color: bool, stdout: bool) -> bool {
    use std::io::IsTerminal;
    if no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    if stdout {
        std::io::stdout().is_terminal()
    } else {
        std::io::stderr().is_terminal()
    }
}

/// Parses the arguments. `--help` and `--version` print and give 0; a
/// usage error (an unknown flag, `-o markdwn`, no command) prints clap's
/// message and gives 1, the error code: clap's own 2 is "changes found"
/// to a CI job reading `plan`'s exit code.
fn parse() -> Result<Cli, i32> {
    use clap::error::ErrorKind;
    Cli::try_parse().map_err(|e| {
        let _ = e.print();
        match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitStatus::Clean.code(),
            _ => ExitStatus::Error.code(),
        }
    })
}

/// The async runtime of a command. A one-shot command runs on the calling
/// thread alone: its requests are one stream of replies, and handing each
/// from a worker thread to the one waiting for it cost more than reading
/// it (a no-op plan of 10,000 roles against an OpenBao on the same two
/// cores: 2.45 to 1.54 s of CPU, 7.25 to 6.42 s of wall, medians of 6
/// alternating runs). A long-lived one (`run`, `watch`) has two worker
/// threads, so that what it answers meanwhile (`run`'s health endpoint,
/// metrics and lease; a signal) does not wait on a plan reading the
/// repository. `make bench`'s raw clients use the one-shot runtime too.
pub fn runtime(long_lived: bool) -> std::io::Result<tokio::runtime::Runtime> {
    if long_lived {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = match parse() {
        Ok(c) => c,
        Err(code) => return code,
    };
    init_logging(&cli);
    if !matches!(cli.command, Command::Schemas { .. } | Command::Generate(_)) {
        let operator_only = matches!(cli.command, Command::Run(_));
        match cli
            .operator
            .operator(operator_only, &crate::vault::connect::Env::process())
        {
            Ok(op) => {
                crate::operator::install(op);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitStatus::Error.code();
            }
        }
    }
    // reqwest (the Vault client) is built without a rustls provider and kube
    // with ring: install ring
    // once so both use it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let long_lived = matches!(cli.command, Command::Run(_) | Command::Watch { .. });
    let built = runtime(long_lived);
    let runtime = match built {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitStatus::Error.code();
        }
    };
    let color = colour_wanted(cli.no_color, true);
    let verify_addr = cli.operator.vault_addr.clone();
    let status = runtime.block_on(commands::run(cli.command, color, verify_addr));
    status.code()
}
