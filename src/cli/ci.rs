//! CI mode: `plan --out FILE` saves the reviewed plan, `apply FILE` applies
//! exactly that plan.
//!
//! The file holds the whole [`Plan`] with a format version and a hash of
//! the repository's files. It never holds a secret value: secret parameters
//! are `(sensitive)` in the plan already and their sources are re-read from
//! the repository at apply time; a CA key or bundle written inline in the
//! repository is blanked in the file and taken from the (unchanged)
//! repository again; a plan carrying a Secret manifest is refused. Apply
//! refuses the file when the repository changed since (hash), and the
//! provider's per-change re-check stops with "plan is stale" when the live
//! state moved.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ExitStatus;
use super::commands::{fail, prepare};
use crate::model::Source;
use crate::pipeline::{self, ClusterSide, Prepared};
use crate::plan::Plan;
use crate::state::{CaMethod, Signer};
use crate::vault::Vault;

/// The version of the plan file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What stands in for an inline secret value in a saved plan.
const REDACTED: &str = "(redacted: read from the repository at apply time)";

/// A saved plan.
#[derive(Debug, Serialize, Deserialize)]
pub struct PlanFile {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The certplane version that made it.
    pub certplane_version: String,
    /// The repository, as given to `plan`.
    pub repository: PathBuf,
    /// SHA-256 of the repository's files (paths and contents).
    pub repository_hash: String,
    /// `--render DIR` of the plan, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<PathBuf>,
    /// The plan.
    pub plan: Plan,
}

