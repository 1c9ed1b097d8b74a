//! Loading a repository from a temporary directory: file discovery,
//! ignore rules, positions, rebasing of relative paths, error collection,
//! symbolic links (followed only inside the repository; a loop is one
//! error), and the confinement of file and env sources.

use std::path::Path;

use certplane::model::{CaSpec, SignedBy, Source, VaultObject};

use crate::common::write;

const H: &str = "apiVersion: certplane.dev/v1alpha1\n";

fn policy(name: &str) -> String {
    format!(
        "{H}kind: Policy\nmetadata: {{name: {name}}}\nspec:\n  rules:\n    - path: a/b\n      capabilities: [read]\n"
    )
}

#[test]
fn walks_sorted_and_skips_hidden_ignored_and_non_yaml_files() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "b.yaml", &policy("b"));
    write(d.path(), "a/z.yml", &policy("az"));
    write(d.path(), "a.yaml", &policy("a"));
    write(d.path(), ".hidden.yaml", &policy("hidden"));
    write(d.path(), ".git/x.yaml", "not: [valid");
    write(d.path(), "vendor/x.yaml", "not: [valid");
    write(d.path(), "drafts/one.yaml", "not: [valid");
    write(d.path(), "notes.txt", "not yaml");
    write(d.path(), ".certplaneignore", "vendor/\n/drafts\n");
    let repo = certplane::load::load(d.path()).unwrap();
    let names: Vec<&str> = repo.vault.iter().map(|o| o.meta.name.as_str()).collect();
    assert_eq!(names, ["az", "a", "b"]);
}

#[test]
fn keeps_kubernetes_manifests_and_skips_empty_documents() {
    let d = tempfile::tempdir().unwrap();
    let text = format!(
        "---\n---\n# nothing\n---\napiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {{name: vault-issuer}}\nspec: {{vault: {{}}}}\n---\n{}",
        policy("p")
    );
    write(d.path(), "mixed.yaml", &text);
    let repo = certplane::load::load(d.path()).unwrap();
    assert_eq!(repo.vault.len(), 1);
    assert_eq!(repo.vault[0].origin.line, 10);
    assert_eq!(repo.manifests.len(), 1);
    let issuer = &repo.manifests[0];
    assert_eq!(issuer.meta.name, "vault-issuer");
    assert_eq!(issuer.spec["kind"], "Issuer");
    assert_eq!(issuer.origin.at("spec.vault").line, 8);
}

#[test]
fn loads_vault_issuers_and_approle_delivery() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "issuer.yaml",
        &format!(
            "{H}kind: VaultIssuer\nmetadata: {{name: vi, namespace: sandbox}}\nspec:\n  server: https://v:8200\n  caBundleFrom: {{file: ca.pem}}\n  role: {{mount: pki, name: web}}\n  auth: {{kubernetes: {{mount: kubernetes}}}}\n---\n{H}kind: AppRole\nmetadata: {{name: cm}}\nspec:\n  mount: approle\n  deliverTo: {{secret: {{namespace: a, name: b}}}}\n"
        ),
    );
    let repo = certplane::load::load(d.path()).unwrap();
    assert_eq!(repo.vault_issuers.len(), 1);
    assert_eq!(
        repo.vault_issuers[0].spec.ca_bundle_from,
        Some(Source::File(d.path().join("ca.pem")))
    );
    let (_, _, app) = repo.app_roles().next().unwrap();
    assert_eq!(app.deliver_to.as_ref().unwrap().secret.key, "secretId");
}

#[test]
fn duplicate_cluster_objects_are_errors_across_versions() {
    let d = tempfile::tempdir().unwrap();
    let cm = |v: &str| {
        format!(
            "apiVersion: cert-manager.io/{v}\nkind: Issuer\nmetadata: {{name: i, namespace: n}}\nspec: {{selfSigned: {{}}}}\n"
        )
    };
    write(d.path(), "a.yaml", &cm("v1"));
    write(d.path(), "b.yaml", &cm("v2"));
    let err = certplane::load::load(d.path()).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert!(
        err.0[0]
            .message
            .contains("duplicate cert-manager.io/Issuer n/i"),
        "{err}"
    );
    assert!(err.0[0].location.file.ends_with("b.yaml"));
}

