//! The outputs of `status`, all from one [`Status`]: an indented tree for
//! people (coloured on a terminal), a versioned JSON document, and a
//! picture as Mermaid (`graph TD`) or Graphviz (`digraph`). None decides
//! anything; none prints a secret (there is none in a [`Status`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::tree::{
    Alert, ClusterIssuerNode, DeclaredSigner, Health, IssuerNode, MountNode, Parent, Status,
};
use crate::model::Duration;
use crate::plan::render::Style;
use crate::vault::lock::rfc3339;

/// The version of the JSON document (`{"version": 1, ...}`).
pub const JSON_VERSION: u64 = 1;

/// A span of seconds in days and hours (hours and minutes under a day):
/// `1825d 3h`, `5h 12m`, `42m`.
pub fn span(secs: i64) -> String {
    let s = secs.unsigned_abs();
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m")
    }
}

/// `3650d 0h left`, or `expired 2d 4h ago`.
pub fn time_left(secs: i64) -> String {
    if secs > 0 {
        format!("{} left", span(secs))
    } else {
        format!("expired {} ago", span(secs))
    }
}

/// The date part of an RFC 3339 time (`2036-11-29`).
fn date(unix: i64) -> String {
    let t = rfc3339(unix);
    t.split('T').next().unwrap_or(&t).to_string()
}

fn colour(h: Health) -> &'static str {
    match h {
        Health::Ok => "32",
        Health::Rotate => "33",
        Health::Expired => "31",
        Health::Retired => "2",
    }
}

fn mount_summary(m: &MountNode) -> String {
    let mut s = m.ca.describe().to_string();
    match &m.signed_by {
        Some(DeclaredSigner::Mount(p)) => write!(s, " signed by {p}").unwrap_or(()),
        Some(DeclaredSigner::External) => s.push_str(" signed outside Vault"),
        Some(DeclaredSigner::Manual) => s.push_str(" signed by hand"),
        None => {}
    }
    if let Some(b) = m.rotate_before {
        write!(s, ", rotateBefore {}", Duration::from_secs(b)).unwrap_or(());
    }
    s
}

fn parent_text(p: &Parent) -> String {
    match p {
        Parent::SelfSigned => "self-signed".into(),
        Parent::Issuer { mount, id, name } => {
            format!(
                "signed by {mount}/{}",
                if name.is_empty() { id } else { name }
            )
        }
        Parent::Declared { mount, issued_by } => {
            format!("signed by {mount} (declared; its issuer {issued_by:?} is not live there)")
        }
        Parent::Outside { issued_by } => format!("signed by {issued_by:?} outside Vault"),
    }
}

/// The tags of an issuer: default, retired, twins.
fn tags(i: &IssuerNode, m: &MountNode) -> Vec<String> {
    let mut t = Vec::new();
    if i.default {
        t.push("default".to_string());
    }
    if i.retired {
        t.push("retired".to_string());
    }
    for twin in &i.twins {
        let label = m
            .issuers
            .iter()
            .find(|o| o.id == *twin)
            .map_or(twin.as_str(), |o| o.label());
        t.push(format!("cross-signed twin of {label}"));
    }
    t
}

/// One node of the human tree: its lines and its children.
struct Node {
    lines: Vec<String>,
    children: Vec<Node>,
}

fn certificate_nodes(ci: &ClusterIssuerNode) -> Vec<Node> {
    ci.certificates
        .iter()
        .map(|c| {
            let mut line = format!("Certificate {}/{}", c.namespace, c.name);
            if let Some(s) = &c.subject {
                write!(line, "  {s}").unwrap_or(());
            }
            if let Some(d) = &c.duration {
                write!(line, "  duration {d}").unwrap_or(());
            }
            write!(line, "  -> Secret {}  ({})", c.secret_name, c.source).unwrap_or(());
            Node {
                lines: vec![line],
                children: Vec::new(),
            }
        })
        .collect()
}

