//! Privilege guardrails, opted in: every privileged `Policy` of
//! `tests/bad/policy_*` (refused there without the annotation, see
//! `bad_input.rs`) validates once it carries
//! `certplane.dev/privileged: "true"`, and its plan marks it `(privileged)`
//! in the human, Markdown and JSON output. Any other annotation value keeps
//! it refused.

use std::path::{Path, PathBuf};

use certplane::plan::render;
use certplane::state::Observed;

const CASES: &[&str] = &[
    "policy_named_default",
    "policy_sudo",
    "policy_everything",
    "policy_sys_wildcard",
    "policy_auth_wildcard",
    "policy_hcl_sys_sudo",
];

fn case(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bad")
        .join(name)
        .join("policy.yaml");
    std::fs::read_to_string(p).unwrap()
}

/// The case's policy with `annotations` added to its metadata.
fn annotated(text: &str, value: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with("metadata: {name: "))
        .expect("a flow metadata line");
    let name = line
        .trim_start_matches("metadata: {name: ")
        .trim_end_matches('}');
    text.replace(
        line,
        &format!(
            "metadata: {{name: {name}, annotations: {{certplane.dev/privileged: \"{value}\"}}}}"
        ),
    )
}

fn problems(dir: &Path) -> Vec<String> {
    match certplane::pipeline::prepare_for(dir, &certplane::operator::Operator::default()) {
        Ok(_) => Vec::new(),
        Err(d) => d.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn privileged_policies_validate_only_when_they_opt_in() {
    for name in CASES {
        let text = case(name);
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("policy.yaml"), annotated(&text, "true")).unwrap();
        assert_eq!(problems(d.path()), Vec::<String>::new(), "{name} opted in");
        std::fs::write(d.path().join("policy.yaml"), annotated(&text, "yes")).unwrap();
        let refused = problems(d.path());
        assert!(
            refused.iter().any(|p| p.contains("is privileged")),
            "{name} with another value: {refused:?}"
        );
    }
}

#[test]
fn the_plan_marks_an_opted_in_policy_in_every_output() {
    for name in CASES {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("policy.yaml"), annotated(&case(name), "true")).unwrap();
        let prepared =
            certplane::pipeline::prepare_for(d.path(), &certplane::operator::Operator::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        let plan = certplane::plan::plan(&prepared.desired, &Observed::default());
        let human = render::human(&plan, render::Style::default());
        assert!(human.contains("! (privileged) "), "{name}:\n{human}");
        let md = certplane::plan::markdown::markdown(&plan);
        assert!(md.contains("**(privileged)**"), "{name}:\n{md}");
        let json = render::json(&plan);
        assert_eq!(json["changes"][0]["privileged"], true, "{name}: {json}");
    }
    // An ordinary policy is not marked.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("policy.yaml"),
        "apiVersion: certplane.dev/v1alpha1\nkind: Policy\nmetadata: {name: web}\nspec:\n  rules:\n    - path: pki/sign/web\n      capabilities: [update]\n",
    )
    .unwrap();
    let prepared =
        certplane::pipeline::prepare_for(d.path(), &certplane::operator::Operator::default())
            .unwrap();
    let plan = certplane::plan::plan(&prepared.desired, &Observed::default());
    assert!(!render::human(&plan, render::Style::default()).contains("privileged"));
    assert!(
        render::json(&plan)["changes"][0]
            .get("privileged")
            .is_none()
    );
}
