//! `certplane status [DIR]`: the repository prepared as for `plan`, Vault
//! read (never written) through the driver's session, the PKI tree printed
//! in the format asked for; exit 1 when a CA in use is inside its
//! `rotateBefore` window or expired, or on any error.

use std::path::Path;

use clap::ValueEnum;

use super::ExitStatus;
use super::commands::{driver, report};
use crate::pipeline::{PlanOptions, SessionError, Step, StepError};
use crate::plan::render::Style;
use crate::status::render;

/// What `status` prints.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StatusFormat {
    /// An indented tree, coloured on a terminal.
    Human,
    /// A JSON document (`{"version": 1, ...}`).
    Json,
    /// A Mermaid flowchart (`graph TD`), for a pull request or a wiki.
    Mermaid,
    /// A Graphviz digraph (`dot -Tsvg`).
    Dot,
}

/// Runs `status` on the repository in `dir`.
pub async fn run(dir: &Path, format: StatusFormat, style: Style) -> ExitStatus {
    let mut driver = driver(None, PlanOptions::default());
    let prepared = match driver.prepare(dir) {
        Ok(p) => p,
        Err(e) => return report(&e),
    };
    let mounts = crate::status::mount_paths(&prepared.repo);
    let live = if mounts.is_empty() {
        crate::status::LivePki::default()
    } else {
        let vault = match driver.vault_for(&prepared.repo).await {
            Ok(v) => v,
            Err(e) => return report(&e),
        };
        match crate::status::observe(&vault, &mounts).await {
            Ok(l) => l,
            Err(e) => return report(&StepError::new(Step::Observe, SessionError::from(e))),
        }
    };
    let status = crate::status::build(&prepared.repo, &live);
    match format {
        StatusFormat::Human => print!("{}", render::human(&status, style)),
        StatusFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::json(&status)).unwrap_or_default()
        ),
        StatusFormat::Mermaid => print!("{}", render::mermaid(&status)),
        StatusFormat::Dot => print!("{}", render::dot(&status)),
    }
    for a in &status.alerts {
        eprintln!("alert: {}", render::alert_message(a));
    }
    if status.alerts.is_empty() {
        ExitStatus::Clean
    } else {
        ExitStatus::Error
    }
}
