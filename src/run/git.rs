//! The Git source of `certplane run`: a bare clone in a cache directory,
//! fetched on every interval, one checked-out tree per commit, and optional
//! SSH signature verification.
//!
//! Git is driven through the `git` command line rather than libgit2: it
//! speaks https (with a CA bundle), ssh (with a key and known_hosts), file://
//! and local paths with no C library to build, and `git verify-commit`
//! checks SSH signatures against an allowed-signers file exactly as Git does.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Where and how to fetch.
#[derive(Clone, Debug)]
pub struct GitSettings {
    /// The repository: `https://…`, `ssh://…`, `git@host:path`, `file://…` or
    /// a local path.
    pub url: String,
    /// The branch to follow.
    pub branch: String,
    /// The cache directory (bare clone and trees).
    pub cache: PathBuf,
    /// CA bundle for https (`http.sslCAInfo`).
    pub ca_bundle: Option<PathBuf>,
    /// Private key for ssh.
    pub ssh_key: Option<PathBuf>,
    /// known_hosts for ssh (host keys are always checked).
    pub known_hosts: Option<PathBuf>,
}

/// Why a Git step failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started.
    #[error("cannot run git (is it installed?)")]
    Spawn(#[source] std::io::Error),
    /// A git command failed.
    #[error("git {step} failed: {stderr}")]
    Failed {
        /// What was being done.
        step: &'static str,
        /// git's own message (last lines of stderr).
        stderr: String,
    },
    /// The cache directory could not be prepared.
    #[error("cannot prepare {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A followed branch.
#[derive(Debug)]
pub struct GitSource {
    settings: GitSettings,
    bare: PathBuf,
}

impl GitSource {
    /// A source caching under `settings.cache` (created when missing).
    pub fn new(settings: GitSettings) -> Result<Self, GitError> {
        std::fs::create_dir_all(&settings.cache).map_err(|source| GitError::Io {
            path: settings.cache.clone(),
            source,
        })?;
        let bare = settings.cache.join("repo.git");
        Ok(GitSource { settings, bare })
    }

    /// The branch followed.
    pub fn branch(&self) -> &str {
        &self.settings.branch
    }

    fn git(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("git");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Never ask on a terminal; never read the user's global config
            // for credentials helpers or rewrites that a daemon cannot honour.
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_ASKPASS", "true");
        if let Some(ca) = &self.settings.ca_bundle {
            // The environment, not `-c http.sslCAInfo`: git 2.47 with a
            // GnuTLS libcurl ignores the latter given on the command line
            // (tests/run_loop.rs fetches over https to prove the bundle works).
            cmd.env("GIT_SSL_CAINFO", ca);
        }
        if self.settings.ssh_key.is_some() || self.settings.known_hosts.is_some() {
            let mut ssh = String::from("ssh -o BatchMode=yes -o StrictHostKeyChecking=yes");
            if let Some(k) = &self.settings.ssh_key {
                ssh.push_str(&format!(" -o IdentitiesOnly=yes -i {}", shell_quote(k)));
            }
            if let Some(h) = &self.settings.known_hosts {
                ssh.push_str(&format!(" -o UserKnownHostsFile={}", shell_quote(h)));
            }
            cmd.env("GIT_SSH_COMMAND", ssh);
        }
        cmd
    }

    async fn output(
        &self,
        step: &'static str,
        cmd: &mut tokio::process::Command,
    ) -> Result<String, GitError> {
        let out = cmd.output().await.map_err(GitError::Spawn)?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = tail[tail.len().saturating_sub(3)..].join(" / ");
            return Err(GitError::Failed {
                step,
                stderr: redact_url(&tail),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Clones (first time) or fetches the branch; returns the commit it
    /// points at.
    pub async fn fetch(&self) -> Result<String, GitError> {
        let refspec = format!(
            "+refs/heads/{0}:refs/heads/{0}",
            self.settings.branch.trim()
        );
        if !self.bare.join("HEAD").is_file() {
            let _ = std::fs::remove_dir_all(&self.bare);
            self.output(
                "init",
                self.git()
                    .arg("init")
                    .arg("--bare")
                    .arg("-q")
                    .arg(&self.bare),
            )
            .await?;
        }
        self.output(
            "fetch",
            self.git()
                .arg("--git-dir")
                .arg(&self.bare)
                .args(["fetch", "--quiet", "--no-tags", "--force", "--"])
                .arg(&self.settings.url)
                .arg(&refspec),
        )
        .await?;
        self.output(
            "rev-parse",
            self.git()
                .arg("--git-dir")
                .arg(&self.bare)
                .arg("rev-parse")
                .arg("--verify")
                .arg(format!("refs/heads/{}^{{commit}}", self.settings.branch)),
        )
        .await
    }

    /// Writes the tree of `commit` to `<cache>/trees/<commit>` (once) and
    /// returns that directory.
    pub async fn checkout(&self, commit: &str) -> Result<PathBuf, GitError> {
        let dir = self.settings.cache.join("trees").join(commit);
        if dir.join(".certplane-complete").is_file() {
            return Ok(dir);
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|source| GitError::Io {
            path: dir.clone(),
            source,
        })?;
        let index = self.settings.cache.join(format!("index-{commit}"));
        self.output(
            "checkout",
            self.git()
                .env("GIT_INDEX_FILE", &index)
                .arg("--git-dir")
                .arg(&self.bare)
                .arg("--work-tree")
                .arg(&dir)
                .args(["checkout", "--force", commit, "--", "."]),
        )
        .await?;
        let _ = std::fs::remove_file(&index);
        std::fs::write(dir.join(".certplane-complete"), commit).map_err(|source| GitError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(dir)
    }

    /// Removes every checked-out tree except those of `keep`.
    pub fn prune_trees(&self, keep: &[&str]) {
        let Ok(entries) = std::fs::read_dir(self.settings.cache.join("trees")) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if !keep.iter().any(|k| name.to_str() == Some(k)) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// `git verify-commit` against an SSH allowed-signers file: `Ok` only
    /// when the commit carries a good signature by one of its keys.
    pub async fn verify(&self, commit: &str, allowed_signers: &Path) -> Result<(), GitError> {
        self.output(
            "verify-commit",
            self.git()
                .arg("-c")
                .arg(config_arg(
                    "gpg.ssh.allowedSignersFile",
                    allowed_signers.as_os_str(),
                ))
                // Only the allowed-signers file decides: an OpenPGP or X.509
                // signature must not pass on the strength of whatever
                // keyring the process's user happens to have.
                .args(["-c", "gpg.program=false", "-c", "gpg.x509.program=false"])
                .arg("--git-dir")
                .arg(&self.bare)
                .arg("verify-commit")
                .arg(commit),
        )
        .await
        .map(|_| ())
        .map_err(|e| match e {
            GitError::Failed { stderr, .. } => GitError::Failed {
                step: "verify-commit",
                stderr: if stderr.is_empty() {
                    "the commit is not signed".into()
                } else {
                    stderr
                },
            },
            other => other,
        })
    }
}

fn config_arg(key: &str, value: &std::ffi::OsStr) -> OsString {
    let mut s = OsString::from(format!("{key}="));
    s.push(value);
    s
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Blanks `user:password@` in any URL git printed.
fn redact_url(text: &str) -> String {
    text.split(' ')
        .map(|w| match (w.find("://"), w.find('@')) {
            (Some(s), Some(a)) if a > s => format!("{}***{}", &w[..s + 3], &w[a..]),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_in_urls_are_blanked() {
        assert_eq!(
            super::redact_url("fatal: https://u:tok@host/r.git not found"),
            "fatal: https://***@host/r.git not found"
        );
        assert_eq!(super::redact_url("plain"), "plain");
    }
}