#[test]
fn records_field_positions_by_dotted_path() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "p.yaml", &format!("# c\n{}", policy("p")));
    let repo = certplane::load::load(d.path()).unwrap();
    let o = &repo.vault[0].origin;
    assert_eq!((o.line, o.column), (2, 1));
    let at = o.at("spec.rules[0].path");
    assert_eq!((at.line, at.column), (7, 7));
    let at = o.at("spec.rules[0].capabilities[0]");
    assert_eq!((at.line, at.column), (8, 22));
    // Not written: the nearest written parent.
    let at = o.at("spec.rules[0].missing");
    assert_eq!((at.line, at.column), (7, 7));
    assert!(at.file.ends_with("p.yaml"));
}

#[test]
fn rebases_relative_paths_against_the_naming_file() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "pki/ca.yaml",
        &format!(
            "{H}kind: PkiMount\nmetadata: {{name: pki_int}}\nspec:\n  ca:\n    intermediate:\n      commonName: I\n      signedBy:\n        external:\n          caCertFile: ./offline/root.pem\n          caKeyFrom: {{file: ../keys/root.key}}\n---\n{H}kind: PkiMount\nmetadata: {{name: imp}}\nspec:\n  ca:\n    import: {{pemBundleFrom: {{env: CERTPLANE_VAR_BUNDLE}}}}\n"
        ),
    );
    write(
        d.path(),
        "certplane.yaml",
        &format!(
            "{H}kind: Config\nspec:\n  vault:\n    caBundleFile: ca/vault.pem\n    auth:\n      appRole: {{roleId: r, secretIdFrom: {{file: secret-id}}}}\n"
        ),
    );
    let repo = certplane::load::load(d.path()).unwrap();
    let VaultObject::PkiMount(m) = &repo.vault[0].spec else {
        panic!()
    };
    let Some(CaSpec::Intermediate(i)) = &m.ca else {
        panic!()
    };
    let SignedBy::External(e) = &i.signed_by else {
        panic!()
    };
    assert_eq!(e.ca_cert_file, d.path().join("pki/./offline/root.pem"));
    assert_eq!(
        e.ca_key_from,
        Source::File(d.path().join("pki/../keys/root.key"))
    );
    let VaultObject::PkiMount(m) = &repo.vault[1].spec else {
        panic!()
    };
    let Some(CaSpec::Import(imp)) = &m.ca else {
        panic!()
    };
    assert_eq!(
        imp.pem_bundle_from,
        Source::Env("CERTPLANE_VAR_BUNDLE".into())
    );
    let cfg = repo.config.expect("config");
    let vault = cfg.spec.vault.unwrap();
    assert_eq!(vault.ca_bundle_file.unwrap(), d.path().join("ca/vault.pem"));
}

#[test]
fn collects_every_error_of_every_file() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.yaml", "key: [unclosed\n");
    write(
        d.path(),
        "b.yaml",
        &format!(
            "{H}kind: Polcy\nmetadata: {{name: x}}\nspec: {{}}\n---\n{H}kind: PkiRole\nmetadata: {{name: r}}\nspec:\n  mount: pki\n  allowAnyNames: true\n"
        ),
    );
    write(d.path(), "c.yaml", "kind: Policy\n");
    let err = certplane::load::load(d.path()).unwrap_err();
    let shown: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 4, "{shown:#?}");
    assert!(shown[0].contains("a.yaml:1:") && shown[0].contains("invalid YAML"));
    assert!(shown[1].contains("b.yaml:2:") && shown[1].contains("did you mean Policy?"));
    assert!(
        shown[2].contains("b.yaml:11:3") && shown[2].contains("did you mean allowAnyName?"),
        "{}",
        shown[2]
    );
    assert!(shown[3].contains("c.yaml:1:1") && shown[3].contains("no apiVersion"));
    assert!(
        err.to_string()
            .ends_with("4 errors found; nothing was applied")
    );
}

