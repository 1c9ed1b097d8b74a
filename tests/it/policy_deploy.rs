//! `deploy/`: every manifest parses, the ClusterRole grants no wildcard,
//! the Deployment runs as non-root with a read-only root file system and
//! probes, and its arguments are a valid `certplane run` command line that
//! names the Vault and the kubernetes login itself; the image it runs is the
//! one `Containerfile`, `make image` and `flake.nix` build, under one name.
//! (`deploy/vault-policy.hcl` is checked against `certplane policy` in
//! `tests/policy_homelab.rs`.)

use std::path::Path;

use clap::Parser;
use serde_json::Value;

fn deploy() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every document of every YAML file of deploy/.
fn documents() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(deploy())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, doc) in text.split("\n---\n").enumerate() {
            let v: Value = serde_saphyr::from_str(doc)
                .unwrap_or_else(|e| panic!("{} document {i}: {e}", f.display()));
            assert!(v.get("kind").is_some(), "{}: no kind", f.display());
            out.push((f.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out
}

fn of_kind(kind: &str) -> Vec<Value> {
    documents()
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v["kind"] == kind)
        .collect()
}

#[test]
fn every_manifest_parses_and_names_its_namespace() {
    for (file, v) in documents() {
        let kind = v["kind"].as_str().unwrap();
        if matches!(
            kind,
            "ServiceAccount" | "Deployment" | "Role" | "RoleBinding"
        ) {
            assert_eq!(
                v["metadata"]["namespace"], "certplane-system",
                "{file}: {kind}"
            );
        }
    }
    assert_eq!(
        of_kind("Namespace")[0]["metadata"]["name"],
        "certplane-system"
    );
}

#[test]
fn rbac_has_no_wildcards_and_only_managed_kinds() {
    let roles: Vec<Value> = of_kind("ClusterRole")
        .into_iter()
        .chain(of_kind("Role"))
        .collect();
    assert_eq!(roles.len(), 2);
    let allowed = [
        "issuers",
        "clusterissuers",
        "certificates",
        "secrets",
        "serviceaccounts",
        "serviceaccounts/token",
        "roles",
        "rolebindings",
        "configmaps",
        "leases",
        "namespaces",
        // A token reviewer's binding to system:auth-delegator, and what
        // certplane must hold itself to grant it.
        "clusterrolebindings",
        "tokenreviews",
        "subjectaccessreviews",
    ];
    for role in roles {
        for rule in role["rules"].as_array().unwrap() {
            for key in ["verbs", "resources", "apiGroups"] {
                for x in rule[key].as_array().unwrap() {
                    assert_ne!(x, "*", "a wildcard in {key}: {rule}");
                }
            }
            for r in rule["resources"].as_array().unwrap() {
                assert!(allowed.contains(&r.as_str().unwrap()), "{r} in {rule}");
            }
            for v in rule["verbs"].as_array().unwrap() {
                assert!(
                    !matches!(v.as_str().unwrap(), "escalate" | "bind" | "impersonate"),
                    "{v} in {rule}"
                );
            }
            let res: Vec<&str> = rule["resources"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if res.contains(&"configmaps") || res.contains(&"leases") {
                assert_eq!(role["kind"], "Role", "namespaced only: {rule}");
            }
        }
    }
}

#[test]
fn deployment_is_locked_down_and_runs_a_valid_command() {
    let d = &of_kind("Deployment")[0];
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "certplane");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["resources"]["requests"].is_object());
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "run");
    let parsed = certplane::cli::Cli::try_parse_from(std::iter::once("certplane").chain(args));
    assert!(parsed.is_ok(), "{}", parsed.as_ref().unwrap_err());
    // The Vault connection and login are the Deployment's own: kubernetes
    // auth with the pod's service account token, nothing from the repository.
    let none = |_: &str| None;
    let env = certplane::vault::connect::Env {
        var: &none,
        home: None,
    };
    let op = parsed.unwrap().operator.operator(true, &env).unwrap();
    assert_eq!(
        op.vault.address.as_ref().map(|a| a.value.as_str()),
        Some("https://vault.vault.svc:8200")
    );
    assert_eq!(
        op.vault.auth.map(|a| a.value),
        Some(certplane::vault::AuthSettings::Kubernetes {
            mount: "kubernetes".into(),
            role: "certplane".into(),
            jwt: certplane::model::Source::File(certplane::vault::connect::POD_TOKEN_FILE.into()),
        })
    );
}

