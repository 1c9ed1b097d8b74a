//! `certplane watch [DIR]`: runs the one pipeline at start and again after
//! every change of the repository's files (debounced), applying with
//! `--apply` (under the apply lock). An invalid edit prints its diagnostics
//! and the loop goes on; what was last applied stays in force. One
//! [`Driver`] for the whole session: its Vault session renews the token
//! between changes and logs in again when it expired or was revoked. The
//! plan and what was applied go to stdout; errors, and why nothing was
//! applied, to stderr. Ctrl-C or SIGTERM ends it with 0.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};

use super::ExitStatus;
use super::commands::{fail, print_event, report, report_line};
use crate::model::duration::DurationError;
use crate::pipeline::{Approval, Driver, LockedApply};
use crate::plan::render::Style;

/// Parses `500ms`, `2s`, `1m` (a bare number is milliseconds): any Go
/// duration, read by the model's one duration parser.
pub fn parse_debounce(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return crate::model::duration::parse_std(&format!("{s}ms"));
    }
    crate::model::duration::parse_std(s)
}

/// Whether a changed path should trigger a re-plan: not under `.git` or a
/// hidden directory, not the render directory, not an editor's temp file.
pub fn relevant(dir: &Path, render: Option<&Path>, path: &Path) -> bool {
    if let Some(r) = render
        && (path.starts_with(r) || path.canonicalize().is_ok_and(|p| p.starts_with(r)))
    {
        return false;
    }
    let rel = path.strip_prefix(dir).unwrap_or(path);
    let hidden = rel.components().any(|c| {
        let s = c.as_os_str().to_string_lossy();
        s.starts_with('.') && s != "." && s != ".."
    });
    if hidden {
        return false;
    }
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || (name.starts_with('#') && name.ends_with('#'))
        || name == "4913"; // vim's probe file
    !temp && !name.is_empty()
}

/// Runs until Ctrl-C or SIGTERM. With `apply`, each plan with changes is
/// applied under the apply lock (as `driver` takes it).
pub async fn run(
    dir: &Path,
    render: Option<&Path>,
    apply: bool,
    debounce: Duration,
    style: Style,
    mut driver: Driver,
) -> ExitStatus {
    let dir = match dir.canonicalize() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot watch {}: {e}", dir.display());
            return ExitStatus::Error;
        }
    };
    let render_abs: Option<PathBuf> = render.map(|r| {
        std::path::absolute(r)
            .ok()
            .and_then(|a| a.canonicalize().ok().or(Some(a)))
            .unwrap_or_else(|| r.to_path_buf())
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<PathBuf>>();
    // Reads (the loader's own, an editor's) are not changes.
    let mut watcher =
        match notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(e) if !matches!(e.kind, EventKind::Access(_)) => {
                let _ = tx.send(e.paths);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "file watcher error"),
        }) {
            Ok(w) => w,
            Err(e) => return fail(&e),
        };
    if let Err(e) = watcher.watch(&dir, RecursiveMode::Recursive) {
        return fail(&e);
    }
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    println!(
        "Watching {} ({}). Ctrl-C to stop.",
        dir.display(),
        if apply { "plan and apply" } else { "plan only" }
    );
    // Events also come from reads (the loader opening files): only a change
    // of the repository's input (the YAML and the files it names) starts a
    // run. An invalid repository has no fingerprint: every change re-runs.
    let hash = || {
        crate::load::load(&dir)
            .ok()
            .and_then(|r| crate::pipeline::hash::repository_hash(&r).ok())
    };
    let mut last = hash();
    cycle(&dir, apply, style, &mut driver).await;
    loop {
        // The token is renewed while nothing changes, so that it is alive
        // (or replaced by a new login) when the next change comes.
        let renew = driver.renew_at();
        let renew_due = async {
            match renew {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            () = renew_due => {
                // Vault away while nothing changes: the next change says
                // so; until then, a log line, not an error every retry.
                if let Err(e) = driver.keep_alive().await {
                    tracing::warn!(error = %crate::vault::error_chain(&e), "cannot renew the vault token; retrying");
                }
            }
            got = rx.recv() => {
                let Some(mut paths) = got else { break };
                // Debounce: wait until no event came for `debounce`.
                while let Ok(Some(more)) = tokio::time::timeout(debounce, rx.recv()).await {
                    paths.extend(more);
                }
                let now = hash();
                if now.is_some() && now == last {
                    continue;
                }
                last = now;
                let changed: BTreeSet<String> = paths
                    .iter()
                    .filter(|p| relevant(&dir, render_abs.as_deref(), p) && !p.is_dir())
                    .map(|p| p.strip_prefix(&dir).unwrap_or(p).display().to_string())
                    .collect();
                if changed.is_empty() {
                    continue;
                }
                println!(
                    "\n--- changed: {}",
                    changed.into_iter().collect::<Vec<_>>().join(", ")
                );
                cycle(&dir, apply, style, &mut driver).await;
            }
        }
    }
    println!("Stopped watching.");
    ExitStatus::Clean
}

/// One pass of the pipeline: prepare, plan, maybe apply. Failures go to
/// stderr and the loop waits for the next change.
async fn cycle(dir: &Path, apply: bool, style: Style, driver: &mut Driver) {
    let prepared = match driver.prepare(dir) {
        Ok(p) => p,
        Err(e) => {
            report(&e);
            let problems = e.diagnostics().map_or(1, |d| d.0.len());
            eprintln!(
                "invalid: {problems} problem(s); nothing applied, the last good state stays. Waiting for the next change."
            );
            return;
        }
    };
    let plan = match driver.plan(&prepared).await {
        Ok(p) => p,
        Err(e) => {
            report(&e);
            eprintln!("{} failed; will try again on the next change.", e.step());
            return;
        }
    };
    super::commands::print_human(&plan, style);
    if !apply || !plan.has_changes() {
        return;
    }
    if !plan.errored.is_empty() {
        eprintln!("error: the plan has errors; nothing was applied.");
        return;
    }
    let mut on_event = |e: crate::vault::apply::ApplyEvent| print_event(&e, style);
    let got = driver
        .apply(&prepared, Approval::Replan, &|| None, &mut on_event)
        .await;
    match got {
        Ok(LockedApply::Applied { done, .. }) => println!("{}", report_line(&done)),
        Ok(LockedApply::NothingToDo) => {
            println!("Nothing to apply: another certplane applied these changes first.")
        }
        Err(e) => {
            report(&e);
            eprintln!("{} failed; will try again on the next change.", e.step());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debounce_units() {
        assert_eq!(parse_debounce("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_debounce("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_debounce("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_debounce("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_debounce("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_debounce("1y").is_err());
        assert!(parse_debounce("ms").is_err());
    }

    #[test]
    fn ignores_git_render_and_temp_files() {
        let dir = Path::new("/repo");
        let render = Some(Path::new("/repo/out"));
        assert!(relevant(dir, render, Path::new("/repo/pki.yaml")));
        assert!(relevant(dir, render, Path::new("/repo/ca/k8s-ca.pem")));
        assert!(!relevant(dir, render, Path::new("/repo/.git/index")));
        assert!(!relevant(dir, render, Path::new("/repo/out/a.yaml")));
        assert!(!relevant(dir, render, Path::new("/repo/.pki.yaml.swp")));
        assert!(!relevant(dir, render, Path::new("/repo/pki.yaml~")));
        assert!(!relevant(dir, render, Path::new("/repo/4913")));
        assert!(!relevant(dir, render, Path::new("/repo/#pki.yaml#")));
    }
}