#[test]
fn reports_every_error_of_a_document_at_its_line() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "r.yaml",
        &format!(
            "{H}kind: PkiRole\nmetadata: {{name: r}}\nspec:\n  mount: pki\n  allowAnyNames: true\n  ttl: 3x\n  allowSubdomain: true\n  maxTTL: 24h\n  allowedDomains: [example.com]\n  serverFlag: yes\n  keyType: rsaa\n---\n{H}kind: Policy\nmetadata: {{name: p}}\nspec:\n  rules:\n    - path: a/b\n      capabilities: [read]\n      extra: 1\n  bogus: true\n"
        ),
    );
    let err = certplane::load::load(d.path()).unwrap_err();
    let shown: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    let at: Vec<&str> = shown
        .iter()
        .map(|s| s.split(": ").next().unwrap())
        .collect();
    let file = |pos: &str| format!("{}:{pos}", d.path().join("r.yaml").display());
    assert_eq!(
        at,
        [
            file("6:3"),
            file("7:8"),
            file("8:3"),
            file("11:15"),
            file("12:12"),
            file("21:7"),
            file("22:3"),
        ],
        "{shown:#?}"
    );
    assert!(
        shown[0].contains("did you mean allowAnyName?"),
        "{}",
        shown[0]
    );
    assert!(
        shown[1].contains("spec.ttl: invalid duration"),
        "{}",
        shown[1]
    );
    assert!(
        shown[2].contains("did you mean allowSubdomains?"),
        "{}",
        shown[2]
    );
    assert!(shown[3].contains("not a boolean"), "{}", shown[3]);
    assert!(shown[4].contains("unknown value rsaa"), "{}", shown[4]);
    assert!(shown[5].contains("unknown field extra"), "{}", shown[5]);
    assert!(shown[6].contains("unknown field bogus"), "{}", shown[6]);
}

#[test]
fn missing_fields_are_named_by_their_full_path() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "pki.yaml",
        &format!(
            "{H}kind: PkiMount\nmetadata: {{name: pki}}\nspec:\n  ca:\n    root:\n      keyType: ec\n"
        ),
    );
    let err = certplane::load::load(d.path()).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert!(
        err.0[0].message.contains("spec.ca.root.commonName"),
        "{}",
        err.0[0]
    );
}

#[test]
fn a_missing_directory_is_one_diagnostic() {
    let err = certplane::load::load(Path::new("/nonexistent/certplane/repo")).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert!(err.0[0].message.contains("cannot read the repository"));
}

#[test]
fn a_single_file_can_be_loaded() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "one.yaml", &policy("p"));
    write(d.path(), "two.yaml", &policy("q"));
    let repo = certplane::load::load(&d.path().join("one.yaml")).unwrap();
    assert_eq!(repo.vault.len(), 1);
    assert_eq!(repo.root, d.path());
}

#[test]
fn duplicate_config_and_auth_role_across_kinds_are_errors() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "certplane.yaml",
        &format!("{H}kind: Config\nspec: {{}}\n"),
    );
    write(
        d.path(),
        "certplane.yml",
        &format!("{H}kind: Config\nspec: {{}}\n"),
    );
    write(
        d.path(),
        "auth.yaml",
        &format!(
            "{H}kind: KubernetesAuthRole\nmetadata: {{name: r}}\nspec: {{mount: m, boundServiceAccountNames: [a], boundServiceAccountNamespaces: [b]}}\n---\n{H}kind: AppRole\nmetadata: {{name: r}}\nspec: {{mount: m}}\n"
        ),
    );
    let err = certplane::load::load(d.path()).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("a second Config"), "{shown}");
    assert!(
        shown.contains("duplicate auth role on mount m r: already declared at"),
        "{shown}"
    );
}

