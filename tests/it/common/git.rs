//! Git repositories for `certplane run` to follow: a bare "origin" and a
//! work tree that pushes to it, in a temp directory, with `git` run in a
//! clean environment (no system or user configuration).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{copy_dir, homelab};

/// A bare "origin" and a work tree that pushes to it.
pub struct GitRepo {
    dir: tempfile::TempDir,
}

/// Runs `git <args>` in `cwd` with `HOME` at `home`; its stdout, trimmed.
/// Panics with git's stderr when it fails.
pub fn git(cwd: &Path, home: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .stdin(Stdio::null())
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl GitRepo {
    /// `origin.git` (bare) and `work` (a clone of it) holding examples/homelab.
    pub fn homelab() -> GitRepo {
        let dir = tempfile::tempdir().unwrap();
        let repo = GitRepo { dir };
        git(
            repo.home(),
            repo.home(),
            &["init", "--bare", "-q", "-b", "main", "origin.git"],
        );
        std::fs::create_dir_all(repo.work()).unwrap();
        git(&repo.work(), repo.home(), &["init", "-q", "-b", "main"]);
        git(
            &repo.work(),
            repo.home(),
            &["remote", "add", "origin", "../origin.git"],
        );
        copy_dir(&homelab(), &repo.work());
        repo
    }

    /// The directory holding `origin.git` and `work` (the `HOME` of git).
    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// The work tree.
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// The `file://` URL of the origin.
    pub fn url(&self) -> String {
        format!("file://{}", self.dir.path().join("origin.git").display())
    }

    /// Commits everything and pushes; returns the commit.
    pub fn commit(&self, msg: &str, sign_with: Option<&Path>) -> String {
        let w = self.work();
        git(&w, self.home(), &["add", "-A"]);
        let mut args = vec!["-c", "commit.gpgsign=false"];
        let key;
        if let Some(k) = sign_with {
            key = format!("user.signingkey={}", k.display());
            args = vec!["-c", "gpg.format=ssh", "-c", &key];
        }
        args.extend(["commit", "-q", "--allow-empty", "-m", msg]);
        if sign_with.is_some() {
            args.push("-S");
        }
        git(&w, self.home(), &args);
        git(&w, self.home(), &["push", "-q", "origin", "main"]);
        git(&w, self.home(), &["rev-parse", "HEAD"])
    }

    /// Replaces the first `from` in the work tree's `file` by `to`.
    #[track_caller]
    pub fn edit(&self, file: &str, from: &str, to: &str) {
        super::edit(&self.work(), file, from, to);
    }
}