fn cluster_issuer_node(ci: &ClusterIssuerNode, note: Option<&str>) -> Node {
    let mut line = format!("{}  via {}", ci.title(), ci.path);
    if let Some(n) = note {
        write!(line, "  [{n}]").unwrap_or(());
    }
    write!(line, "  ({})", ci.source).unwrap_or(());
    Node {
        lines: vec![line],
        children: certificate_nodes(ci),
    }
}

fn issuer_node(s: &Status, m: &MountNode, i: &IssuerNode, style: Style) -> Node {
    let mut first = format!("{} {:?}", i.label(), i.common_name);
    let tags = tags(i, m);
    if !tags.is_empty() {
        write!(first, "  [{}]", tags.join(", ")).unwrap_or(());
    }
    write!(first, "  {}", parent_text(&i.parent)).unwrap_or(());
    let second = format!(
        "notAfter {}  {}",
        rfc3339(i.not_after),
        style.paint(
            colour(i.health),
            &format!("{}  {}", time_left(i.seconds_left), i.health.as_str())
        )
    );
    let mut children: Vec<Node> = s
        .children(&m.path, &i.id)
        .map(|c| mount_node(s, c, style))
        .collect();
    children.extend(
        i.cluster_issuers
            .iter()
            .map(|c| cluster_issuer_node(c, None)),
    );
    Node {
        lines: vec![first, second],
        children,
    }
}

fn mount_node(s: &Status, m: &MountNode, style: Style) -> Node {
    let mut first = format!("{}  {}", m.path, mount_summary(m));
    if !m.exists {
        first.push_str("  [not in Vault yet: certplane apply makes it]");
    } else if m.issuers.is_empty() {
        first.push_str("  [no CA in Vault yet]");
    }
    let mut children: Vec<Node> = m
        .issuers
        .iter()
        .map(|i| issuer_node(s, m, i, style))
        .collect();
    children.extend(m.pending_keys.iter().map(|k| Node {
        lines: vec![format!(
            "pending key {}  [an interrupted apply left it; the next apply resumes with it]",
            k.name
        )],
        children: Vec::new(),
    }));
    children.extend(
        m.unresolved
            .iter()
            .map(|c| cluster_issuer_node(c, Some("no live issuer to sign with"))),
    );
    Node {
        lines: vec![first],
        children,
    }
}

fn draw(out: &mut String, node: &Node, prefix: &str, connector: &str, child_prefix: &str) {
    let mut lines = node.lines.iter();
    if let Some(l) = lines.next() {
        let _ = writeln!(out, "{prefix}{connector}{l}");
    }
    let bar = if node.children.is_empty() {
        "  "
    } else {
        "│ "
    };
    for l in lines {
        let _ = writeln!(out, "{child_prefix}{bar}{l}");
    }
    let n = node.children.len();
    for (k, c) in node.children.iter().enumerate() {
        let last = k + 1 == n;
        let (conn, more) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        draw(out, c, child_prefix, conn, &format!("{child_prefix}{more}"));
    }
}

/// The human tree: a heading, then each top mount with its issuers, the
/// mounts they signed and the cert-manager objects that depend on them.
pub fn human(s: &Status, style: Style) -> String {
    if s.mounts.is_empty() {
        return format!("{}: the repository declares no PkiMount.\n", s.repository);
    }
    let mut out = format!(
        "PKI of {} in Vault {} at {}\n",
        s.repository,
        s.vault,
        rfc3339(s.now)
    );
    for m in s.top() {
        out.push('\n');
        draw(&mut out, &mount_node(s, m, style), "", "", "");
    }
    out.push('\n');
    if s.alerts.is_empty() {
        out.push_str(&style.paint(
            "32",
            "Every CA in use is valid and outside its rotateBefore window.",
        ));
        out.push('\n');
    } else {
        let n = s.alerts.len();
        let line = format!(
            "{n} CA{} in use need{} attention.",
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" }
        );
        out.push_str(&style.paint("31", &line));
        out.push('\n');
    }
    out
}

