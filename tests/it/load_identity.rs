//! The repository identity (`metadata.name` of the `Config`, or derived from
//! the directory or the Git URL) and the render directory, which is never
//! loaded back as repository input.

use certplane::cluster::render;
use certplane::load::{LoadOptions, load, load_with};
use certplane::pipeline::{self, PrepareOptions};
use certplane::plan::Action;

use crate::common::write;

const ISSUER: &str = "apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: selfsigned, namespace: sandbox}
spec: {selfSigned: {}}
";

#[test]
fn the_identity_is_the_config_name_else_derived() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("Home_Lab");
    write(&dir, "cluster.yaml", ISSUER);
    assert_eq!(
        load(&dir).unwrap().identity,
        "home-lab",
        "the directory's name"
    );
    let from_git = LoadOptions {
        identity: Some("pki-clusters-prod".into()),
        ..LoadOptions::default()
    };
    assert_eq!(
        load_with(&dir, &from_git).unwrap().identity,
        "pki-clusters-prod"
    );
    write(
        &dir,
        "certplane.yaml",
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nmetadata: {name: pki-homelab}\nspec: {}\n",
    );
    assert_eq!(load(&dir).unwrap().identity, "pki-homelab");
    assert_eq!(
        load_with(&dir, &from_git).unwrap().identity,
        "pki-homelab",
        "the Config's name wins over a derived one"
    );
    // A Config without a name: derived again.
    write(
        &dir,
        "certplane.yaml",
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec: {prune: true}\n",
    );
    assert_eq!(load(&dir).unwrap().identity, "home-lab");
}

#[test]
fn a_config_name_that_is_not_a_label_is_an_error_at_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, why) in [
        ("Upper", "lowercase letters, digits and '-'"),
        ("-dash", "start and end with a letter or digit"),
        (&"x".repeat(64) as &str, "longer than 63"),
    ] {
        write(
            tmp.path(),
            "certplane.yaml",
            &format!(
                "apiVersion: certplane.dev/v1alpha1\nkind: Config\nmetadata:\n  name: \"{name}\"\nspec: {{}}\n"
            ),
        );
        let err = load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("certplane.yaml:4:"), "{err}");
        assert!(err.contains("is not a DNS-1123 label"), "{err}");
        assert!(err.contains(why), "{why}: {err}");
        assert!(err.contains("hint:"), "{err}");
    }
}

/// Regression: render output inside the repository (`render: rendered`, as
/// in examples/ci) made every later `validate` fail with duplicates.
#[test]
fn regression_rendered_output_inside_the_repository_is_not_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    write(
        &dir,
        "certplane.yaml",
        "apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec:\n  cluster: {render: rendered}\n",
    );
    write(&dir, "cluster.yaml", ISSUER);
    // Something in the render directory that certplane did not write (a
    // kustomization for Flux) is not input either.
    write(
        &dir,
        "rendered/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n",
    );
    let prepared = pipeline::prepare(&dir).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(prepared.repo.manifests.len(), 1);
    let out = dir.join("rendered");
    let plan = render::plan_render(&out, &prepared.repo.manifests, &prepared.repo.identity);
    assert_eq!(plan.changes[0].action, Action::Create);
    render::apply_render(&out, &plan.changes, &prepared.repo.identity, &mut |_, _| {}).unwrap();
    assert!(
        out.join("sandbox/issuer.cert-manager.io-selfsigned.yaml")
            .is_file()
    );

    let again = pipeline::prepare(&dir).unwrap_or_else(|d| panic!("validate after render: {d}"));
    assert_eq!(again.repo.manifests.len(), 1);

    // Rendered with --render into the repository (no config): a later
    // validate does not know the flag, and still skips what certplane wrote.
    let tmp2 = tempfile::tempdir().unwrap();
    let plain = tmp2.path().join("plain");
    write(&plain, "cluster.yaml", ISSUER);
    let flagged = plain.join("out");
    let p = pipeline::prepare_with(
        &plain,
        PrepareOptions {
            render: Some(&flagged),
            ..PrepareOptions::default()
        },
    )
    .unwrap();
    let plan = render::plan_render(&flagged, &p.repo.manifests, &p.repo.identity);
    render::apply_render(&flagged, &plan.changes, &p.repo.identity, &mut |_, _| {}).unwrap();
    write(
        &flagged,
        "notes.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine, namespace: sandbox}\n",
    );
    // With the flag, the whole directory is left out...
    let with_flag = pipeline::prepare_with(
        &plain,
        PrepareOptions {
            render: Some(&flagged),
            ..PrepareOptions::default()
        },
    )
    .unwrap();
    assert_eq!(with_flag.repo.manifests.len(), 1);
    // ...without it, only what certplane rendered is.
    let without = pipeline::prepare(&plain).unwrap_or_else(|d| panic!("{d}"));
    let kinds: Vec<&str> = without
        .repo
        .manifests
        .iter()
        .map(|m| m.spec["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Issuer", "ConfigMap"]);
}
