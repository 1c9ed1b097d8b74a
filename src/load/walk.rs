//! Finding the YAML files of a repository, in a deterministic order.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::diagnostic::Diagnostic;
use crate::model::Location;

use super::confine::Root;

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

/// What [`files`] found.
#[derive(Debug)]
pub struct Walk {
    /// The root, as given (the directory, or a single file's directory).
    pub root: PathBuf,
    /// The root, canonical: file references must stay inside it.
    pub confine: Root,
    /// Every YAML file as (path relative to the root, path as the user
    /// will see it), sorted by relative path.
    pub files: Vec<(PathBuf, PathBuf)>,
    /// Links refused on the way (leaving the root, or looping), one each.
    pub problems: Vec<Diagnostic>,
}

/// The root directory and every YAML file under it. When `dir` is a single
/// file, the root is its directory and the file is the only one.
///
/// Symbolic links are followed only inside the repository: a linked YAML
/// file or directory whose target is outside the root is refused, a
/// directory link that points back at one of its own ancestors (or a link
/// chain that loops) is one error for that link, and a directory reached
/// twice through links is read once.
pub fn files(dir: &Path) -> Result<Walk, Diagnostic> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        Diagnostic::new(at(dir), format!("cannot read the repository: {e}"))
            .hint("give the path of a directory of certplane YAML files")
    })?;
    let unreadable = |e: std::io::Error| {
        Diagnostic::new(at(dir), format!("cannot read the repository: {e}"))
            .hint("check the directory's permissions")
    };
    if meta.is_file() {
        let root = dir.parent().unwrap_or(Path::new("")).to_path_buf();
        let rel = PathBuf::from(dir.file_name().unwrap_or_default());
        return Ok(Walk {
            confine: Root::new(&root).map_err(unreadable)?,
            root,
            files: vec![(rel, dir.to_path_buf())],
            problems: Vec::new(),
        });
    }
    let confine = Root::new(dir).map_err(unreadable)?;
    let ignore = ignore_rules(dir)?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut visited: HashSet<PathBuf> = HashSet::from([confine.path().to_path_buf()]);
    // (directory relative to the root, canonical directories above and at it)
    let mut pending = vec![(PathBuf::new(), vec![confine.path().to_path_buf()])];
    while let Some((rel_dir, chain)) = pending.pop() {
        let abs = dir.join(&rel_dir);
        let cannot_list = |e: std::io::Error| {
            Diagnostic::new(at(&abs), format!("cannot list directory: {e}"))
                .hint("check the directory's permissions")
        };
        let mut entries = std::fs::read_dir(&abs)
            .map_err(cannot_list)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(cannot_list)?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        let mut subdirs = Vec::new();
        for entry in entries {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let rel = rel_dir.join(&name);
            let path = dir.join(&rel);
            let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
            let ft = std::fs::metadata(&path).map(|m| m.file_type());
            let is_dir = ft.as_ref().is_ok_and(std::fs::FileType::is_dir);
            if ignore
                .as_ref()
                .is_some_and(|g| g.matched_path_or_any_parents(&rel, is_dir).is_ignore())
            {
                tracing::debug!(path = %path.display(), "ignored by {IGNORE_FILE}");
                continue;
            }
            let Ok(ft) = ft else {
                if is_link && link_loops(&path) {
                    problems.push(loop_problem(&path, None));
                } else {
                    tracing::debug!(path = %path.display(), "skipping a dangling link");
                }
                continue;
            };
            if !ft.is_dir() && !(ft.is_file() && is_yaml(&rel)) {
                continue;
            }
            let Ok(target) = std::fs::canonicalize(&path) else {
                problems.push(loop_problem(&path, None));
                continue;
            };
            if is_link && !confine.contains(&target) {
                let what = if ft.is_dir() { "directory" } else { "YAML file" };
                problems.push(
                    Diagnostic::new(
                        at(&path),
                        format!(
                            "symbolic link to a {what} outside the repository ({}): refused",
                            target.display()
                        ),
                    )
                    .hint(
                        "certplane reads only what is inside the repository: copy the files in, or remove the link",
                    ),
                );
                continue;
            }
            if ft.is_dir() {
                if chain.contains(&target) {
                    let shown = match target.strip_prefix(confine.path()) {
                        Ok(p) if p.as_os_str().is_empty() => "the repository root".to_string(),
                        Ok(p) => p.display().to_string(),
                        Err(_) => target.display().to_string(),
                    };
                    problems.push(loop_problem(&path, Some(&shown)));
                    continue;
                }
                if !visited.insert(target.clone()) {
                    tracing::debug!(path = %path.display(), "already read through another link");
                    continue;
                }
                let mut below = chain.clone();
                below.push(target);
                subdirs.push((rel, below));
            } else {
                out.push((rel, path));
            }
        }
        // Depth first, in name order.
        pending.extend(subdirs.into_iter().rev());
    }
    out.sort();
    Ok(Walk {
        root: dir.to_path_buf(),
        confine,
        files: out,
        problems,
    })
}

fn loop_problem(link: &Path, ancestor: Option<&str>) -> Diagnostic {
    let message = match ancestor {
        Some(a) => format!("symbolic link loop: this directory link points back at {a}"),
        None => "symbolic link loop: the link resolves to itself".to_string(),
    };
    Diagnostic::new(at(link), message)
        .hint("remove the link, or point it at a directory that does not contain it")
}

/// Whether a link that cannot be resolved is part of a cycle of links
/// (rather than dangling).
fn link_loops(path: &Path) -> bool {
    let mut seen = HashSet::new();
    let mut cur = path.to_path_buf();
    for _ in 0..40 {
        if !seen.insert(cur.clone()) {
            return true;
        }
        match std::fs::read_link(&cur) {
            Ok(t) => {
                cur = match cur.parent() {
                    Some(p) if t.is_relative() => p.join(t),
                    _ => t,
                }
            }
            Err(_) => return false,
        }
    }
    true
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
