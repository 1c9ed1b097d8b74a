//! The offline steps: load -> expand -> validate -> lower. Nothing here
//! touches the network; every problem found is returned at once, with the
//! step it belongs to.

use std::path::Path;

use super::error::Step;
use crate::diagnostic::Diagnostics;
use crate::model::Repository;
use crate::operator::Operator;
use crate::state::Desired;

/// A repository that loaded and passed every offline check, lowered to the
/// desired Vault state.
#[derive(Debug)]
pub struct Prepared {
    /// The typed repository, VaultIssuers expanded.
    pub repo: Repository,
    /// What Vault should hold.
    pub desired: Desired,
}

/// What [`prepare_with`] needs besides the directory.
#[derive(Clone, Copy, Default)]
pub struct PrepareOptions<'a> {
    /// References the repository does not declare may name what the live
    /// Vault has (`validate --live`).
    pub live: Option<&'a crate::validate::Live>,
    /// The render directory given with `--render`: never loaded as input
    /// (`spec.cluster.render` never is either).
    pub render: Option<&'a Path>,
    /// The repository identity when `certplane.yaml` names none (`run`
    /// derives it from the Git URL); default: the directory's name.
    pub identity: Option<&'a str>,
    /// Whose rules apply to sources and connection settings (default: this
    /// process's [`Operator`], [`crate::operator::current`]).
    pub operator: Option<&'a Operator>,
}

/// Loads, expands, validates and lowers `dir` for this process's
/// [`Operator`] ([`crate::operator::current`]). Any problem is returned with
/// every diagnostic found; nothing has touched the network yet.
pub fn prepare(dir: &Path) -> Result<Prepared, Diagnostics> {
    prepare_with(dir, PrepareOptions::default())
}

/// [`prepare`] for a given operator.
pub fn prepare_for(dir: &Path, op: &Operator) -> Result<Prepared, Diagnostics> {
    prepare_with(
        dir,
        PrepareOptions {
            operator: Some(op),
            ..PrepareOptions::default()
        },
    )
}

/// [`prepare`], where references that the repository does not declare may
/// name what the live Vault has (`validate --live`).
pub fn prepare_with_live(
    dir: &Path,
    live: Option<&crate::validate::Live>,
) -> Result<Prepared, Diagnostics> {
    prepare_with(
        dir,
        PrepareOptions {
            live,
            ..PrepareOptions::default()
        },
    )
}

/// [`prepare`] with options.
pub fn prepare_with(dir: &Path, options: PrepareOptions<'_>) -> Result<Prepared, Diagnostics> {
    prepare_steps(dir, options).map_err(|(_, d)| d)
}

/// Loads `dir` with the operator's rules for sources, and refuses a
/// `certplane.yaml` whose Vault settings the operator does not allow. The
/// first step of [`prepare`]; enough before connecting to Vault.
pub fn load_checked(dir: &Path, op: &Operator) -> Result<Repository, Diagnostics> {
    let options = crate::load::LoadOptions {
        env: op.env.clone(),
        ..Default::default()
    };
    let repo = crate::load::load_with(dir, &options)?;
    let conflicts = crate::operator::check_config(&repo, op);
    if conflicts.is_empty() {
        Ok(repo)
    } else {
        Err(Diagnostics(conflicts))
    }
}

/// The offline steps, each failure naming its step: load (and the
/// operator's check of `certplane.yaml`), expand, validate, lower. The
/// settings the operator refuses, expansion and validation problems are
/// reported together (the step named is the first that failed).
pub(crate) fn prepare_steps(
    dir: &Path,
    options: PrepareOptions<'_>,
) -> Result<Prepared, (Step, Diagnostics)> {
    let current;
    let op = match options.operator {
        Some(op) => op,
        None => {
            current = crate::operator::current();
            &current
        }
    };
    let load_options = crate::load::LoadOptions {
        env: op.env.clone(),
        exclude: options.render.map(Path::to_path_buf).into_iter().collect(),
        identity: options.identity.map(str::to_string),
    };
    let mut repo = crate::load::load_with(dir, &load_options).map_err(invalid(Step::Load))?;
    // Every problem at once: the settings the operator refuses, then the
    // repository's own.
    let mut problems = crate::operator::check_config(&repo, op);
    let mut step = (!problems.is_empty()).then_some(Step::Load);
    match crate::expand::expand(&mut repo) {
        Ok(()) => {
            let found = crate::validate::validate_with_live(&repo, options.live);
            if !found.is_empty() {
                step.get_or_insert(Step::Validate);
            }
            problems.extend(found);
        }
        Err(d) => {
            step.get_or_insert(Step::Expand);
            problems.extend(d.0);
        }
    }
    if let Some(step) = step {
        return Err((step, Diagnostics(problems)));
    }
    // Held for the whole run: no room to grow into.
    repo.vault.shrink_to_fit();
    repo.manifests.shrink_to_fit();
    let desired = crate::desired::build(&repo).map_err(invalid(Step::Lower))?;
    tracing::info!(
        dir = %dir.display(),
        repository = %repo.identity,
        objects = repo.vault.len(),
        manifests = repo.manifests.len(),
        resources = desired.resources.len(),
        "repository loaded and valid"
    );
    for r in &desired.resources {
        tracing::trace!(addr = %r.addr, kind = ?r.kind, fields = r.fields.len(), "desired");
    }
    Ok(Prepared { repo, desired })
}

fn invalid(step: Step) -> impl FnOnce(Diagnostics) -> (Step, Diagnostics) {
    move |d| (step, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn each_offline_failure_names_its_step() {
        let op = Operator::default();
        let options = PrepareOptions {
            operator: Some(&op),
            ..PrepareOptions::default()
        };
        let unreadable = repo(&[("a.yaml", "kind: [unclosed\n")]);
        let (step, _) = prepare_steps(unreadable.path(), options).unwrap_err();
        assert_eq!(step, Step::Load);

        let dangling = repo(&[(
            "role.yaml",
            "apiVersion: certplane.dev/v1alpha1\nkind: PkiRole\nmetadata: {name: web}\n\
             spec: {mount: nowhere, allowedDomains: [example.com], ttl: 1h, maxTTL: 2h}\n",
        )]);
        let (step, d) = prepare_steps(dangling.path(), options).unwrap_err();
        assert_eq!(step, Step::Validate, "{d}");
        assert!(d.to_string().contains("nowhere"), "{d}");
    }
}
