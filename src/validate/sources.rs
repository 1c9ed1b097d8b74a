//! `{file: ...}` sources that are read only when sent: a file that does not
//! exist, or cannot be read as text, is reported now, at the field that
//! names it, instead of failing in `apply` after earlier writes.
//!
//! Sources and path fields that validation already reads, and reports on
//! with their own message, are not repeated here: an import's
//! `pemBundleFrom`, an external signer's `caCertFile`, a kubernetes auth
//! `caCertFile`, a `VaultIssuer`'s `caBundleFrom` (read when it expands) and
//! the `Config` files. The `Config` auth sources are not checked: they are
//! read at login, before any write, and may exist only where certplane runs.
//! A signed certificate expected at `signedBy.manual.certificateFile` may be
//! missing by design (the CSR is waiting to be signed).

use std::path::Path;

use crate::diagnostic::Diagnostic;
use crate::model::{CaSpec, Origin, Repository, SignedBy, Source};

/// Why the file cannot be read as text, if it cannot. Nothing of its
/// content is kept or shown.
fn unreadable(path: &Path) -> Option<(String, &'static str)> {
    match std::fs::read(path) {
        Ok(bytes) => match std::str::from_utf8(&bytes) {
            Ok(_) => None,
            Err(_) => Some((
                "is not UTF-8 text".into(),
                "give a PEM or text file (certplane reads sources as text)",
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some((
            "does not exist".into(),
            "paths are relative to the YAML file that names them; create the file or fix the path",
        )),
        Err(e) if path.is_dir() => Some((
            format!("is a directory ({e})"),
            "name a file, not a directory",
        )),
        Err(e) => Some((
            format!("cannot be read: {e}"),
            "check the file's permissions for the user running certplane",
        )),
    }
}

fn file_source(origin: &Origin, at: &str, what: &str, src: &Source, out: &mut Vec<Diagnostic>) {
    let Source::File(path) = src else {
        return;
    };
    if let Some((why, hint)) = unreadable(path) {
        out.push(
            Diagnostic::new(
                origin.at(&format!("{at}.file")),
                format!("{what}: file {} {why}", path.display()),
            )
            .hint(hint),
        );
    }
}

/// Every file source nobody else reads before apply.
pub(super) fn check(repo: &Repository, out: &mut Vec<Diagnostic>) {
    for (meta, origin, spec) in repo.pki_mounts() {
        if let Some(CaSpec::Intermediate(i)) = &spec.ca
            && let SignedBy::External(e) = &i.signed_by
        {
            file_source(
                origin,
                "spec.ca.intermediate.signedBy.external.caKeyFrom",
                &format!("mount {}: the signing CA key", meta.name),
                &e.ca_key_from,
                out,
            );
        }
    }
    for (meta, origin, spec) in repo.auth_mounts() {
        if let Some(k) = &spec.kubernetes
            && let Some(src) = &k.token_reviewer_jwt_from
        {
            file_source(
                origin,
                "spec.kubernetes.tokenReviewerJwtFrom",
                &format!("auth mount {}: the token reviewer JWT", meta.name),
                src,
                out,
            );
        }
    }
}