fn link(target: &str, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

/// Regression: directory links that loop made the walk descend until the
/// kernel's link limit, loading every file again at each level (140
/// "duplicate" errors for one loop).
#[test]
fn a_symlink_loop_is_one_error_whatever_its_shape() {
    for shape in ["self", "ancestor", "mutual", "chain"] {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a/one.yaml", &policy("one"));
        write(d.path(), "b/two.yaml", &policy("two"));
        match shape {
            "self" => link(".", &d.path().join("here")),
            "ancestor" => link("..", &d.path().join("a/up")),
            "mutual" => {
                link("../b", &d.path().join("a/to-b"));
                link("../a", &d.path().join("b/to-a"));
            }
            _ => {
                link("x", &d.path().join("y"));
                link("y", &d.path().join("x"));
            }
        }
        let err = certplane::load::load(d.path()).unwrap_err();
        assert_eq!(err.0.len(), 1, "{shape}: {err}");
        assert!(
            err.0[0].message.contains("symbolic link loop"),
            "{shape}: {err}"
        );
        assert!(err.0[0].hint.is_some(), "{shape}");
    }
}

#[test]
fn a_directory_reached_twice_through_a_link_is_read_once() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "real/one.yaml", &policy("one"));
    link("real", &d.path().join("alias"));
    let repo = certplane::load::load(d.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(repo.vault.len(), 1);
}

#[test]
fn links_leaving_the_repository_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "elsewhere/p.yaml", &policy("elsewhere"));
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "p.yaml", &policy("here"));
    link(
        outside.path().join("elsewhere").to_str().unwrap(),
        &d.path().join("shared"),
    );
    link(
        outside.path().join("elsewhere/p.yaml").to_str().unwrap(),
        &d.path().join("linked.yaml"),
    );
    // A link to a non-YAML file outside is not read at all: not an error.
    link("/etc/passwd", &d.path().join("notes.txt"));
    let err = certplane::load::load(d.path()).unwrap_err();
    let shown: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(shown[0].contains("linked.yaml:1:1") && shown[0].contains("YAML file outside"));
    assert!(shown[1].contains("shared:1:1") && shown[1].contains("directory outside"));
    // The same links pointing inside are followed.
    let inside = tempfile::tempdir().unwrap();
    write(inside.path(), "real/p.yaml", &policy("p"));
    link("real/p.yaml", &inside.path().join("linked.yaml"));
    let repo = certplane::load::load(inside.path()).unwrap_err();
    assert!(repo.to_string().contains("duplicate Policy p"), "{repo}");
}

#[test]
fn file_sources_and_paths_stay_inside_the_repository() {
    let outer = tempfile::tempdir().unwrap();
    let d = outer.path().join("repo");
    write(outer.path(), "secret.pem", "not for the repository");
    write(&d, "ca/inside.pem", "x");
    link("../../secret.pem", &d.join("ca/out.pem"));
    write(
        &d,
        "pki/ca.yaml",
        &format!(
            "{H}kind: VaultIssuer\nmetadata: {{name: a}}\nspec:\n  server: https://v:8200\n  caBundleFrom: {{file: /etc/passwd}}\n  role: {{mount: pki, name: web}}\n  auth: {{kubernetes: {{mount: kubernetes}}}}\n---\n{H}kind: PkiMount\nmetadata: {{name: b}}\nspec:\n  ca:\n    intermediate:\n      commonName: I\n      signedBy:\n        external:\n          caCertFile: ../../secret.pem\n          caKeyFrom: {{file: ../ca/out.pem}}\n---\n{H}kind: AuthMount\nmetadata: {{name: k}}\nspec:\n  type: kubernetes\n  kubernetes:\n    host: https://k\n    caCertFile: ../ca/inside.pem\n"
        ),
    );
    let err = certplane::load::load(&d).unwrap_err();
    let shown: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown[0].contains("ca.yaml:6:") && shown[0].contains("absolute path"),
        "{}",
        shown[0]
    );
    assert!(
        shown[1].contains("ca.yaml:19:") && shown[1].contains("climbs out"),
        "{}",
        shown[1]
    );
    assert!(
        shown[2].contains("ca.yaml:20:") && shown[2].contains("points outside"),
        "{}",
        shown[2]
    );
    for s in &shown {
        assert!(
            s.contains("hint: certplane reads files only inside the repository"),
            "{s}"
        );
        assert!(!s.contains("not for the repository"), "{s}");
    }
}

