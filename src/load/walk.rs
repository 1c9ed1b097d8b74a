//! Finding the YAML files of a repository, in a deterministic order.

use std::collections::{HashMap, HashSet};
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
        file: path.into(),
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
/// file or directory whose target is outside the root is refused; a
/// directory link that leads back to a directory being read (a loop, however
/// many links it takes) is one error, at the link that closes it; a
/// directory reached twice through links is read once.
///
/// Directories whose canonical path is in `excluded` are not read (the
/// render directory: certplane's output is never its input).
pub fn files(dir: &Path, excluded: &[PathBuf]) -> Result<Walk, Diagnostic> {
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
    let mut walker = Walker {
        dir,
        ignore: ignore_rules(dir)?,
        confine,
        excluded,
        state: HashMap::new(),
        looped: HashSet::new(),
        files: Vec::new(),
        problems: Vec::new(),
    };
    let start = walker.confine.path().to_path_buf();
    walker.visit(Path::new(""), start)?;
    let Walker {
        confine,
        mut files,
        problems,
        ..
    } = walker;
    files.sort();
    Ok(Walk {
        root: dir.to_path_buf(),
        confine,
        files,
        problems,
    })
}

/// Where the walk is with a directory (by canonical path).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Being read: a link to it closes a loop.
    Open,
    /// Read in full: a link to it is an alias, skipped.
    Done,
}

struct Walker<'a> {
    dir: &'a Path,
    /// Canonical directories never read (the render directory).
    excluded: &'a [PathBuf],
    ignore: Option<Gitignore>,
    confine: Root,
    state: HashMap<PathBuf, Seen>,
    /// Links of the cycles of links already reported.
    looped: HashSet<PathBuf>,
    files: Vec<(PathBuf, PathBuf)>,
    problems: Vec<Diagnostic>,
}

impl Walker<'_> {
    /// Reads the directory `rel_dir` (canonically `canonical`), depth first
    /// in name order.
    fn visit(&mut self, rel_dir: &Path, canonical: PathBuf) -> Result<(), Diagnostic> {
        self.state.insert(canonical.clone(), Seen::Open);
        let abs = self.dir.join(rel_dir);
        let cannot_list = |e: std::io::Error| {
            Diagnostic::new(at(&abs), format!("cannot list directory: {e}"))
                .hint("check the directory's permissions")
        };
        let mut entries = std::fs::read_dir(&abs)
            .map_err(cannot_list)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(cannot_list)?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let rel = rel_dir.join(&name);
            let path = self.dir.join(&rel);
            let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
            let ft = std::fs::metadata(&path).map(|m| m.file_type());
            let is_dir = ft.as_ref().is_ok_and(std::fs::FileType::is_dir);
            if self
                .ignore
                .as_ref()
                .is_some_and(|g| g.matched_path_or_any_parents(&rel, is_dir).is_ignore())
            {
                tracing::debug!(path = %path.display(), "ignored by {IGNORE_FILE}");
                continue;
            }
            let Ok(ft) = ft else {
                match is_link.then(|| link_cycle(&path)).flatten() {
                    // One error per cycle, at its first link.
                    Some(cycle) => {
                        if !self.looped.contains(&path) {
                            self.problems.push(loop_problem(&path, None));
                        }
                        self.looped.extend(cycle);
                    }
                    None => tracing::debug!(path = %path.display(), "skipping a dangling link"),
                }
                continue;
            };
            let wanted = ft.is_dir() || (ft.is_file() && is_yaml(&rel));
            if !wanted {
                continue;
            }
            let Ok(target) = std::fs::canonicalize(&path) else {
                self.problems.push(loop_problem(&path, None));
                continue;
            };
            if ft.is_dir() && self.excluded.contains(&target) {
                tracing::debug!(path = %path.display(), "skipping the render directory");
                continue;
            }
            if is_link && !self.confine.contains(&target) {
                let what = if ft.is_dir() {
                    "directory"
                } else {
                    "YAML file"
                };
                self.problems.push(
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
            if !ft.is_dir() {
                self.files.push((rel, path));
                continue;
            }
            match self.state.get(&target) {
                Some(Seen::Open) => {
                    let shown = match target.strip_prefix(self.confine.path()) {
                        Ok(p) if p.as_os_str().is_empty() => "the repository root".to_string(),
                        Ok(p) => p.display().to_string(),
                        Err(_) => target.display().to_string(),
                    };
                    self.problems.push(loop_problem(&path, Some(&shown)));
                }
                Some(Seen::Done) => {
                    tracing::debug!(path = %path.display(), "already read through another path");
                }
                None => self.visit(&rel, target)?,
            }
        }
        self.state.insert(canonical, Seen::Done);
        Ok(())
    }
}

fn loop_problem(link: &Path, back_to: Option<&str>) -> Diagnostic {
    let message = match back_to {
        Some(a) => {
            format!("symbolic link loop: this directory link leads back to {a}, which contains it")
        }
        None => "symbolic link loop: following the link leads back to the link".to_string(),
    };
    Diagnostic::new(at(link), message)
        .hint("remove the link, or point it at a directory that does not contain it")
}

/// The links of the cycle a link that cannot be resolved belongs to
/// (`None`: it is dangling, not a loop).
fn link_cycle(path: &Path) -> Option<HashSet<PathBuf>> {
    let mut seen = HashSet::new();
    let mut cur = path.to_path_buf();
    for _ in 0..40 {
        if !seen.insert(cur.clone()) {
            return Some(seen);
        }
        let t = std::fs::read_link(&cur).ok()?;
        cur = match cur.parent() {
            Some(p) if t.is_relative() => p.join(t),
            _ => t,
        };
    }
    Some(seen)
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