/// SHA-256 over every file of the repository (hidden files and `.git`
/// excluded, as the loader does; `render`, when inside, excluded too), in
/// path order.
pub fn repository_hash(dir: &Path, render: Option<&Path>) -> Result<String, std::io::Error> {
    let mut files = Vec::new();
    let render = render.and_then(|r| r.canonicalize().ok());
    for entry in ignore::WalkBuilder::new(dir)
        .hidden(true)
        .git_ignore(false)
        .build()
    {
        let entry = entry.map_err(std::io::Error::other)?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        if let (Some(r), Ok(p)) = (&render, path.canonicalize())
            && p.starts_with(r)
        {
            continue;
        }
        let rel = path.strip_prefix(dir).unwrap_or(path).to_path_buf();
        files.push(rel);
    }
    files.sort();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for rel in files {
        let bytes = std::fs::read(dir.join(&rel))?;
        let name = rel.to_string_lossy().replace('\\', "/");
        ctx.update(&(name.len() as u64).to_le_bytes());
        ctx.update(name.as_bytes());
        ctx.update(&(bytes.len() as u64).to_le_bytes());
        ctx.update(&bytes);
    }
    let digest = ctx.finish();
    Ok(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

/// The inline sources (secret values) of a plan's CA changes.
fn inline_sources(plan: &mut Plan) -> Vec<&mut Source> {
    let mut out = Vec::new();
    for c in &mut plan.changes {
        let Some(ca) = c.ca.as_mut() else { continue };
        match &mut ca.desired.method {
            CaMethod::Import { bundle } => out.push(bundle),
            CaMethod::Intermediate {
                signer: Signer::External { ca_key, .. },
                ..
            } => out.push(ca_key),
            _ => {}
        }
    }
    out.into_iter()
        .filter(|s| matches!(s, Source::Value(_)))
        .collect()
}

/// Why a plan cannot be saved: it carries a Secret's values.
fn secret_manifest(plan: &Plan) -> Option<String> {
    plan.changes.iter().find_map(|c| {
        let m = c.manifest.as_ref()?;
        let is_secret = m.get("kind").and_then(|k| k.as_str()) == Some("Secret");
        let has_values = ["data", "stringData"].iter().any(|k| {
            m.get(*k)
                .and_then(|d| d.as_object())
                .is_some_and(|d| d.values().any(|v| v.as_str().is_none_or(|s| !s.is_empty())))
        });
        (is_secret && has_values).then(|| c.addr.to_string())
    })
}

/// Writes `plan` to `out`. Errors are printed.
pub fn write_plan(
    out: &Path,
    dir: &Path,
    render: Option<&Path>,
    plan: &Plan,
) -> Result<(), ExitStatus> {
    if let Some(addr) = secret_manifest(plan) {
        eprintln!(
            "error: cannot save the plan: {addr} is a Secret with values, and a plan file never holds secrets; \
             keep Secrets out of the repository (e.g. deliver them with deliverTo) to use --out"
        );
        return Err(ExitStatus::Error);
    }
    let mut plan = plan.clone();
    for s in inline_sources(&mut plan) {
        *s = Source::Value(REDACTED.into());
    }
    let hash = repository_hash(dir, render).map_err(|e| fail(&e))?;
    let file = PlanFile {
        format_version: FORMAT_VERSION,
        certplane_version: env!("CARGO_PKG_VERSION").into(),
        repository: dir.to_path_buf(),
        repository_hash: hash,
        render: render.map(Path::to_path_buf),
        plan,
    };
    let text = serde_json::to_string_pretty(&file).map_err(|e| fail(&e))?;
    std::fs::write(out, text + "\n").map_err(|e| {
        eprintln!("error: cannot write the plan to {}: {e}", out.display());
        ExitStatus::Error
    })?;
    eprintln!("Saved the plan to {}.", out.display());
    Ok(())
}

/// Reads a saved plan, checks it against the repository, and connects:
/// what `apply` needs, exactly as `plan` would have produced it.
pub async fn planned_from_file(
    file: &Path,
    dir: Option<&Path>,
    render: Option<&Path>,
) -> Result<(Prepared, Option<Vault>, ClusterSide, Plan), ExitStatus> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        eprintln!("error: cannot read the plan {}: {e}", file.display());
        ExitStatus::Error
    })?;
    let saved: PlanFile = serde_json::from_str(&text).map_err(|e| {
        eprintln!(
            "error: {} is not a certplane plan file: {e}",
            file.display()
        );
        ExitStatus::Error
    })?;
    if saved.format_version != FORMAT_VERSION {
        eprintln!(
            "error: {} has plan format version {}, this certplane reads version {FORMAT_VERSION}; run plan again",
            file.display(),
            saved.format_version
        );
        return Err(ExitStatus::Error);
    }
    let dir = dir.unwrap_or(&saved.repository);
    let render = render.or(saved.render.as_deref());
    let prepared = prepare(dir)?;
    let hash = repository_hash(dir, render).map_err(|e| fail(&e))?;
    if hash != saved.repository_hash {
        eprintln!(
            "error: plan is stale: the repository {} changed since the plan was made; run plan again",
            dir.display()
        );
        return Err(ExitStatus::Error);
    }
    let mut plan = saved.plan;
    // Put the inline values back from the (identical) repository.
    for c in &mut plan.changes {
        let Some(ca) = c.ca.as_mut() else { continue };
        let fresh = prepared
            .desired
            .resources
            .iter()
            .find(|r| r.addr == c.addr)
            .and_then(|r| r.ca.as_ref());
        match (&mut ca.desired.method, fresh.map(|f| &f.method)) {
            (CaMethod::Import { bundle }, Some(CaMethod::Import { bundle: b }))
                if matches!(bundle, Source::Value(_)) =>
            {
                *bundle = b.clone();
            }
            (
                CaMethod::Intermediate {
                    signer: Signer::External { ca_key, .. },
                    ..
                },
                Some(CaMethod::Intermediate {
                    signer: Signer::External { ca_key: k, .. },
                    ..
                }),
            ) if matches!(ca_key, Source::Value(_)) => *ca_key = k.clone(),
            _ => {}
        }
    }
    let vault = pipeline::connect_if_needed(&prepared)
        .await
        .map_err(|e| fail(&e))?;
    let side = pipeline::cluster_side(&prepared.repo, render)
        .await
        .map_err(|e| fail(&e))?;
    Ok((prepared, vault, side, plan))
}
