//! Finding the YAML files of a repository, in a deterministic order.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::diagnostic::Diagnostic;
use crate::model::Location;

/// The file at the root whose gitignore-style patterns exclude paths.
pub const IGNORE_FILE: &str = ".certplaneignore";

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn at(path: &Path) -> Location {
    Location {
        file: path.to_path_buf(),
        line: 1,
        column: 1,
    }
}

/// The root directory and every YAML file under it as (path relative to
/// the root, path as the user will see it), sorted by relative path. When
/// `dir` is a single file, the root is its directory and the file is the
/// only one.
pub fn files(dir: &Path) -> Result<(PathBuf, Vec<(PathBuf, PathBuf)>), Diagnostic> {
    files_except(dir, &|_| false)
}

/// [`files`], without the directories for which `excluded` is true (the
/// render directory: certplane's output is never its input).
pub fn files_except(
    dir: &Path,
    excluded: &dyn Fn(&Path) -> bool,
) -> Result<(PathBuf, Vec<(PathBuf, PathBuf)>), Diagnostic> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        Diagnostic::new(at(dir), format!("cannot read the repository: {e}"))
            .hint("give the path of a directory of certplane YAML files")
    })?;
    if meta.is_file() {
        let root = dir.parent().unwrap_or(Path::new("")).to_path_buf();
        let rel = PathBuf::from(dir.file_name().unwrap_or_default());
        return Ok((root, vec![(rel, dir.to_path_buf())]));
    }
    let ignore = ignore_rules(dir)?;
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel_dir) = pending.pop() {
        let abs = dir.join(&rel_dir);
        let entries = std::fs::read_dir(&abs).map_err(|e| {
            Diagnostic::new(at(&abs), format!("cannot list directory: {e}"))
                .hint("check the directory's permissions")
        })?;
        let mut subdirs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| {
                Diagnostic::new(at(&abs), format!("cannot list directory: {e}"))
                    .hint("check the directory's permissions")
            })?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let rel = rel_dir.join(&name);
            let path = dir.join(&rel);
            // Follow symlinks to files; a symlinked directory is followed
            // too, but only once it is not an ancestor (no loops).
            let Ok(ft) = std::fs::metadata(&path).map(|m| m.file_type()) else {
                tracing::debug!(path = %path.display(), "skipping a dangling link");
                continue;
            };
            if ignore
                .as_ref()
                .is_some_and(|g| g.matched_path_or_any_parents(&rel, ft.is_dir()).is_ignore())
            {
                tracing::debug!(path = %path.display(), "ignored by {IGNORE_FILE}");
                continue;
            }
            if ft.is_dir() && excluded(&path) {
                tracing::debug!(path = %path.display(), "skipping the render directory");
                continue;
            }
            if ft.is_dir() {
                if entry.file_type().is_ok_and(|t| t.is_symlink()) && is_loop(&path) {
                    tracing::debug!(path = %path.display(), "skipping a directory link loop");
                    continue;
                }
                subdirs.push(rel);
            } else if ft.is_file() && is_yaml(&rel) {
                out.push((rel, path));
            }
        }
        pending.extend(subdirs);
    }
    out.sort();
    Ok((dir.to_path_buf(), out))
}

/// Whether a directory link points at one of its own ancestors.
fn is_loop(path: &Path) -> bool {
    let Ok(target) = std::fs::canonicalize(path) else {
        return true;
    };
    path.parent()
        .and_then(|p| std::fs::canonicalize(p).ok())
        .is_some_and(|parent| parent.starts_with(&target))
}

fn ignore_rules(dir: &Path) -> Result<Option<Gitignore>, Diagnostic> {
    let file = dir.join(IGNORE_FILE);
    if !file.is_file() {
        return Ok(None);
    }
    let mut builder = GitignoreBuilder::new(dir);
    if let Some(e) = builder.add(&file) {
        return Err(
            Diagnostic::new(at(&file), format!("invalid {IGNORE_FILE}: {e}"))
                .hint("use gitignore syntax: one pattern a line"),
        );
    }
    builder.build().map(Some).map_err(|e| {
        Diagnostic::new(at(&file), format!("invalid {IGNORE_FILE}: {e}"))
            .hint("use gitignore syntax: one pattern a line")
    })
}
