//! The repository identity: the name under which certplane records what one
//! repository owns (its cluster inventory, the owner tag on Vault mounts and
//! policies, the header of rendered files), so that several repositories can
//! share a Vault, a cluster or a render directory without pruning each
//! other's objects.
//!
//! It is `metadata.name` of the `Config` in `certplane.yaml` when set (a
//! DNS-1123 label, checked when loading), and otherwise derived from where
//! the repository comes from: the directory's name for local commands, the
//! Git URL's last path segment (without `.git`) plus `--path` for `run`.
//! The derived name is sanitised into a DNS-1123 label by [`sanitize`].

/// The longest DNS-1123 label.
pub const MAX_LEN: usize = 63;

/// The identity used when nothing usable can be derived.
pub const FALLBACK: &str = "repository";

/// Why a name is not a DNS-1123 label, or `None` when it is one.
pub fn label_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > MAX_LEN {
        return Some("it is longer than 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("it may hold only lowercase letters, digits and '-'");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("it must start and end with a letter or digit");
    }
    None
}

/// Turns any text into a DNS-1123 label: lowercase, every run of other
/// characters becomes one `-`, no `-` at either end, at most 63 characters;
/// [`FALLBACK`] when nothing is left.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(MAX_LEN);
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        FALLBACK.to_string()
    } else {
        trimmed.to_string()
    }
}

/// The identity of a repository followed from Git: the URL's last path
/// segment without `.git` (`https://git.example.com/infra/pki.git` -> `pki`,
/// `git@host:team/pki` -> `pki`), followed by the path inside it when there
/// is one (`--path clusters/prod` -> `pki-clusters-prod`).
pub fn from_git(url: &str, path: Option<&std::path::Path>) -> String {
    let trimmed = url.trim_end_matches(['/', '\\']);
    let last = trimmed.rsplit(['/', ':', '\\']).next().unwrap_or(trimmed);
    let last = last.strip_suffix(".git").unwrap_or(last);
    let mut text = last.to_string();
    if let Some(p) = path {
        let p = p.to_string_lossy();
        let p = p.trim_matches(['/', '.']);
        if !p.is_empty() {
            text.push('-');
            text.push_str(p);
        }
    }
    sanitize(&text)
}

/// The identity of a local repository: its directory's name (the directory
/// itself resolved, so `.` names the current directory).
pub fn from_dir(root: &std::path::Path) -> String {
    let resolved = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let name = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    sanitize(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn labels_are_checked() {
        assert_eq!(label_problem("pki-homelab"), None);
        assert_eq!(label_problem("a"), None);
        assert!(label_problem("").is_some());
        assert!(label_problem("Pki").is_some());
        assert!(label_problem("pki_int").is_some());
        assert!(label_problem("-pki").is_some());
        assert!(label_problem("pki-").is_some());
        assert!(label_problem(&"a".repeat(64)).is_some());
        assert_eq!(label_problem(&"a".repeat(63)), None);
    }

    #[test]
    fn anything_sanitizes_to_a_label() {
        assert_eq!(sanitize("My_Repo.v2"), "my-repo-v2");
        assert_eq!(sanitize("--x--"), "x");
        assert_eq!(sanitize(".tmpAbC123"), "tmpabc123");
        assert_eq!(sanitize("___"), FALLBACK);
        assert_eq!(sanitize("é"), FALLBACK);
        let long = sanitize(&format!("{}-{}", "a".repeat(62), "b"));
        assert_eq!(long, "a".repeat(62));
        for s in ["My_Repo.v2", "--x--", "___", &"ab-".repeat(40)] {
            assert_eq!(label_problem(&sanitize(s)), None, "{s}");
        }
    }

    #[test]
    fn git_urls_name_their_last_segment_and_path() {
        assert_eq!(
            from_git("https://git.example.com/infra/pki.git", None),
            "pki"
        );
        assert_eq!(from_git("https://git.example.com/infra/pki/", None), "pki");
        assert_eq!(from_git("git@github.com:team/PKI.git", None), "pki");
        assert_eq!(from_git("file:///srv/git/pki.git", None), "pki");
        assert_eq!(
            from_git(
                "https://git.example.com/infra/pki.git",
                Some(Path::new("clusters/prod"))
            ),
            "pki-clusters-prod"
        );
        assert_eq!(from_git("/srv/git/pki", Some(Path::new("./"))), "pki");
    }

    #[test]
    fn a_directory_is_named_by_its_resolved_name() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("Home_Lab");
        std::fs::create_dir(&repo).unwrap();
        assert_eq!(from_dir(&repo), "home-lab");
        assert_eq!(from_dir(&repo.join(".")), "home-lab");
    }
}