#[test]
fn env_sources_need_the_operators_allow() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "pki.yaml",
        &format!(
            "{H}kind: PkiMount\nmetadata: {{name: a}}\nspec:\n  ca:\n    import: {{pemBundleFrom: {{env: TEAM_BUNDLE}}}}\n---\n{H}kind: PkiMount\nmetadata: {{name: b}}\nspec:\n  ca:\n    import: {{pemBundleFrom: {{env: KUBECONFIG}}}}\n---\n{H}kind: PkiMount\nmetadata: {{name: c}}\nspec:\n  ca:\n    import: {{pemBundleFrom: {{env: CERTPLANE_VAR_BUNDLE}}}}\n"
        ),
    );
    let err = certplane::load::load(d.path()).unwrap_err();
    assert_eq!(err.0.len(), 2, "{err}");
    assert!(
        err.0[0].message.contains("TEAM_BUNDLE is not allowed"),
        "{err}"
    );
    assert!(
        err.0[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("--allow-env TEAM_BUNDLE")
    );
    assert!(
        err.0[1].message.contains("KUBECONFIG may not be read"),
        "{err}"
    );
    // Allowed by the operator: the prefix; the credential stays refused.
    let rules =
        certplane::operator::EnvRules::new(&["TEAM_*".to_string(), "KUBECONFIG".to_string()], None)
            .unwrap();
    let options = certplane::load::LoadOptions {
        env: rules,
        ..Default::default()
    };
    let err = certplane::load::load_with(d.path(), &options).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert!(err.0[0].message.contains("KUBECONFIG"), "{err}");
}

/// A load runs on several threads, a job per file and per 128 documents of
/// a long file: the objects, the files read and the problems still come
/// out exactly in file and document order.
#[test]
fn a_parallel_load_keeps_file_and_document_order() {
    let d = tempfile::tempdir().unwrap();
    let many = |prefix: &str, n: usize, bad: &[usize]| -> String {
        (0..n)
            .map(|i| {
                if bad.contains(&i) {
                    format!("{H}kind: Polcy\nmetadata: {{name: {prefix}{i:03}}}\nspec: {{}}\n")
                } else {
                    policy(&format!("{prefix}{i:03}"))
                }
            })
            .collect::<Vec<_>>()
            .join("---\n")
    };
    let manifests = (0..130)
        .map(|i| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm{i:03}, namespace: n}}\n")
        })
        .collect::<Vec<_>>()
        .join("---\n");
    write(d.path(), "a.yaml", &many("a", 5, &[]));
    write(d.path(), "b.yaml", &many("b", 300, &[]));
    write(d.path(), "c/cms.yaml", &manifests);
    write(d.path(), "d.yaml", &many("d", 140, &[]));
    let repo = certplane::load::load(d.path()).unwrap();
    let names: Vec<String> = repo.vault.iter().map(|o| o.meta.name.clone()).collect();
    let expected: Vec<String> = (0..5)
        .map(|i| format!("a{i:03}"))
        .chain((0..300).map(|i| format!("b{i:03}")))
        .chain((0..140).map(|i| format!("d{i:03}")))
        .collect();
    assert_eq!(names, expected);
    let cms: Vec<&str> = repo
        .manifests
        .iter()
        .map(|m| m.meta.name.as_str())
        .collect();
    let expected: Vec<String> = (0..130).map(|i| format!("cm{i:03}")).collect();
    assert_eq!(cms, expected);
    let files: Vec<String> = repo
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(files, ["a.yaml", "b.yaml", "c/cms.yaml", "d.yaml"]);
    // Each object's position is its own document's.
    let b200 = repo.vault.iter().find(|o| o.meta.name == "b200").unwrap();
    assert!(b200.origin.file.ends_with("b.yaml"));
    assert_eq!(b200.origin.line, 200 * 8 + 1, "{:?}", b200.origin.doc());

    // Problems in the first and the later parts of long files, in order.
    let b = many("b", 300, &[3, 130, 290]);
    let dd = many("d", 140, &[139]);
    write(d.path(), "b.yaml", &b);
    write(d.path(), "d.yaml", &dd);
    let err = certplane::load::load(d.path()).unwrap_err();
    let at: Vec<(String, usize)> = err
        .0
        .iter()
        .map(|d| {
            let file = d
                .location
                .file
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string();
            (file, d.location.line)
        })
        .collect();
    // The `kind:` line of a document: the line before its metadata.
    let kind_line = |text: &str, name: &str| {
        let needle = format!("metadata: {{name: {name}}}");
        text.lines().position(|l| l == needle).unwrap()
    };
    assert_eq!(
        at,
        [
            ("b.yaml".to_string(), kind_line(&b, "b003")),
            ("b.yaml".to_string(), kind_line(&b, "b130")),
            ("b.yaml".to_string(), kind_line(&b, "b290")),
            ("d.yaml".to_string(), kind_line(&dd, "d139")),
        ],
        "{err}"
    );
}