// ---------------------------------------------------------------------------
// The image deploy/ runs is the one this repository builds: Containerfile
// (`make image`) and flake.nix's `image` (`make image-nix`). No container
// engine or Nix build runs here, so the Containerfile is parsed and checked
// step by step against the repository, and the flake is checked as text (and
// evaluated by `make test-nix` where `nix` is installed).

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A value of Cargo.toml: `key = "value"` in `[section]`.
fn cargo_value(section: &str, key: &str) -> Option<String> {
    let mut current = String::new();
    for line in read("Cargo.toml").lines() {
        let line = line.trim();
        if line.starts_with('[') {
            current = line.trim_matches(['[', ']']).to_string();
            continue;
        }
        if current == section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// The binaries `cargo build --release` makes: the `[[bin]]` names, else
/// the package's name.
fn binaries() -> Vec<String> {
    let text = read("Cargo.toml");
    let mut bins = Vec::new();
    let mut in_bin = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == "name"
        {
            bins.push(v.trim().trim_matches('"').to_string());
        }
    }
    if bins.is_empty() {
        bins.push(cargo_value("package", "name").unwrap());
    }
    bins
}

/// `<[package.metadata.image] name>:<version>`: the one image reference.
fn image_ref() -> String {
    let name =
        cargo_value("package.metadata.image", "name").expect("[package.metadata.image] name");
    let version = cargo_value("package", "version").unwrap();
    format!("{name}:{version}")
}

/// One instruction of a Containerfile: line, keyword, `--flags`, the rest
/// (continuation lines joined).
#[derive(Debug, Clone)]
struct Instruction {
    line: usize,
    keyword: String,
    flags: Vec<String>,
    args: String,
}

#[derive(Debug)]
struct Stage {
    base: String,
    name: Option<String>,
    steps: Vec<Instruction>,
}

impl Stage {
    fn all(&self, keyword: &str) -> Vec<&Instruction> {
        self.steps.iter().filter(|i| i.keyword == keyword).collect()
    }

    fn last(&self, keyword: &str) -> &Instruction {
        self.all(keyword)
            .pop()
            .unwrap_or_else(|| panic!("stage {:?} has no {keyword}", self.name))
    }

    /// The `KEY=VALUE` pairs of every `keyword` (ARG, ENV, LABEL) of the stage.
    fn pairs(&self, keyword: &str) -> Vec<(String, Option<String>)> {
        self.all(keyword)
            .into_iter()
            .flat_map(|i| key_values(&i.args))
            .collect()
    }

    fn flag(i: &Instruction, name: &str) -> Option<String> {
        i.flags
            .iter()
            .find_map(|f| f.strip_prefix(&format!("--{name}=")).map(str::to_string))
    }
}

const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parses a Containerfile into its global ARGs and its stages, as
/// docker/buildah do: `#` comment lines (also inside continuations), `\`
/// continuations, a keyword per instruction, leading `--flags`. Anything it
/// does not know is a panic naming the line.
fn parse_containerfile(text: &str) -> (Vec<Instruction>, Vec<Stage>) {
    let mut instructions = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || (line.is_empty() && pending.is_none()) {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((n + 1, String::new()));
        let (body, continues) = match line.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (line, false),
        };
        joined.push_str(body.trim());
        joined.push(' ');
        if continues {
            pending = Some((start, joined));
            continue;
        }
        let joined = joined.trim().to_string();
        let (keyword, rest) = joined.split_once(' ').unwrap_or((joined.as_str(), ""));
        let keyword = keyword.to_ascii_uppercase();
        assert!(
            INSTRUCTIONS.contains(&keyword.as_str()),
            "Containerfile:{start}: unknown instruction {keyword}"
        );
        let mut flags = Vec::new();
        let mut rest = rest.trim();
        while rest.starts_with("--") {
            let (flag, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            flags.push(flag.to_string());
            rest = tail.trim_start();
        }
        assert!(
            !rest.is_empty(),
            "Containerfile:{start}: {keyword} without arguments"
        );
        instructions.push(Instruction {
            line: start,
            keyword,
            flags,
            args: rest.to_string(),
        });
    }
    assert!(
        pending.is_none(),
        "Containerfile ends inside a continuation"
    );
    let mut globals = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for i in instructions {
        if i.keyword == "FROM" {
            let words: Vec<&str> = i.args.split_whitespace().collect();
            let name = match words.as_slice() {
                [_] => None,
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => panic!("Containerfile:{}: FROM {}", i.line, i.args),
            };
            stages.push(Stage {
                base: words[0].to_string(),
                name,
                steps: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.steps.push(i);
        } else {
            assert_eq!(
                i.keyword, "ARG",
                "Containerfile:{}: only ARG may come before the first FROM",
                i.line
            );
            globals.push(i);
        }
    }
    (globals, stages)
}

/// `KEY=VALUE KEY2="a b"` (ARG, ENV, LABEL) as pairs; a bare ARG name has
/// no default.
fn key_values(args: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut chars = args.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return out;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            out.push((key, None));
            continue;
        }
        chars.next();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            for c in chars.by_ref() {
                if c == '"' {
                    break;
                }
                value.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, Some(value)));
    }
}

