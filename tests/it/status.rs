//! `certplane status` against a real OpenBao: after `examples/homelab` is
//! applied it shows root -> intermediate -> ClusterIssuer -> Certificate
//! and exits 0, with a token that may only read and without a single write
//! in the audit log; a CA inside its `rotateBefore` window exits 1 naming
//! the CA and the window; errors exit 1; the human tree and the Mermaid
//! picture are pinned by snapshots.

use std::path::Path;

use serde_json::Value;

use crate::common::{self, OpenBao, Run, certplane, certplane_as, certplane_root, copy_dir};

/// A token of `bao` allowed only to read and list the mounts and the two
/// PKI mounts of the homelab (plus the default policy's self lookup).
fn read_only_token(bao: &OpenBao) -> String {
    let policy = "path \"sys/mounts\" { capabilities = [\"read\"] }\n\
                  path \"pki/*\" { capabilities = [\"read\", \"list\"] }\n\
                  path \"pki_int/*\" { capabilities = [\"read\", \"list\"] }\n";
    let file = bao.dir().join("status-read.hcl");
    std::fs::write(&file, policy).unwrap();
    bao.bao_ok(&["policy", "write", "status-read", file.to_str().unwrap()]);
    let out = bao.bao_ok(&[
        "token",
        "create",
        "-format=json",
        "-policy=status-read",
        "-ttl=10m",
    ]);
    let created: Value = serde_json::from_str(&out).expect("bao token create -format=json");
    created["auth"]["client_token"]
        .as_str()
        .expect("a client token")
        .to_string()
}

/// The index of the first line of `text` containing `needle`, and its
/// indentation (in characters).
#[track_caller]
fn line_of(text: &str, needle: &str) -> (usize, usize) {
    text.lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .map(|(i, l)| (i, l.chars().take_while(|c| !c.is_alphanumeric()).count()))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
}

#[test]
fn status_after_homelab_shows_the_tree_read_only() {
    let bao = OpenBao::start_with_audit();
    let dir = common::homelab();
    let dir = dir.to_str().unwrap();
    certplane_root(&bao, &["apply", "--auto-approve", dir]).expect(0);
    let token = read_only_token(&bao);
    let mark = bao.audit_entries().len();

    let run = certplane_as(&bao.addr(), &token, bao.dir(), &["status", dir]);
    run.expect(0);
    let out = &run.stdout;
    // root -> intermediate -> ClusterIssuer -> Certificate, each deeper.
    let root = line_of(out, "homelab-root \"Homelab Root CA\"");
    let int_mount = line_of(out, "pki_int  intermediate CA signed by pki");
    let int = line_of(out, "homelab-int \"Homelab Intermediate CA\"");
    let issuer = line_of(
        out,
        "ClusterIssuer homelab  via pki_int/sign/homelab-dot-local",
    );
    let cert = line_of(out, "Certificate monitoring/grafana  grafana.homelab.local");
    let chain = [root, int_mount, int, issuer, cert];
    for w in chain.windows(2) {
        assert!(w[0].0 < w[1].0 && w[0].1 < w[1].1, "{w:?} in\n{out}");
    }
    assert!(out.contains("[default]  self-signed"), "{out}");
    assert!(
        out.contains("[default]  signed by pki/homelab-root"),
        "{out}"
    );
    assert!(out.contains("left  ok"), "{out}");
    assert!(
        out.contains("Every CA in use is valid and outside its rotateBefore window."),
        "{out}"
    );
    assert!(!out.contains('\x1b'), "NO_COLOR: no colour\n{out}");

    // The same tree as JSON, Mermaid and Graphviz.
    let json = certplane_as(
        &bao.addr(),
        &token,
        bao.dir(),
        &["status", "-o", "json", dir],
    );
    json.expect(0);
    let v: Value = serde_json::from_str(&json.stdout).expect("status -o json is JSON");
    assert_eq!(v["version"], 1);
    let int = &v["mounts"][1]["issuers"][0];
    assert_eq!(v["mounts"][1]["path"], "pki_int");
    assert_eq!(int["name"], "homelab-int");
    assert_eq!(int["parent"]["mount"], "pki");
    assert_eq!(int["parent"]["name"], "homelab-root");
    assert_eq!(
        int["cluster_issuers"][0]["certificates"][0]["name"],
        "grafana"
    );
    assert_eq!(v["alerts"], Value::Array(vec![]));
    let mermaid = certplane_as(
        &bao.addr(),
        &token,
        bao.dir(),
        &["status", "--format", "mermaid", dir],
    );
    mermaid.expect(0);
    assert!(
        mermaid.stdout.starts_with("graph TD\n"),
        "{}",
        mermaid.both()
    );
    assert!(
        mermaid
            .stdout
            .contains("ca_pki_homelab_root --> ca_pki_int_homelab_int"),
        "{}",
        mermaid.stdout
    );
    assert!(
        mermaid
            .stdout
            .contains("ca_pki_int_homelab_int --> clusterissuer_homelab"),
        "{}",
        mermaid.stdout
    );
    let dot = certplane_as(
        &bao.addr(),
        &token,
        bao.dir(),
        &["status", "--format", "dot", dir],
    );
    dot.expect(0);
    assert!(
        dot.stdout.starts_with("digraph certplane {"),
        "{}",
        dot.both()
    );
    assert!(
        dot.stdout
            .contains("ca_pki_homelab_root -> ca_pki_int_homelab_int;"),
        "{}",
        dot.stdout
    );

    // Read-only: not one write (logins aside), and the token never printed.
    let writes = common::writes_since(&bao, mark);
    assert!(writes.is_empty(), "status wrote: {writes:?}");
    let seen: Vec<(String, String)> = bao.audit_entries().into_iter().skip(mark).collect();
    assert!(
        seen.iter()
            .any(|(op, p)| op == "list" && p.trim_end_matches('/') == "pki_int/issuers"),
        "status read the issuers: {seen:?}"
    );
    for r in [&run, &json, &mermaid, &dot] {
        assert!(
            !r.both().contains(&token),
            "the token leaked:\n{}",
            r.both()
        );
    }
}