/// What an alert says (on stderr): the CA, its window, what to do.
pub fn alert_message(a: &Alert) -> String {
    let who = if a.issuer_name.is_empty() {
        format!("{} issuer {} ({:?})", a.mount, a.issuer_id, a.common_name)
    } else {
        format!("{} issuer {} ({:?})", a.mount, a.issuer_name, a.common_name)
    };
    let what = match a.health {
        Health::Expired => format!(
            "expired at {} ({} ago)",
            rfc3339(a.not_after),
            span(a.seconds_left)
        ),
        _ => format!(
            "is inside its rotateBefore window: {} left until {}, rotateBefore {}",
            span(a.seconds_left),
            rfc3339(a.not_after),
            Duration::from_secs(a.rotate_before.unwrap_or(0))
        ),
    };
    format!(
        "{who} {what}; `certplane plan` shows the rotation, `certplane apply` makes the new issuer"
    )
}

fn issuer_json(i: &IssuerNode) -> Value {
    json!({
        "id": i.id,
        "name": i.name,
        "common_name": i.common_name,
        "key_id": i.key_id,
        "usage": i.usage,
        "default": i.default,
        "retired": i.retired,
        "in_use": i.in_use,
        "twins": i.twins,
        "not_before": rfc3339(i.not_before),
        "not_after": rfc3339(i.not_after),
        "seconds_left": i.seconds_left,
        "health": i.health,
        "parent": i.parent,
        "cluster_issuers": i.cluster_issuers,
    })
}

/// The JSON document, version [`JSON_VERSION`]: the repository, the Vault,
/// the time of the observation, every declared mount (its CA, its signer,
/// `rotate_before_seconds`, whether it exists, its issuers with their
/// parent, dates and health, its pending keys, the cert-manager Issuers and
/// Certificates under each issuer), and the alerts.
pub fn json(s: &Status) -> Value {
    let mounts: Vec<Value> = s
        .mounts
        .iter()
        .map(|m| {
            json!({
                "path": m.path,
                "ca": m.ca,
                "signed_by": m.signed_by,
                "issuer_name": m.issuer_name,
                "rotate_before_seconds": m.rotate_before,
                "exists": m.exists,
                "placed_under": m.placed_under,
                "issuers": m.issuers.iter().map(issuer_json).collect::<Vec<_>>(),
                "pending_keys": m.pending_keys,
                "unresolved_cluster_issuers": m.unresolved,
            })
        })
        .collect();
    let alerts: Vec<Value> = s
        .alerts
        .iter()
        .map(|a| {
            json!({
                "mount": a.mount,
                "issuer_id": a.issuer_id,
                "issuer_name": a.issuer_name,
                "common_name": a.common_name,
                "health": a.health,
                "not_after": rfc3339(a.not_after),
                "seconds_left": a.seconds_left,
                "rotate_before_seconds": a.rotate_before,
                "message": alert_message(a),
            })
        })
        .collect();
    json!({
        "version": JSON_VERSION,
        "repository": s.repository,
        "vault": s.vault,
        "observed_at": rfc3339(s.now),
        "mounts": mounts,
        "alerts": alerts,
    })
}

/// The kind of a node of the picture (its style).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Health(Health),
    Pending,
    Cluster,
    Certificate,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Health(h) => h.as_str(),
            Class::Pending => "pending",
            Class::Cluster => "issuer",
            Class::Certificate => "certificate",
        }
    }

    fn fill(self) -> &'static str {
        match self {
            Class::Health(Health::Ok) => "#d4edda",
            Class::Health(Health::Rotate) => "#fff3cd",
            Class::Health(Health::Expired) => "#f8d7da",
            Class::Health(Health::Retired) | Class::Pending => "#eeeeee",
            Class::Cluster => "#dbe9f6",
            Class::Certificate => "#ffffff",
        }
    }

    fn stroke(self) -> &'static str {
        match self {
            Class::Health(Health::Ok) => "#2e7d32",
            Class::Health(Health::Rotate) => "#b58100",
            Class::Health(Health::Expired) => "#c62828",
            Class::Health(Health::Retired) | Class::Pending => "#9e9e9e",
            Class::Cluster => "#1f5f99",
            Class::Certificate => "#555555",
        }
    }
}

