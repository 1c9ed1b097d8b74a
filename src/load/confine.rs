//! Keeping the files a repository names inside the repository.
//!
//! A `{file: ...}` source or a path field (`caCertFile`, `certificateFile`,
//! `caBundleFile`, `render`...) is resolved against the directory of the
//! YAML file that names it, the way the operating system will open it:
//! component by component, following symbolic links. It must stay inside
//! the repository root at every step: an absolute path, a `..` that climbs
//! out, or a link whose target lies outside is refused. A path that does
//! not exist yet (a manual signer's certificate, a render directory) is
//! checked as far as it exists.

use std::path::{Component, Path, PathBuf};

/// The repository root, canonical, for [`Root::check`].
#[derive(Clone, Debug)]
pub struct Root {
    canonical: PathBuf,
}

/// Why a path leaves the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Escape {
    /// It is absolute.
    Absolute,
    /// A `..` climbs above the root.
    Parent,
    /// A symbolic link on the way points outside the root.
    Link {
        /// The link, relative to the root.
        link: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// A symbolic link on the way cannot be resolved (dangling, or a loop).
    Broken {
        /// The link, relative to the root.
        link: PathBuf,
    },
}

impl Escape {
    /// Why, for a diagnostic.
    pub fn why(&self) -> String {
        match self {
            Escape::Absolute => "it is an absolute path".into(),
            Escape::Parent => "its .. climbs out of the repository".into(),
            Escape::Link { link, target } => format!(
                "the symbolic link {} points outside the repository, to {}",
                link.display(),
                target.display()
            ),
            Escape::Broken { link } => format!(
                "the symbolic link {} cannot be resolved (dangling, or a loop)",
                link.display()
            ),
        }
    }
}

impl Root {
    /// The root at `dir` (which must exist).
    pub fn new(dir: &Path) -> std::io::Result<Root> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        Ok(Root {
            canonical: std::fs::canonicalize(dir)?,
        })
    }

    /// The root itself, canonical.
    pub fn path(&self) -> &Path {
        &self.canonical
    }

    /// Whether `canonical` (an already resolved path) is inside the root.
    pub fn contains(&self, canonical: &Path) -> bool {
        canonical.starts_with(&self.canonical)
    }

    fn rel<'p>(&self, p: &'p Path) -> &'p Path {
        p.strip_prefix(&self.canonical).unwrap_or(p)
    }

    /// Checks `written`, named by a file in `dir` (inside the root), and
    /// returns it joined to `dir` (as the loader rebases it).
    pub fn check(&self, written: &Path, dir: &Path) -> Result<PathBuf, Escape> {
        if written.is_absolute() || written.has_root() {
            return Err(Escape::Absolute);
        }
        let start = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut cur = std::fs::canonicalize(start).map_err(|_| Escape::Broken {
            link: start.to_path_buf(),
        })?;
        if !self.contains(&cur) {
            return Err(Escape::Parent);
        }
        // Once a component does not exist, nothing below it can be a link.
        let mut exists = true;
        for c in written.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    cur.pop();
                    if !self.contains(&cur) {
                        return Err(Escape::Parent);
                    }
                }
                Component::Normal(name) => {
                    let next = cur.join(name);
                    if !exists {
                        cur = next;
                        continue;
                    }
                    match std::fs::symlink_metadata(&next) {
                        Ok(m) if m.file_type().is_symlink() => {
                            let Ok(target) = std::fs::canonicalize(&next) else {
                                return Err(Escape::Broken {
                                    link: self.rel(&next).to_path_buf(),
                                });
                            };
                            if !self.contains(&target) {
                                return Err(Escape::Link {
                                    link: self.rel(&next).to_path_buf(),
                                    target,
                                });
                            }
                            cur = target;
                        }
                        Ok(_) => cur = next,
                        Err(_) => {
                            exists = false;
                            cur = next;
                        }
                    }
                }
                Component::RootDir | Component::Prefix(_) => return Err(Escape::Absolute),
            }
        }
        Ok(dir.join(written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_paths_pass_and_are_rebased() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("pki/ca")).unwrap();
        std::fs::write(d.path().join("pki/ca/root.pem"), "x").unwrap();
        std::fs::create_dir_all(d.path().join("keys")).unwrap();
        let root = Root::new(d.path()).unwrap();
        let pki = d.path().join("pki");
        assert_eq!(
            root.check(Path::new("./ca/root.pem"), &pki),
            Ok(pki.join("./ca/root.pem"))
        );
        // `..` that stays inside, and a file that does not exist yet.
        assert!(root.check(Path::new("../keys/new.pem"), &pki).is_ok());
        assert!(root.check(Path::new("missing/../../keys/x"), &pki).is_ok());
    }

    #[test]
    fn absolute_parent_and_links_out_are_refused() {
        let outer = tempfile::tempdir().unwrap();
        let repo = outer.path().join("repo");
        std::fs::create_dir_all(repo.join("sub")).unwrap();
        std::fs::write(outer.path().join("secret"), "s").unwrap();
        let root = Root::new(&repo).unwrap();
        assert_eq!(
            root.check(Path::new("/etc/passwd"), &repo),
            Err(Escape::Absolute)
        );
        assert_eq!(
            root.check(Path::new("../secret"), &repo),
            Err(Escape::Parent)
        );
        assert_eq!(
            root.check(Path::new("../../../x"), &repo.join("sub")),
            Err(Escape::Parent)
        );
        // Out and back in is still out.
        assert_eq!(
            root.check(Path::new("../repo/sub"), &repo),
            Err(Escape::Parent)
        );
        std::os::unix::fs::symlink(outer.path().join("secret"), repo.join("link.pem")).unwrap();
        assert!(matches!(
            root.check(Path::new("link.pem"), &repo),
            Err(Escape::Link { .. })
        ));
        std::os::unix::fs::symlink(outer.path(), repo.join("out")).unwrap();
        let e = root.check(Path::new("out/secret"), &repo).unwrap_err();
        assert!(e.why().contains("out"), "{}", e.why());
        // A link inside, then `..`: resolved where the link points.
        std::os::unix::fs::symlink(repo.join("sub"), repo.join("in")).unwrap();
        assert!(root.check(Path::new("in/../sub"), &repo).is_ok());
        std::os::unix::fs::symlink("loop", repo.join("loop")).unwrap();
        assert!(matches!(
            root.check(Path::new("loop"), &repo),
            Err(Escape::Broken { .. })
        ));
    }
}