const ROTATING: &str = r#"apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki}
spec:
  maxLeaseTTL: 87600h
  ca:
    root: {commonName: Short Root CA, issuerName: root, keyType: ec, ttl: 87600h}
---
apiVersion: certplane.dev/v1alpha1
kind: PkiMount
metadata: {name: pki_int}
spec:
  maxLeaseTTL: 1h
  ca:
    intermediate:
      commonName: Short Intermediate CA
      issuerName: int
      keyType: ec
      ttl: 2h
      rotateBefore: 1h
      signedBy: {mount: pki}
"#;

#[test]
fn a_ca_inside_rotate_before_exits_1_naming_it() {
    let bao = OpenBao::start();
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("repo");
    common::write(&repo, "pki.yaml", ROTATING);
    let dir = repo.to_str().unwrap();
    certplane_root(&bao, &["apply", "--auto-approve", dir]).expect(0);

    // Two hours of life, rotateBefore 1h: fine.
    let fine = certplane_root(&bao, &["status", dir]);
    fine.expect(0);
    assert!(fine.stdout.contains("left  ok"), "{}", fine.both());
    assert!(!fine.stderr.contains("alert:"), "{}", fine.both());

    // The repository now asks for 4h with rotateBefore 3h (valid offline),
    // while the live CA has under 2h left: inside the window.
    common::edit(&repo, "pki.yaml", "ttl: 2h", "ttl: 4h");
    common::edit(&repo, "pki.yaml", "rotateBefore: 1h", "rotateBefore: 3h");
    let late = certplane_root(&bao, &["status", dir]);
    late.expect(1);
    assert!(
        late.stderr.contains(
            "alert: pki_int issuer int (\"Short Intermediate CA\") is inside its rotateBefore window"
        ),
        "{}",
        late.both()
    );
    assert!(late.stderr.contains("rotateBefore 3h"), "{}", late.both());
    assert!(late.stdout.contains("left  rotate"), "{}", late.both());
    assert!(
        late.stdout.contains("1 CA in use needs attention."),
        "{}",
        late.both()
    );
    // The root is not alerted on.
    assert!(!late.stderr.contains("alert: pki "), "{}", late.both());
    let json = certplane_root(&bao, &["status", "-o", "json", dir]);
    json.expect(1);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["alerts"][0]["mount"], "pki_int");
    assert_eq!(v["alerts"][0]["health"], "rotate");
    assert_eq!(v["alerts"][0]["rotate_before_seconds"], 3 * 3600);
}

#[test]
fn errors_exit_1_with_the_usual_messages() {
    let home = tempfile::tempdir().unwrap();
    // An invalid repository: the diagnostics, before any connection.
    let repo = home.path().join("bad");
    common::write(
        &repo,
        "role.yaml",
        "apiVersion: certplane.dev/v1alpha1\nkind: PkiRole\nmetadata: {name: web}\n\
         spec: {mount: nowhere, allowedDomains: [example.com], ttl: 1h, maxTTL: 2h}\n",
    );
    let addr = format!("http://127.0.0.1:{}", common::free_port());
    let bad = certplane_as(&addr, "t", home.path(), &["status", repo.to_str().unwrap()]);
    bad.expect(1);
    assert!(bad.stderr.contains("role.yaml:"), "{}", bad.both());
    assert!(bad.stderr.contains("nowhere"), "{}", bad.both());
    assert!(bad.stdout.is_empty(), "{}", bad.both());

    // No Vault there.
    let good = home.path().join("good");
    common::write(&good, "pki.yaml", ROTATING);
    let away = certplane_as(&addr, "t", home.path(), &["status", good.to_str().unwrap()]);
    away.expect(1);
    assert!(away.stderr.starts_with("error: "), "{}", away.both());
    assert!(away.stderr.contains("127.0.0.1"), "{}", away.both());
    assert!(away.stdout.is_empty(), "{}", away.both());

    // No PkiMount: nothing to read, no Vault needed.
    let none = home.path().join("none");
    common::write(
        &none,
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
    );
    let empty = certplane(&["status", none.to_str().unwrap()], &[], home.path());
    empty.expect(0);
    assert!(
        empty.stdout.contains("the repository declares no PkiMount"),
        "{}",
        empty.both()
    );
}

fn snapshot_settings(dirs: &[(&Path, &str)]) -> insta::Settings {
    let mut s = common::snapshot::settings(dirs);
    s.add_filter(r"\b\d{4}-\d{2}-\d{2}\b", "[DATE]");
    s.add_filter(r"\b\d+d \d+h\b", "[SPAN]");
    s
}

#[test]
fn status_output_snapshots() {
    let bao = OpenBao::start();
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("homelab");
    copy_dir(&common::homelab(), &repo);
    let dir = repo.to_str().unwrap();
    certplane_root(&bao, &["apply", "--auto-approve", dir]).expect(0);
    let human: Run = certplane_root(&bao, &["status", dir]);
    human.expect(0);
    let mermaid = certplane_root(&bao, &["status", "--format", "mermaid", dir]);
    mermaid.expect(0);
    snapshot_settings(&[(&repo, "[REPO]")]).bind(|| {
        insta::assert_snapshot!("status_human", common::snapshot::run_text(&human));
        insta::assert_snapshot!("status_mermaid", mermaid.stdout);
    });
}