struct GNode {
    id: String,
    label: Vec<String>,
    class: Class,
    /// The mount (subgraph) it belongs to.
    group: Option<usize>,
}

#[derive(PartialEq, Eq)]
enum EdgeStyle {
    Signs,
    Declared,
    Twin,
}

struct GEdge {
    from: String,
    to: String,
    style: EdgeStyle,
}

/// The picture, independent of its syntax.
struct Graph {
    groups: Vec<(String, String)>,
    nodes: Vec<GNode>,
    edges: Vec<GEdge>,
}

/// A node id made of ASCII letters, digits and `_` only, starting with a
/// letter, unique in `used`.
fn node_id(used: &mut BTreeMap<String, u32>, prefix: &str, parts: &[&str]) -> String {
    let mut id = prefix.to_string();
    for p in parts.iter().filter(|p| !p.is_empty()) {
        id.push('_');
        id.extend(
            p.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    let n = used.entry(id.clone()).or_insert(0);
    *n += 1;
    if *n == 1 { id } else { format!("{id}_{n}") }
}

fn graph(s: &Status) -> Graph {
    let mut used = BTreeMap::new();
    let mut g = Graph {
        groups: Vec::new(),
        nodes: Vec::new(),
        edges: Vec::new(),
    };
    let mut issuer_ids: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut group_ids: BTreeMap<String, String> = BTreeMap::new();
    for (k, m) in s.mounts.iter().enumerate() {
        let gid = node_id(&mut used, "mount", &[&m.path]);
        let mut title = format!("{} · {}", m.path, m.ca.describe());
        if !m.exists {
            title.push_str(" (not in Vault yet)");
        }
        g.groups.push((gid.clone(), title));
        group_ids.insert(m.path.clone(), gid);
        for i in &m.issuers {
            let id = node_id(&mut used, "ca", &[&m.path, i.label()]);
            let mut label = vec![i.label().to_string(), i.common_name.clone()];
            let tags = tags(i, m);
            if !tags.is_empty() {
                label.push(tags.join(", "));
            }
            label.push(format!(
                "notAfter {} · {}",
                date(i.not_after),
                time_left(i.seconds_left)
            ));
            g.nodes.push(GNode {
                id: id.clone(),
                label,
                class: Class::Health(i.health),
                group: Some(k),
            });
            issuer_ids.insert((m.path.clone(), i.id.clone()), id);
        }
        for p in &m.pending_keys {
            let id = node_id(&mut used, "key", &[&m.path, &p.name]);
            g.nodes.push(GNode {
                id,
                label: vec!["pending key".into(), p.name.clone()],
                class: Class::Pending,
                group: Some(k),
            });
        }
    }
    let cluster = |g: &mut Graph, used: &mut BTreeMap<String, u32>, ci: &ClusterIssuerNode| {
        let ns = ci.namespace.as_deref().unwrap_or("");
        let id = node_id(used, &ci.kind.to_ascii_lowercase(), &[ns, &ci.name]);
        g.nodes.push(GNode {
            id: id.clone(),
            label: vec![ci.title(), ci.path.clone()],
            class: Class::Cluster,
            group: None,
        });
        for c in &ci.certificates {
            let cid = node_id(used, "certificate", &[&c.namespace, &c.name]);
            let mut label = vec![format!("Certificate {}/{}", c.namespace, c.name)];
            if let Some(sub) = &c.subject {
                label.push(sub.clone());
            }
            g.nodes.push(GNode {
                id: cid.clone(),
                label,
                class: Class::Certificate,
                group: None,
            });
            g.edges.push(GEdge {
                from: id.clone(),
                to: cid,
                style: EdgeStyle::Signs,
            });
        }
        id
    };
    for m in &s.mounts {
        for i in &m.issuers {
            let me = issuer_ids[&(m.path.clone(), i.id.clone())].clone();
            match &i.parent {
                Parent::Issuer { mount, id, .. } => {
                    if let Some(p) = issuer_ids.get(&(mount.clone(), id.clone())) {
                        g.edges.push(GEdge {
                            from: p.clone(),
                            to: me.clone(),
                            style: EdgeStyle::Signs,
                        });
                    }
                }
                Parent::Declared { mount, .. } => {
                    if let Some(p) = group_ids.get(mount) {
                        g.edges.push(GEdge {
                            from: p.clone(),
                            to: me.clone(),
                            style: EdgeStyle::Declared,
                        });
                    }
                }
                Parent::SelfSigned | Parent::Outside { .. } => {}
            }
            for t in &i.twins {
                // One edge per pair.
                if *t > i.id
                    && let Some(o) = issuer_ids.get(&(m.path.clone(), t.clone()))
                {
                    g.edges.push(GEdge {
                        from: me.clone(),
                        to: o.clone(),
                        style: EdgeStyle::Twin,
                    });
                }
            }
            for ci in &i.cluster_issuers {
                let id = cluster(&mut g, &mut used, ci);
                g.edges.push(GEdge {
                    from: me.clone(),
                    to: id,
                    style: EdgeStyle::Signs,
                });
            }
        }
        for ci in &m.unresolved {
            let id = cluster(&mut g, &mut used, ci);
            g.edges.push(GEdge {
                from: group_ids[&m.path].clone(),
                to: id,
                style: EdgeStyle::Declared,
            });
        }
    }
    g
}

/// A Mermaid label: quoted, its quotes and angle brackets as entities,
/// lines joined with `<br/>`.
fn mermaid_label(lines: &[String]) -> String {
    let esc: Vec<String> = lines
        .iter()
        .map(|l| {
            l.replace('&', "#amp;")
                .replace('"', "#quot;")
                .replace('<', "#lt;")
                .replace('>', "#gt;")
        })
        .collect();
    format!("\"{}\"", esc.join("<br/>"))
}

/// The picture as a Mermaid flowchart (`graph TD`): a subgraph per mount
/// holding its issuers, an arrow from each issuer to what it signed, a
/// dotted arrow for a signer known only from the repository, a dotted
/// line between cross-signed twins; nodes coloured by health.
pub fn mermaid(s: &Status) -> String {
    let g = graph(s);
    let mut out = String::from("graph TD\n");
    for (k, (gid, title)) in g.groups.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph {gid}[{}]",
            mermaid_label(std::slice::from_ref(title))
        );
        for n in g.nodes.iter().filter(|n| n.group == Some(k)) {
            let _ = writeln!(out, "    {}[{}]", n.id, mermaid_label(&n.label));
        }
        out.push_str("  end\n");
    }
    for n in g.nodes.iter().filter(|n| n.group.is_none()) {
        let _ = writeln!(out, "  {}[{}]", n.id, mermaid_label(&n.label));
    }
    for e in &g.edges {
        let arrow = match e.style {
            EdgeStyle::Signs => "-->",
            EdgeStyle::Declared => "-.->",
            EdgeStyle::Twin => "-. same key .-",
        };
        let _ = writeln!(out, "  {} {arrow} {}", e.from, e.to);
    }
    let mut classes: BTreeMap<&str, (Class, Vec<&str>)> = BTreeMap::new();
    for n in &g.nodes {
        classes
            .entry(n.class.name())
            .or_insert((n.class, Vec::new()))
            .1
            .push(&n.id);
    }
    for (name, (class, ids)) in &classes {
        let _ = writeln!(
            out,
            "  classDef {name} fill:{},stroke:{}",
            class.fill(),
            class.stroke()
        );
        let _ = writeln!(out, "  class {} {name}", ids.join(","));
    }
    out
}