/// The value of `key` among `pairs`.
fn lookup(pairs: &[(String, Option<String>)], key: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.clone())
}

/// The variables `${NAME}`/`$NAME` a string refers to.
fn variables(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let name: String = rest
            .trim_start_matches('{')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

/// The declared ARGs (name, default) of a list of instructions.
fn args_of<'a>(steps: impl IntoIterator<Item = &'a Instruction>) -> Vec<(String, Option<String>)> {
    steps
        .into_iter()
        .filter(|i| i.keyword == "ARG")
        .flat_map(|i| key_values(&i.args))
        .collect()
}

/// deploy/'s container: its image, user, group and HOME.
fn deployed() -> (String, u64, u64, Value) {
    let d = &of_kind("Deployment")[0];
    let pod = &d["spec"]["template"]["spec"];
    let c = pod["containers"][0].clone();
    (
        c["image"].as_str().unwrap().to_string(),
        pod["securityContext"]["runAsUser"].as_u64().unwrap(),
        pod["securityContext"]["runAsGroup"].as_u64().unwrap(),
        c,
    )
}

fn env_of(container: &Value, name: &str) -> Option<String> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .map(str::to_string)
}

fn version_tuple(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap()).collect()
}

#[test]
fn deploy_runs_the_image_this_repository_builds_under_one_name() {
    let (image, _, _, _) = deployed();
    assert_eq!(image, image_ref(), "deploy/deployment.yaml");
    assert!(!image.ends_with(":latest"), "{image}");
    // `make image` tags exactly that (make only prints the command here).
    let out = std::process::Command::new("make")
        .args(["-s", "-n", "image", "image-push", "CONTAINER=docker"])
        .current_dir(root())
        .output()
        .unwrap();
    let made = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{made}");
    let version = cargo_value("package", "version").unwrap();
    let rust = cargo_value("package", "rust-version").unwrap();
    assert!(
        made.contains(&format!(
            "docker build -f Containerfile --build-arg RUST_VERSION={rust} --build-arg VERSION={version} "
        )),
        "{made}"
    );
    assert!(made.contains(&format!(" -t {image} .\n")), "{made}");
    assert!(made.contains(&format!("docker push {image}\n")), "{made}");
    // The flake names it from the same place.
    let flake = read("flake.nix");
    assert!(
        flake.contains("name = cargoToml.package.metadata.image.name;")
            && flake.contains("tag = cargoToml.package.version;"),
        "flake.nix"
    );
    // And the README says how to build and push it.
    let readme = read("README.md");
    for says in [
        image.as_str(),
        "make image",
        "make image-push",
        "nix build .#image",
    ] {
        assert!(readme.contains(says), "README.md does not mention {says}");
    }
}