/// A long file is split in pieces cut at its `---` lines, in parallel
/// (`yaml::cut`, pieces of 32 KiB): its objects, their positions and its
/// problems are those of the file split whole, and a syntax error in a
/// late piece is the error of the whole file, at its line in the file.
#[test]
fn a_long_file_split_in_pieces_keeps_the_positions_of_the_file() {
    let d = tempfile::tempdir().unwrap();
    let docs = |bad: &[usize]| -> Vec<String> {
        (0..1500)
            .map(|i| {
                let name = format!("p{i:04}");
                match i {
                    _ if bad.contains(&i) => {
                        format!("{H}kind: Polcy\nmetadata: {{name: {name}}}\nspec: {{}}\n")
                    }
                    // A comment and an explicit end between some documents.
                    _ if i % 97 == 0 => format!("# {name}\n{}...\n", policy(&name)),
                    _ => policy(&name),
                }
            })
            .collect()
    };
    let text = docs(&[]).join("---\n");
    assert!(
        text.len() > 6 * 32 * 1024,
        "{} bytes: not enough pieces",
        text.len()
    );
    write(d.path(), "long.yaml", &text);
    let repo = certplane::load::load(d.path()).unwrap();
    let names: Vec<String> = repo.vault.iter().map(|o| o.meta.name.clone()).collect();
    let expected: Vec<String> = (0..1500).map(|i| format!("p{i:04}")).collect();
    assert_eq!(names, expected);
    let line_of = |text: &str, needle: &str| text.lines().position(|l| l == needle).unwrap();
    for name in ["p0000", "p0700", "p1203", "p1499"] {
        let o = repo.vault.iter().find(|o| o.meta.name == name).unwrap();
        // The document starts at its `apiVersion:` line, two before its metadata.
        let at = line_of(&text, &format!("metadata: {{name: {name}}}")) - 1;
        assert_eq!(o.origin.line, at, "{name}: {:?}", o.origin.doc());
    }

    // Problems in every piece, in order, at their lines in the file.
    let text = docs(&[3, 700, 1499]).join("---\n");
    write(d.path(), "long.yaml", &text);
    let err = certplane::load::load(d.path()).unwrap_err();
    let lines: Vec<usize> = err.0.iter().map(|d| d.location.line).collect();
    let kind_line = |name: &str| line_of(&text, &format!("metadata: {{name: {name}}}"));
    assert_eq!(
        lines,
        [kind_line("p0003"), kind_line("p0700"), kind_line("p1499")],
        "{err}"
    );

    // A syntax error in a late piece: the error of the whole file (the
    // document alone says where in the document), and nothing else of it.
    let broken = format!("{H}kind: Policy\nmetadata: {{name: broken\nspec: {{}}\n");
    write(d.path(), "long.yaml", &broken);
    let alone = certplane::load::load(d.path()).unwrap_err();
    assert_eq!(alone.0.len(), 1, "{alone}");
    let mut all = docs(&[3]);
    all[1300] = broken;
    let text = all.join("---\n");
    write(d.path(), "long.yaml", &text);
    let err = certplane::load::load(d.path()).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert!(err.0[0].message.starts_with("invalid YAML"), "{err}");
    assert_eq!(err.0[0].message, alone.0[0].message);
    // The broken document starts after the `---` line before its `apiVersion:`.
    let start = line_of(&text, "metadata: {name: broken") - 1;
    assert_eq!(
        err.0[0].location.line,
        start + alone.0[0].location.line - 1,
        "{err}"
    );
}
