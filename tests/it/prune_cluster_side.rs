//! When a repository without cluster objects talks to a cluster: only with
//! `prune: true` (its inventory may list objects an earlier version of it
//! applied). The cluster `spec.cluster` names must answer; one the
//! environment merely names may not (a warning, and nothing pruned there
//! this time); with no cluster configured at all the repository never had
//! one, and nothing is demanded of it.

use crate::common;

use std::path::Path;

use common::{OpenBao, Run};

/// `certplane plan <dir>` against `bao`, with `kubeconfig` if any (and no
/// in-cluster settings).
fn plan(bao: &OpenBao, dir: &Path, home: &Path, kubeconfig: Option<&Path>) -> Run {
    let mut cmd = common::command(home);
    cmd.args(["plan", dir.to_str().unwrap()])
        .env("VAULT_ADDR", bao.addr())
        .env("VAULT_TOKEN", bao.token());
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    Run::of(&mut cmd)
}

fn repo(dir: &Path, config_spec: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("certplane.yaml"),
        format!("apiVersion: certplane.dev/v1alpha1\nkind: Config\nspec: {config_spec}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("vault.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: Policy\nmetadata: {name: p}\nspec: {rules: [{path: pki/sign/web, capabilities: [update]}]}\n",
    )
    .unwrap();
}

#[test]
fn a_repository_without_cluster_objects_asks_a_cluster_only_when_it_may_prune_there() {
    let bao = OpenBao::start();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // A cluster nothing answers for (a loopback port that was free a
    // moment ago).
    let dead = common::kube::loopback_kubeconfig(tmp.path(), "dead", common::free_port());
    let missing = tmp.path().join("no-such-kubeconfig");

    // Prune off: no cluster, whatever the environment says.
    let off = tmp.path().join("off");
    repo(&off, "{prune: false}");
    let r = plan(&bao, &off, &home, Some(&dead));
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("inventory"), "{}", r.stderr);

    // Prune on, no cluster configured anywhere: never had one.
    let on = tmp.path().join("on");
    repo(&on, "{prune: true}");
    let r = plan(&bao, &on, &home, Some(&missing));
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("error"), "{}", r.stderr);

    // Prune on, a cluster only the environment names, unreachable: a
    // warning, and the Vault half is planned as usual.
    let r = plan(&bao, &on, &home, Some(&dead));
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("cannot read the inventory"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("vault:sys/policies/acl/p (create)"),
        "{}",
        r.stdout
    );

    // Prune on and the cluster named in certplane.yaml: it must answer.
    let named = tmp.path().join("named");
    repo(&named, "{prune: true, cluster: {context: dead}}");
    let r = plan(&bao, &named, &home, Some(&dead));
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("error"), "{}", r.stderr);
    let r = plan(&bao, &named, &home, Some(&missing));
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
}
