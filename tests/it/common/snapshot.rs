//! Insta settings for snapshots of the CLI's output: filters that blank
//! what differs between runs and machines (the test's directories, loopback
//! ports, times, serial numbers, hashes and ids), so that a
//! snapshot changes only when what certplane says changes. Review changed
//! snapshots with `cargo insta review`, or rewrite them with
//! `INSTA_UPDATE=always cargo test --test it` and read the diff.

use std::path::Path;

/// `text` as a regular expression that matches it literally.
fn literal(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The settings of a CLI snapshot: each of `dirs` (a directory the test
/// made, and its name in the snapshot, e.g. `[REPO]`) is blanked first,
/// then the temp directory, then loopback ports, times, certificate
/// serials, SHA-256 hashes and UUIDs.
pub fn settings(dirs: &[(&Path, &str)]) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    for (dir, name) in dirs {
        s.add_filter(&literal(&dir.display().to_string()), *name);
        if let Ok(real) = dir.canonicalize() {
            s.add_filter(&literal(&real.display().to_string()), *name);
        }
    }
    let tmp = std::env::temp_dir();
    s.add_filter(
        &format!(
            r"{}/?\.tmp\w+",
            literal(tmp.display().to_string().trim_end_matches('/'))
        ),
        "[TEMP]",
    );
    s.add_filter(r"(127\.0\.0\.1|localhost):\d+", "$1:[PORT]");
    s.add_filter(
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
        "[TIME]",
    );
    s.add_filter(r"\b[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){7,}\b", "[SERIAL]");
    s.add_filter(r"\b[0-9a-f]{64}\b", "[SHA256]");
    s.add_filter(
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        "[UUID]",
    );
    s
}

/// One run of the binary as a snapshot: the exit code, then stdout and
/// stderr.
pub fn run_text(run: &super::Run) -> String {
    format!(
        "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
        run.code, run.stdout, run.stderr
    )
}
