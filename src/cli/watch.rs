//! `certplane watch [DIR]`: runs the one pipeline at start and again after
//! every change of the repository's files (debounced), applying with
//! `--apply` (under the apply lock). An invalid edit prints its diagnostics and the loop goes on;
//! what was last applied stays in force. One Vault connection for the whole
//! session. Ctrl-C or SIGTERM ends it with 0.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};

use super::ExitStatus;
use super::commands::{fail, print_event, report_line};
use crate::model::duration::DurationError;
use crate::pipeline::{self, Approval, ClusterSide, LockedApply, Locking, PlanOptions};
use crate::plan::render::{self, Style};
use crate::vault::Vault;

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

/// What the session keeps between runs.
struct Session {
    vault: Option<Vault>,
    side: Option<ClusterSide>,
    locking: Locking,
}

/// Runs until Ctrl-C or SIGTERM. With `apply`, each plan with changes is
/// applied under the apply lock (`locking`).
pub async fn run(
    dir: &Path,
    render: Option<&Path>,
    apply: bool,
    debounce: Duration,
    style: Style,
    locking: Locking,
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
    let mut session = Session {
        vault: None,
        side: None,
        locking,
    };
    // Events also come from reads (the loader opening files): only a change
    // of the repository's input (the YAML and the files it names) starts a
    // run. An invalid repository has no fingerprint: every change re-runs.
    let hash = || {
        crate::load::load(&dir)
            .ok()
            .and_then(|r| super::ci::repository_hash(&r).ok())
    };
    let mut last = hash();
    cycle(&dir, render, apply, style, &mut session).await;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
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
                cycle(&dir, render, apply, style, &mut session).await;
            }
        }
    }
    println!("Stopped watching.");
    ExitStatus::Clean
}

/// One pass of the pipeline: prepare, (connect once), plan, maybe apply.
async fn cycle(dir: &Path, render: Option<&Path>, apply: bool, style: Style, s: &mut Session) {
    let options = pipeline::PrepareOptions {
        render,
        ..pipeline::PrepareOptions::default()
    };
    let prepared = match pipeline::prepare_with(dir, options) {
        Ok(p) => p,
        Err(d) => {
            eprintln!("{d}");
            println!(
                "invalid: {} problem(s); nothing applied, the last good state stays. Waiting for the next change.",
                d.0.len()
            );
            return;
        }
    };
    if s.vault.is_none() {
        match pipeline::connect(&prepared.repo).await {
            Ok(v) => s.vault = Some(v),
            Err(e) => {
                fail(&e);
                println!("error: cannot reach Vault; will try again on the next change.");
                return;
            }
        }
    }
    // A live cluster connection is kept; rendering or no cluster half is
    // decided again each time (the repository may have changed).
    if !matches!(s.side, Some(ClusterSide::Live(_))) {
        match pipeline::cluster_side(&prepared.repo, render).await {
            Ok(side) => s.side = Some(side),
            Err(e) => {
                fail(&e);
                println!("error: cannot reach the cluster; will try again on the next change.");
                return;
            }
        }
    }
    let (Some(vault), Some(side)) = (&s.vault, &s.side) else {
        return;
    };
    let plan = match pipeline::plan(vault, side, &prepared).await {
        Ok(p) => p,
        Err(e) => {
            fail(&e);
            println!("error: planning failed; will try again on the next change.");
            return;
        }
    };
    print!("{}", render::human(&plan, style));
    if !apply || !plan.has_changes() {
        return;
    }
    if !plan.errored.is_empty() {
        println!("error: the plan has errors; nothing was applied.");
        return;
    }
    let mut on_event = |e: crate::vault::apply::ApplyEvent| print_event(&e, style);
    let got = pipeline::apply_locked(
        vault,
        side,
        &prepared,
        PlanOptions::default(),
        Approval::Replan,
        &s.locking,
        &|| None,
        &mut on_event,
    )
    .await;
    match got {
        Ok(LockedApply::Applied { done, .. }) => println!("{}", report_line(&done)),
        Ok(LockedApply::NothingToDo) => {
            println!("Nothing to apply: another certplane applied these changes first.")
        }
        Err(e) => {
            fail(&e);
            println!("error: apply failed; will try again on the next change.");
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