/// A Graphviz string: quoted, `\` and `"` escaped, lines joined with `\n`.
fn dot_label(lines: &[String]) -> String {
    let esc: Vec<String> = lines
        .iter()
        .map(|l| l.replace('\\', "\\\\").replace('"', "\\\""))
        .collect();
    format!("\"{}\"", esc.join("\\n"))
}

/// The picture as a Graphviz `digraph`: a `cluster_` subgraph per mount,
/// the same nodes, arrows and colours as [`mermaid`].
pub fn dot(s: &Status) -> String {
    let g = graph(s);
    let mut out = String::from(
        "digraph certplane {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n",
    );
    let node = |out: &mut String, n: &GNode, indent: &str| {
        let _ = writeln!(
            out,
            "{indent}{} [label={}, fillcolor=\"{}\", color=\"{}\"];",
            n.id,
            dot_label(&n.label),
            n.class.fill(),
            n.class.stroke()
        );
    };
    for (k, (gid, title)) in g.groups.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{gid} {{");
        let _ = writeln!(out, "    label={};", dot_label(std::slice::from_ref(title)));
        for n in g.nodes.iter().filter(|n| n.group == Some(k)) {
            node(&mut out, n, "    ");
        }
        // An anchor for arrows to the mount itself, when there are some.
        if g.edges.iter().any(|e| e.from == *gid || e.to == *gid) {
            let _ = writeln!(
                out,
                "    {gid} [label={}, shape=plaintext, style=\"\"];",
                dot_label(std::slice::from_ref(&"(mount)".to_string()))
            );
        }
        out.push_str("  }\n");
    }
    for n in g.nodes.iter().filter(|n| n.group.is_none()) {
        node(&mut out, n, "  ");
    }
    for e in &g.edges {
        let attrs = match e.style {
            EdgeStyle::Signs => "",
            EdgeStyle::Declared => " [style=dashed]",
            EdgeStyle::Twin => " [style=dotted, dir=none, label=\"same key\"]",
        };
        let _ = writeln!(out, "  {} -> {}{attrs};", e.from, e.to);
    }
    out.push_str("}\n");
    out
}

/// Whether the node ids used in a picture are all plain (for tests).
#[cfg(test)]
fn plain_id(id: &str) -> bool {
    id.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::super::tree::build;
    use super::super::tree::tests::{CLUSTER, VAULT, lab, live, repo_files};
    use super::*;

    fn status(int_days: i64) -> Status {
        build(&lab(), &live(int_days))
    }

    #[test]
    fn spans_are_days_and_hours() {
        assert_eq!(span(3 * 86_400 + 5 * 3600 + 59), "3d 5h");
        assert_eq!(span(5 * 3600 + 12 * 60), "5h 12m");
        assert_eq!(span(42 * 60), "42m");
        assert_eq!(time_left(-2 * 86_400 - 4 * 3600), "expired 2d 4h ago");
        assert_eq!(time_left(3600), "1h 0m left");
    }

    #[test]
    fn human_tree_without_colour() {
        let out = human(&status(1000), Style { color: false });
        assert!(!out.contains('\x1b'), "{out}");
        insta::assert_snapshot!(out);
    }

    #[test]
    fn human_tree_colours_by_health() {
        let ok = human(&status(1000), Style { color: true });
        assert!(ok.contains("\x1b[32m1000d 0h left  ok\x1b[0m"), "{ok}");
        let rotate = human(&status(10), Style { color: true });
        assert!(
            rotate.contains("\x1b[33m10d 0h left  rotate\x1b[0m"),
            "{rotate}"
        );
        assert!(rotate.contains("\x1b[31m1 CA in use needs attention.\x1b[0m"));
        let expired = human(&status(-1), Style { color: true });
        assert!(
            expired.contains("\x1b[31mexpired 1d 0h ago  expired\x1b[0m"),
            "{expired}"
        );
    }

    #[test]
    fn alert_names_the_ca_and_the_window() {
        let s = status(10);
        let m = alert_message(&s.alerts[0]);
        assert!(
            m.starts_with("pki_int issuer int-2026 (\"Lab Intermediate CA\")"),
            "{m}"
        );
        assert!(m.contains("rotateBefore 720h"), "{m}");
        assert!(m.contains("10d 0h left"), "{m}");
        let s = status(-1);
        let m = alert_message(&s.alerts[0]);
        assert!(m.contains("expired at"), "{m}");
    }

    #[test]
    fn json_is_versioned_and_complete() {
        let v = json(&status(10));
        assert_eq!(v["version"], 1);
        assert_eq!(v["mounts"][0]["path"], "pki");
        assert_eq!(v["mounts"][1]["ca"], "intermediate");
        assert_eq!(v["mounts"][1]["signed_by"], json!({"mount": "pki"}));
        let int = &v["mounts"][1]["issuers"][0];
        assert_eq!(int["health"], "rotate");
        assert_eq!(int["default"], true);
        assert_eq!(
            int["parent"],
            json!({"by": "issuer", "mount": "pki", "id": "r1", "name": "root-2026"})
        );
        assert_eq!(
            int["cluster_issuers"][0]["certificates"][0]["secret_name"],
            "web-tls"
        );
        assert_eq!(v["alerts"][0]["mount"], "pki_int");
        assert_eq!(v["alerts"][0]["rotate_before_seconds"], 720 * 3600);
        insta::assert_json_snapshot!(v);
    }

    #[test]
    fn mermaid_picture() {
        let out = mermaid(&status(10));
        assert!(out.starts_with("graph TD\n"), "{out}");
        assert!(
            out.contains("ca_pki_root_2026 --> ca_pki_int_int_2026"),
            "{out}"
        );
        assert!(
            out.contains("ca_pki_int_int_2026 --> issuer_sandbox_vault_issuer"),
            "{out}"
        );
        assert!(out.contains("class ca_pki_int_int_2026 rotate"), "{out}");
        insta::assert_snapshot!(out);
    }

    #[test]
    fn dot_picture() {
        let out = dot(&status(1000));
        assert!(out.starts_with("digraph certplane {\n"), "{out}");
        assert!(out.trim_end().ends_with('}'));
        assert!(
            out.contains("ca_pki_root_2026 -> ca_pki_int_int_2026;"),
            "{out}"
        );
        assert!(out.contains("subgraph cluster_mount_pki {"), "{out}");
        insta::assert_snapshot!(out);
    }

    #[test]
    fn odd_names_give_plain_ids_and_escaped_labels() {
        let cluster = CLUSTER
            .replace("vault-issuer", "end")
            .replace("www.example.com", "a.example.com");
        let repo = repo_files(&[("vault.yaml", VAULT), ("cluster.yaml", &cluster)]);
        let mut l = live(1000);
        let int = l.mounts.get_mut("pki_int").unwrap();
        int.issuers[0].cert.common_name = "Lab \"Quoted\" <CA>".into();
        int.issuers[0].name = "int 2026/\"x\"".into();
        int.issuers.push(super::super::tree::tests::issuer(
            "i2",
            "int_2026__x_",
            "X",
            "cc",
            "aa",
            900,
        ));
        let s = build(&repo, &l);
        let m = mermaid(&s);
        for line in m.lines().skip(1) {
            let t = line.trim();
            let id = t
                .strip_prefix("subgraph ")
                .unwrap_or(t)
                .split(['[', ' '])
                .next()
                .unwrap();
            if t == "end" || t.starts_with("classDef") || t.starts_with("class ") {
                continue;
            }
            assert!(plain_id(id), "{id:?} in {line:?}");
            // Quotes only around labels.
            if let Some(open) = t.find('[') {
                let label = &t[open + 1..t.len() - 1];
                assert!(label.starts_with('"') && label.ends_with('"'), "{t}");
                assert!(!label[1..label.len() - 1].contains('"'), "{t}");
                assert!(!label.contains('<') || label.contains("<br/>"), "{t}");
            }
        }
        assert!(m.contains("Lab #quot;Quoted#quot; #lt;CA#gt;"), "{m}");
        // The two issuers whose names sanitise alike stay apart.
        assert!(m.contains("    ca_pki_int_int_2026__x_[\""), "{m}");
        assert!(m.contains("    ca_pki_int_int_2026__x__2[\""), "{m}");
        let d = dot(&s);
        assert!(d.contains("Lab \\\"Quoted\\\" <CA>"), "{d}");
        assert!(
            d.contains("issuer_sandbox_end"),
            "an id never is a bare keyword: {d}"
        );
    }
}