#[test]
fn the_containerfile_has_valid_stages_built_from_the_repository() {
    let text = read("Containerfile");
    let (globals, stages) = parse_containerfile(&text);
    assert!(stages.len() >= 2, "a multi-stage build: {stages:?}");
    let global_args = args_of(&globals);

    // FROM refers to declared global ARGs only; stage names are unique.
    let mut names = Vec::new();
    for s in &stages {
        for v in variables(&s.base) {
            assert!(
                global_args.iter().any(|(k, _)| *k == v),
                "FROM {}: ${v} is not a global ARG",
                s.base
            );
        }
        if let Some(n) = &s.name {
            assert!(!names.contains(n), "stage {n} twice");
            names.push(n.clone());
        }
    }
    // Within a stage, a variable in LABEL/ENV/WORKDIR/COPY/USER is an ARG
    // or ENV declared before it in that stage.
    for s in &stages {
        let mut known: Vec<String> = Vec::new();
        for i in &s.steps {
            if matches!(
                i.keyword.as_str(),
                "LABEL" | "ENV" | "WORKDIR" | "COPY" | "USER"
            ) {
                for v in variables(&i.args) {
                    assert!(
                        known.contains(&v),
                        "Containerfile:{}: ${v} is not declared in stage {:?}",
                        i.line,
                        s.name
                    );
                }
            }
            if matches!(i.keyword.as_str(), "ARG" | "ENV") {
                known.extend(key_values(&i.args).into_iter().map(|(k, _)| k));
            }
        }
    }

    // The toolchain: Cargo.toml's rust-version or newer.
    let rust = cargo_value("package", "rust-version").unwrap();
    let pinned = lookup(&global_args, "RUST_VERSION").expect("ARG RUST_VERSION=<version>");
    assert!(
        version_tuple(&pinned) >= version_tuple(&rust),
        "RUST_VERSION {pinned} is older than rust-version {rust}"
    );
    let build = &stages[0];
    assert!(
        build.base.contains("rust:${RUST_VERSION}"),
        "{}",
        build.base
    );

    // Every COPY from the build context exists in the repository and is not
    // excluded by .dockerignore (an allow-list: `*`, then `!path`).
    let ignore = read(".dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(patterns.first(), Some(&"*"), ".dockerignore: {patterns:?}");
    for s in &stages {
        for i in s.all("COPY") {
            if Stage::flag(i, "from").is_some() {
                continue;
            }
            let words: Vec<&str> = i.args.split_whitespace().collect();
            assert!(
                words.len() >= 2,
                "Containerfile:{}: COPY {}",
                i.line,
                i.args
            );
            for src in &words[..words.len() - 1] {
                assert!(
                    root().join(src).exists(),
                    "Containerfile:{}: COPY {src}: not in the repository",
                    i.line
                );
                let allowed = format!("!{}", src.trim_end_matches('/'));
                assert!(
                    patterns.iter().any(|p| p.trim_end_matches('/') == allowed),
                    "Containerfile:{}: {src} is excluded by .dockerignore",
                    i.line
                );
            }
        }
    }
    // Everything the build needs is copied: the manifest, the lock file,
    // the build script, the sources.
    let copied: String = build
        .all("COPY")
        .iter()
        .map(|i| i.args.clone() + " ")
        .collect();
    for needed in ["Cargo.toml", "Cargo.lock", "build.rs", "src"] {
        assert!(
            copied.contains(needed),
            "the build stage does not copy {needed}"
        );
    }

    // The build: locked, release, the binary Cargo.toml names.
    let bins = binaries();
    assert_eq!(bins, ["certplane"]);
    let bin = &bins[0];
    let run = build.last("RUN");
    for needed in [
        "cargo build",
        "--locked",
        "--release",
        &format!("--bin {bin}"),
    ] {
        assert!(
            run.args.contains(needed),
            "Containerfile:{}: no {needed}",
            run.line
        );
    }
    let built = format!("target/release/{bin}");
    let (_, out) = run
        .args
        .split_once(&built)
        .unwrap_or_else(|| panic!("Containerfile:{}: {built} is not installed", run.line));
    let out = out.split_whitespace().next().unwrap().to_string();

    // The runtime stage copies that binary from the build stage and runs it.
    let runtime = stages.last().unwrap();
    let copy = runtime
        .all("COPY")
        .into_iter()
        .find(|i| Stage::flag(i, "from").as_deref() == build.name.as_deref())
        .expect("COPY --from=<build stage>");
    let words: Vec<&str> = copy.args.split_whitespace().collect();
    assert_eq!(words, [out.as_str(), &format!("/usr/local/bin/{bin}")]);
    let entrypoint: Vec<String> = serde_json::from_str(&runtime.last("ENTRYPOINT").args).unwrap();
    assert_eq!(entrypoint, [format!("/usr/local/bin/{bin}")]);

    // git and ssh-keygen (what `run` calls), and CA certificates.
    let installs: String = runtime.all("RUN").iter().map(|i| i.args.clone()).collect();
    assert!(installs.contains("apt-get install"), "{installs}");
    for package in ["git", "openssh-client", "ca-certificates"] {
        assert!(
            installs.split_whitespace().any(|w| w == package),
            "the runtime stage does not install {package}"
        );
    }
    assert!(
        installs.contains("rm -rf /var/lib/apt/lists/*"),
        "{installs}"
    );

    // Non-root, numeric, as deploy/ runs it, with a passwd entry (ssh and
    // ssh-keygen look the user up) and a writable HOME for the Git cache.
    let (_, uid, gid, container) = deployed();
    assert_ne!(uid, 0);
    assert_eq!(runtime.last("USER").args, format!("{uid}:{gid}"));
    assert!(
        installs.contains(&format!("useradd --uid {uid} --gid {gid}")),
        "{installs}"
    );
    let home = lookup(&runtime.pairs("ENV"), "HOME").expect("ENV HOME");
    assert_eq!(Some(home.clone()), env_of(&container, "HOME"));
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    assert!(mounts.contains(&home.as_str()), "{mounts:?}");
    assert!(
        installs.contains(&format!("install -d -o {uid} -g {gid} -m 0750 {home}")),
        "{installs}"
    );

    // OCI labels, their version Cargo.toml's.
    let labels = runtime.pairs("LABEL");
    let label = |k: &str| {
        lookup(&labels, &format!("org.opencontainers.image.{k}"))
            .unwrap_or_else(|| panic!("no label org.opencontainers.image.{k}"))
    };
    assert_eq!(label("title"), "certplane");
    assert_eq!(Some(label("licenses")), cargo_value("package", "license"));
    assert_eq!(label("version"), "${VERSION}");
    assert_eq!(
        lookup(&runtime.pairs("ARG"), "VERSION"),
        cargo_value("package", "version")
    );
}

#[test]
fn the_containerfile_parser_rejects_what_a_builder_would() {
    let bad = |text: &str| std::panic::catch_unwind(|| parse_containerfile(text)).is_err();
    assert!(bad("FROM a AS b\nRUNN x\n"));
    assert!(bad("WORKDIR /x\nFROM a\n"));
    assert!(bad("FROM a\nRUN x \\\n"));
    assert!(bad("FROM a AS\n"));
    let (globals, stages) = parse_containerfile(
        "ARG V=1\nFROM a:${V} AS one\n# c\nRUN --mount=type=cache,target=/t \\\n  # inside\n  echo \\\n  hi\nFROM b\nCOPY --from=one /x /y\n",
    );
    assert_eq!(
        args_of(&globals),
        [("V".to_string(), Some("1".to_string()))]
    );
    assert_eq!(stages[0].name.as_deref(), Some("one"));
    assert_eq!(stages[0].steps[0].flags, ["--mount=type=cache,target=/t"]);
    assert_eq!(stages[0].steps[0].args, "echo hi");
    assert_eq!(
        Stage::flag(&stages[1].steps[0], "from").as_deref(),
        Some("one")
    );
    assert_eq!(
        key_values(r#"a=1 b="x y" c"#),
        [
            ("a".to_string(), Some("1".to_string())),
            ("b".to_string(), Some("x y".to_string())),
            ("c".to_string(), None)
        ]
    );
}

#[test]
fn the_flake_builds_the_same_image() {
    let flake = read("flake.nix");
    let at = flake
        .find("image = pkgs.dockerTools.buildLayeredImage {")
        .expect("flake.nix: image = pkgs.dockerTools.buildLayeredImage { ... }");
    let block = &flake[at..];
    let block = &block[..block.find("\n        };\n").expect("the end of the image")];
    let (_, uid, gid, container) = deployed();
    let home = env_of(&container, "HOME").unwrap();
    for needed in [
        "certplane".to_string(),
        "pkgs.git".into(),
        "pkgs.openssh".into(),
        "pkgs.cacert".into(),
        format!("User = \"{uid}:{gid}\";"),
        format!("\"HOME={home}\""),
        format!("certplane:x:{uid}:{gid}:certplane:{home}:"),
        format!("chown {uid}:{gid} .{home}"),
        "Entrypoint = [ \"${certplane}/bin/certplane\" ];".into(),
    ] {
        assert!(block.contains(&needed), "flake.nix image lacks {needed}");
    }
    assert!(
        flake.contains("inherit image;"),
        "flake.nix: packages.image"
    );
}

/// Evaluates flake.nix with `nix eval` (no build, no network): stand-ins
/// with the real attribute and argument names replace nixpkgs and
/// flake-utils, whose sources cannot be fetched here; an attribute the
/// flake uses that they do not have, or an argument `buildLayeredImage`
/// does not take, is an error. `make test-nix`.
#[test]
#[ignore = "needs nix (Debian: apt-get install nix-bin): make test-nix"]
fn the_flake_evaluates_to_the_image_deploy_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let write = |path: &str, text: &str| {
        let p = t.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    for f in ["flake.nix", "Cargo.toml", "Cargo.lock"] {
        write(&format!("src/{f}"), &read(f));
    }
    write("nixpkgs/flake.nix", "{ outputs = _: { }; }\n");
    write("nixpkgs/default.nix", NIXPKGS_STAND_IN);
    write("flake-utils/flake.nix", FLAKE_UTILS_STAND_IN);
    write("registry.json", r#"{"flakes":[],"version":2}"#);
    let eval = |attr: &str, apply: Option<&str>| -> Value {
        let mut cmd = std::process::Command::new("nix");
        cmd.env("HOME", t)
            .env(
                "NIX_CONFIG",
                format!(
                    "experimental-features = nix-command flakes\nflake-registry = {}\n",
                    t.join("registry.json").display()
                ),
            )
            .args(["eval", "--json", "--no-write-lock-file", "--store"])
            .arg(t.join("store"))
            .arg("--override-input")
            .arg("nixpkgs")
            .arg(format!("path:{}", t.join("nixpkgs").display()))
            .arg("--override-input")
            .arg("flake-utils")
            .arg(format!("path:{}", t.join("flake-utils").display()))
            .arg(format!("path:{}#{attr}", t.join("src").display()));
        if let Some(f) = apply {
            cmd.args(["--apply", f]);
        }
        let out = cmd.output().expect("run nix");
        assert!(
            out.status.success(),
            "nix eval {attr}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (image, uid, gid, container) = deployed();
    let home = env_of(&container, "HOME").unwrap();
    let version = cargo_value("package", "version").unwrap();

    let got = eval("packages.x86_64-linux.image", None);
    assert_eq!(
        format!(
            "{}:{}",
            got["name"].as_str().unwrap(),
            got["tag"].as_str().unwrap()
        ),
        image
    );
    assert_eq!(got["config"]["User"], format!("{uid}:{gid}"));
    assert_eq!(
        got["config"]["Entrypoint"][0],
        format!("/nix/store/stub-certplane-{version}/bin/certplane")
    );
    let env: Vec<&str> = got["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(env.contains(&format!("HOME={home}").as_str()), "{env:?}");
    assert_eq!(
        got["config"]["Labels"]["org.opencontainers.image.version"],
        version
    );
    let contents: Vec<&str> = got["contents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for needed in [
        format!("certplane-{version}").as_str(),
        "git",
        "openssh",
        "cacert",
    ] {
        assert!(contents.contains(&needed), "{needed} not in {contents:?}");
    }
    let nss = got["contents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["extraPasswdLines"].is_array())
        .expect("a passwd entry for the image's user");
    assert!(
        nss["extraPasswdLines"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("certplane:x:{uid}:{gid}:")),
        "{nss}"
    );

    // Packages per system: the image only on Linux; the app runs certplane.
    let packages = eval(
        "packages",
        Some("ps: builtins.mapAttrs (s: p: builtins.attrNames p) ps"),
    );
    assert_eq!(
        packages["x86_64-linux"],
        serde_json::json!(["certplane", "default", "image"])
    );
    assert_eq!(
        packages["aarch64-darwin"],
        serde_json::json!(["certplane", "default"])
    );
    let app = eval("apps.x86_64-linux.default.program", None);
    assert_eq!(
        app,
        format!("/nix/store/stub-certplane-{version}/bin/certplane")
    );
    let shell = eval("devShells.x86_64-linux.default.name", None);
    assert_eq!(shell, "shell");
}

/// nixpkgs, as far as flake.nix uses it: the real attribute names, and the
/// real argument names of `dockerTools.buildLayeredImage` and
/// `fakeNss.override` (no `...`: an unknown argument fails the evaluation).
const NIXPKGS_STAND_IN: &str = r#"{ system }:
let
  pkg = name: { type = "derivation"; inherit name; outPath = "/nix/store/stub-${name}"; };
in
{
  lib = {
    cleanSource = src: src;
    licenses.asl20 = { spdxId = "Apache-2.0"; };
    optionalAttrs = cond: set: if cond then set else { };
  };
  stdenv.isLinux = builtins.match ".*-linux" system != null;
  rustPlatform.buildRustPackage = args:
    pkg "${args.pname}-${args.version}" // { inherit (args) pname version meta; };
  dockerTools.buildLayeredImage =
    { name, tag ? null, contents ? [ ], config ? { }, fakeRootCommands ? "", extraCommands ? ""
    , enableFakechroot ? false, maxLayers ? 100, created ? "1970-01-01T00:00:01Z"
    , architecture ? null, fromImage ? null, includeStorePaths ? true, passthru ? { } }:
    {
      inherit name tag config fakeRootCommands extraCommands created;
      contents = map (c: builtins.removeAttrs c [ "type" "outPath" ]) contents;
    };
  fakeNss = pkg "fake-nss" // {
    override = { extraPasswdLines ? [ ], extraGroupLines ? [ ] }:
      pkg "fake-nss-extra" // { inherit extraPasswdLines extraGroupLines; };
  };
  mkShell = args: pkg "shell";
} // builtins.listToAttrs (map (n: { name = n; value = pkg n; }) [
  "pkg-config" "cmake" "perl" "openbao" "git" "openssh" "cacert" "cargo" "rustc"
  "rustfmt" "clippy" "rust-analyzer" "kubectl" "gnumake"
])
"#;

/// flake-utils' `eachDefaultSystem` and `mkApp`, as the real ones behave.
const FLAKE_UTILS_STAND_IN: &str = r#"{
  outputs = _: {
    lib = {
      eachDefaultSystem = f:
        builtins.foldl'
          (acc: system:
            let out = f system; in
            acc // builtins.mapAttrs (k: v: (acc.${k} or { }) // { ${system} = v; }) out)
          { } [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      mkApp = { drv, name ? drv.pname or drv.name, exePath ? "/bin/${name}" }:
        { type = "app"; program = "${drv}${exePath}"; };
    };
  };
}
"#;
