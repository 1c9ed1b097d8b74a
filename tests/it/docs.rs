//! The documentation in the repository: `docs/reference.md` is what the
//! schemas say (regenerated and compared: `make docs` rewrites it), every
//! link of the README and of `docs/` resolves inside the repository (file
//! and heading), and the README's cross-check tables are all in
//! `docs/cross-checks.md`.
//!
//! Rewrite the generated files with `make docs`
//! (`CERTPLANE_UPDATE_DOCS=1 cargo test --test it docs::`).

use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_reference_is_generated_from_the_schemas() {
    let generated =
        certplane::model::schema::reference::markdown(&certplane::cli::schema_files()) + "\n";
    let path = root().join("docs/reference.md");
    if std::env::var_os("CERTPLANE_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(generated.lines().count()));
        panic!(
            "docs/reference.md is stale (first difference at line {}: {:?}, generated {:?}); run `make docs`",
            first + 1,
            committed.lines().nth(first).unwrap_or(""),
            generated.lines().nth(first).unwrap_or("")
        );
    }
}

/// The Markdown files a reader of the repository sees.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "md") {
            pages.push(p);
        }
    }
    pages.sort();
    pages
}

/// The targets of `[text](target)` links, outside code spans and blocks.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop inline code spans.
        let mut plain = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                plain.push_str(part);
            }
        }
        let mut rest = plain.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

/// GitHub's anchors of a page's headings.
fn anchors(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#').trim();
        out.push(
            heading
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    'a'..='z' | '0'..='9' | '-' | '_' => Some(c),
                    ' ' => Some('-'),
                    _ => None,
                })
                .collect(),
        );
    }
    out
}

/// `path` with `.` and `..` resolved lexically; `None` when it climbs
/// above the repository.
fn inside(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut parts: Vec<Component> = Vec::new();
    let root = root();
    let depth = root.components().count();
    let joined = base.join(rel);
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                if parts.len() <= depth {
                    return None;
                }
                parts.pop();
            }
            Component::CurDir => {}
            c => parts.push(c),
        }
    }
    let path: PathBuf = parts.iter().collect();
    path.starts_with(&root).then_some(path)
}

#[test]
fn every_link_resolves_inside_the_repository() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let name = page.strip_prefix(root()).unwrap().display().to_string();
        for target in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                broken.push(format!(
                    "{name}: {target}: links leave the repository; link a file of it"
                ));
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let resolved = if file.is_empty() {
                Some(page.clone())
            } else {
                inside(page.parent().unwrap(), file)
            };
            let Some(resolved) = resolved else {
                broken.push(format!("{name}: {target}: outside the repository"));
                continue;
            };
            if !resolved.exists() {
                broken.push(format!("{name}: {target}: no such file"));
                continue;
            }
            if let Some(anchor) = anchor {
                let text = std::fs::read_to_string(&resolved).unwrap_or_default();
                if !anchors(&text).iter().any(|a| a == anchor) {
                    broken.push(format!("{name}: {target}: no heading #{anchor}"));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links:\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn the_link_checker_sees_links_and_refuses_leaving_the_repository() {
    let found = links("see [a](docs/a.md#x) and `[b](c)` but\n```\n[d](e)\n```\n[f](../g)");
    assert_eq!(found, ["docs/a.md#x", "../g"]);
    assert_eq!(unlinked("a [b](c) d [e](f)"), "a [b] d [e]");
    assert!(inside(&root(), "../shared/design/FORMAT.md").is_none());
    assert!(inside(&root().join("docs"), "../schemas/").is_some());
    assert_eq!(
        anchors(
            "## The Vault side\n### `certplane verify`\n## Cross-checks (`certplane validate`)"
        ),
        [
            "the-vault-side",
            "certplane-verify",
            "cross-checks-certplane-validate"
        ]
    );
}

/// `text` with every link's target dropped: `[a](b)` -> `[a]`.
fn unlinked(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        out.push_str(&rest[..=i]);
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(end) => rest = &after[end + 1..],
            None => {
                rest = after;
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every row of the README's cross-check tables is in the full list.
#[test]
fn the_readme_cross_checks_are_all_in_the_docs() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let docs = std::fs::read_to_string(root().join("docs/cross-checks.md")).unwrap();
    let start = readme
        .find("## Cross-checks")
        .expect("the README has a Cross-checks section");
    let section = &readme[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let rows: Vec<&str> = section[..end]
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| check |"))
        .collect();
    assert!(!rows.is_empty(), "no cross-check rows in the README");
    // Links differ (the README's anchors are its own): compare without targets.
    let docs = unlinked(&docs);
    let missing: Vec<&&str> = rows
        .iter()
        .filter(|r| !docs.contains(&unlinked(r)))
        .collect();
    assert!(
        missing.is_empty(),
        "cross-checks in the README but not in docs/cross-checks.md:\n{}",
        missing
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The README states no count that a new test directory or check makes
/// false (it once said 80 bad repositories when there were 79).
#[test]
fn the_readme_hard_codes_no_count_of_test_cases() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let re = regex::Regex::new(
        r"(?i)\b(\d+|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve) (bad|invalid) repositor|\b(\d+|four|five|six) (tests|checks|examples) (are|run|pass)",
    )
    .unwrap();
    let found: Vec<&str> = re.find_iter(&readme).map(|m| m.as_str()).collect();
    assert!(found.is_empty(), "counts in the README: {found:?}");
}

/// Every certplane document in a `yaml` code block of `docs/` matches the
/// schema of all kinds: the examples a reader copies are accepted.
#[test]
fn the_yaml_examples_in_the_docs_match_the_schemas() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/certplane.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for page in pages()
        .into_iter()
        .filter(|p| p.starts_with(root().join("docs")))
    {
        let text = std::fs::read_to_string(&page).unwrap();
        let mut block: Option<String> = None;
        for line in text.lines() {
            match (&mut block, line.trim_start()) {
                (None, "```yaml") => block = Some(String::new()),
                (Some(b), "```") => {
                    let yaml = std::mem::take(b);
                    block = None;
                    for doc in certplane::load::yaml::split(&yaml).unwrap() {
                        let value: serde_json::Value =
                            certplane::load::yaml::deserialize(&yaml, &doc).unwrap_or_else(|e| {
                                panic!(
                                    "{}: a yaml block does not parse: {}",
                                    page.display(),
                                    e.message
                                )
                            });
                        if value["apiVersion"] != "certplane.dev/v1alpha1" {
                            continue;
                        }
                        crate::common::jsonschema::assert_valid(
                            &schema,
                            &value,
                            &format!("{}: {}", page.display(), value["kind"]),
                        );
                        checked += 1;
                    }
                }
                (Some(b), _) => {
                    b.push_str(line);
                    b.push('\n');
                }
                (None, _) => {}
            }
        }
    }
    assert!(
        checked >= 5,
        "only {checked} certplane documents in the docs' yaml blocks"
    );
}
