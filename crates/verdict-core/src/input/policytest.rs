//! `PolicyTest` documents: expected verdicts for flows, and expected
//! rejected policies (the format of the conformance corpus, plus `files`
//! and a single overall `expect` for users' own tests).
//!
//! ```yaml
//! apiVersion: verdict.conformance/v1
//! kind: PolicyTest
//! metadata: {name: shop}
//! spec:
//!   cluster: {name: default, dualStack: false, ciliumVersion: "1.20",
//!             policyEnforcement: default, allowLocalhost: always}
//!   files: [../policies/]          # optional, relative to this file
//!   objects: [...]                 # optional inline objects
//!   rejected: [{kind: ..., namespace: ..., name: ..., reason: ...}]
//!   flows:
//!     - {from: world, to: shop/web-0, protocol: TCP, port: 8080, expect: allowed}
//!     - {from: ..., to: ..., port: 80, expect: {egress: allowed, ingress: denied}}
//! ```

use crate::decode::Ctx;
use crate::engine::{Decision, Engine};
use crate::ingest::{ClusterConfig, Inventory};
use crate::settings::{AllowLocalhost, PolicyEnforcement};
use crate::source::{Diagnostic, ObjectRef};
use crate::trace::{parse_flow_protocol, trace};
use crate::yaml::{parse_documents, Document, Node};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum Expect {
    Overall(Decision),
    Sides {
        egress: Option<Decision>,
        ingress: Option<Decision>,
    },
}

#[derive(Debug, Clone)]
pub struct FlowCase {
    pub from: String,
    pub to: String,
    pub protocol: String,
    pub port: u16,
    pub expect: Expect,
    pub line: u32,
}

#[derive(Debug, Clone)]
pub struct RejectedCase {
    pub object: ObjectRef,
    pub reason: Option<String>,
}

/// One parsed test document.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    pub file: Arc<str>,
    pub cluster: ClusterConfig,
    pub objects: Vec<Node>,
    pub files: Vec<String>,
    pub rejected: Vec<RejectedCase>,
    pub flows: Vec<FlowCase>,
}

fn decision(s: &str) -> Option<Decision> {
    match s {
        "allowed" | "allow" => Some(Decision::Allowed),
        "denied" | "deny" => Some(Decision::Denied),
        _ => None,
    }
}

/// Whether any document of `text` is a `kind: PolicyTest` object.
pub fn is_test_file(text: &str) -> bool {
    parse_documents(text)
        .iter()
        .any(|d| matches!(d, Document::Ok(n) if n.get("kind").and_then(Node::as_str) == Some("PolicyTest")))
}

/// Parses every `PolicyTest` document of a file; problems are returned as
/// diagnostics.
pub fn parse(file: &str, text: &str) -> (Vec<TestCase>, Vec<Diagnostic>) {
    let file: Arc<str> = Arc::from(file);
    let mut diags = Vec::new();
    let mut cases = Vec::new();
    for doc in parse_documents(text) {
        let node = match doc {
            Document::Ok(n) => n,
            Document::Err { pos, message } => {
                diags.push(Diagnostic {
                    location: crate::source::Location::new(&file, pos),
                    severity: crate::source::Severity::Error,
                    object: None,
                    message: format!("YAML syntax error: {message}"),
                });
                continue;
            }
        };
        let mut ctx = Ctx::new(&file, &mut diags);
        if let Some(c) = parse_case(&mut ctx, &node) {
            cases.push(c);
        }
    }
    (cases, diags)
}

fn parse_case(ctx: &mut Ctx, node: &Node) -> Option<TestCase> {
    let root = ctx.fields(
        node,
        "PolicyTest",
        &["apiVersion", "kind", "metadata", "spec"],
    )?;
    if root.get("kind").and_then(Node::as_str) != Some("PolicyTest") {
        ctx.error(node, "not a `kind: PolicyTest` document".to_string());
        return None;
    }
    let name = root
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Node::as_str)
        .unwrap_or("unnamed")
        .to_string();
    ctx.object = Some(ObjectRef::new("PolicyTest", None, &name));
    let spec_node = root.get("spec")?;
    let spec = ctx.fields(
        spec_node,
        "spec",
        &["cluster", "objects", "files", "rejected", "flows"],
    )?;
    let cluster = spec
        .get("cluster")
        .map(|c| parse_cluster(ctx, c))
        .unwrap_or_default();
    let objects = spec
        .get("objects")
        .and_then(|o| ctx.seq(o, "spec.objects"))
        .unwrap_or(&[])
        .to_vec();
    let files = spec
        .get("files")
        .map(|f| ctx.strings(f, "spec.files"))
        .unwrap_or_default();
    let mut rejected = Vec::new();
    for (i, r) in spec
        .get("rejected")
        .and_then(|o| ctx.seq(o, "spec.rejected"))
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let p = format!("spec.rejected[{i}]");
        let Some(rf) = ctx.fields(r, &p, &["kind", "namespace", "name", "reason"]) else {
            continue;
        };
        let kind = rf.get("kind").and_then(Node::as_str).unwrap_or_default();
        let ns = rf
            .get("namespace")
            .and_then(Node::as_str)
            .filter(|s| !s.is_empty());
        let name = rf.get("name").and_then(Node::as_str).unwrap_or_default();
        let ns = if kind == "CiliumNetworkPolicy" || kind == "NetworkPolicy" {
            Some(ns.unwrap_or("default"))
        } else {
            ns
        };
        rejected.push(RejectedCase {
            object: ObjectRef::new(kind, ns, name),
            reason: rf.get("reason").and_then(Node::as_str).map(str::to_string),
        });
    }
    let mut flows = Vec::new();
    for (i, f) in spec
        .get("flows")
        .and_then(|o| ctx.seq(o, "spec.flows"))
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let p = format!("spec.flows[{i}]");
        let Some(ff) = ctx.fields(f, &p, &["from", "to", "protocol", "port", "expect"]) else {
            continue;
        };
        let from = ff
            .get("from")
            .and_then(|x| ctx.string(x, &format!("{p}.from")));
        let to = ff.get("to").and_then(|x| ctx.string(x, &format!("{p}.to")));
        let protocol = ff
            .get("protocol")
            .and_then(|x| ctx.string(x, &format!("{p}.protocol")))
            .unwrap_or_else(|| "TCP".into());
        let port = ff
            .get("port")
            .and_then(|x| ctx.int(x, &format!("{p}.port")))
            .and_then(|x| u16::try_from(x).ok());
        let expect = match ff.get("expect") {
            Some(e) if e.as_str().is_some() => match e.as_str().and_then(decision) {
                Some(d) => Some(Expect::Overall(d)),
                None => {
                    ctx.error(e, format!("`{p}.expect` must be allowed or denied"));
                    None
                }
            },
            Some(e) => ctx
                .fields(e, &format!("{p}.expect"), &["egress", "ingress"])
                .map(|ef| Expect::Sides {
                    egress: ef.get("egress").and_then(Node::as_str).and_then(decision),
                    ingress: ef.get("ingress").and_then(Node::as_str).and_then(decision),
                }),
            None => None,
        };
        match (from, to, port, expect) {
            (Some(from), Some(to), Some(port), Some(expect)) => flows.push(FlowCase {
                from,
                to,
                protocol,
                port,
                expect,
                line: f.pos.line,
            }),
            _ => ctx.error(
                f,
                format!("`{p}` needs from, to, port (0..65535) and expect"),
            ),
        }
    }
    Some(TestCase {
        name,
        file: Arc::clone(&ctx.file),
        cluster,
        objects,
        files,
        rejected,
        flows,
    })
}

/// `spec.cluster`: the cluster and agent settings the expectations hold
/// for; absent fields mean the defaults of a real cluster on the newest
/// release (see [`ClusterConfig::default`]).
fn parse_cluster(ctx: &mut Ctx, c: &Node) -> ClusterConfig {
    let mut cluster = ClusterConfig::default();
    let Some(cf) = ctx.fields(
        c,
        "spec.cluster",
        &[
            "name",
            "dualStack",
            "ciliumVersion",
            "policyEnforcement",
            "allowLocalhost",
            "policyDefaultLocalCluster",
            "enableK8sClusterNetworkPolicy",
        ],
    ) else {
        return cluster;
    };
    if let Some(n) = cf
        .get("name")
        .and_then(|n| ctx.string(n, "spec.cluster.name"))
    {
        cluster.name = n;
        cluster.explicit.name = true;
    }
    if let Some(d) = cf
        .get("dualStack")
        .and_then(|n| ctx.boolean(n, "spec.cluster.dualStack"))
    {
        cluster.dual_stack = d;
        cluster.explicit.dual_stack = true;
    }
    let text = |ctx: &mut Ctx, key: &str| {
        cf.get(key).and_then(|n| {
            ctx.string(n, &format!("spec.cluster.{key}"))
                .map(|s| (n, s))
        })
    };
    if let Some((n, v)) = text(ctx, "ciliumVersion") {
        match cluster.set_version(&v) {
            Ok(()) => {
                cluster.explicit.version = true;
            }
            Err(e) => ctx.error(n, format!("`spec.cluster.ciliumVersion`: {e}")),
        }
    }
    if let Some((n, v)) = text(ctx, "policyEnforcement") {
        match PolicyEnforcement::parse(&v) {
            Ok(v) => {
                cluster.policy_enforcement = v;
                cluster.explicit.policy_enforcement = true;
            }
            Err(e) => ctx.error(n, format!("`spec.cluster.policyEnforcement`: {e}")),
        }
    }
    if let Some((n, v)) = text(ctx, "allowLocalhost") {
        match AllowLocalhost::parse(&v) {
            Ok(v) => {
                cluster.allow_localhost = v;
                cluster.explicit.allow_localhost = true;
            }
            Err(e) => ctx.error(n, format!("`spec.cluster.allowLocalhost`: {e}")),
        }
    }
    if let Some(b) = cf
        .get("policyDefaultLocalCluster")
        .and_then(|n| ctx.boolean(n, "spec.cluster.policyDefaultLocalCluster"))
    {
        cluster.policy_default_local_cluster = Some(b);
        cluster.explicit.policy_default_local_cluster = true;
    }
    if let Some(b) = cf
        .get("enableK8sClusterNetworkPolicy")
        .and_then(|n| ctx.boolean(n, "spec.cluster.enableK8sClusterNetworkPolicy"))
    {
        cluster.enable_k8s_cluster_network_policy = b;
        cluster.explicit.enable_k8s_cluster_network_policy = true;
    }
    cluster
}

/// The outcome of one test case.
#[derive(Debug, Default)]
pub struct Outcome {
    pub passed: usize,
    pub failures: Vec<String>,
    /// Every expectation checked, in order, passed or failed (for reports
    /// such as JUnit XML that list each one).
    pub checks: Vec<CheckResult>,
}

/// One expectation of a test case: a flow, or a policy expected (or not
/// expected) to be rejected.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// `world -> shop/web-0 TCP/8080`, `rejects CiliumNetworkPolicy ns/name`.
    pub name: String,
    /// The line of the flow in the test file (none for rejections).
    pub line: Option<u32>,
    /// The failure (the same text as in `failures`), if it failed.
    pub failure: Option<String>,
}

impl Outcome {
    fn pass(&mut self, name: String, line: Option<u32>) {
        self.passed += 1;
        self.checks.push(CheckResult {
            name,
            line,
            failure: None,
        });
    }

    fn fail(&mut self, name: String, line: Option<u32>, failure: String) {
        self.failures.push(failure.clone());
        self.checks.push(CheckResult {
            name,
            line,
            failure: Some(failure),
        });
    }
}

impl TestCase {
    /// An inventory holding the case's inline objects (files are added by
    /// the caller, which does the I/O).
    pub fn inventory(&self) -> Inventory {
        let mut inv = Inventory::new(self.cluster.clone());
        for o in &self.objects {
            inv.load_node(&self.file, o);
        }
        inv
    }

    /// Runs the checks against a loaded inventory.
    pub fn run(&self, inv: &Inventory) -> Outcome {
        let mut out = Outcome::default();
        let engine = Engine::new(inv);
        let actual: Vec<(&ObjectRef, &str)> = inv
            .policies
            .iter()
            .filter_map(|p| p.rejected.as_deref().map(|r| (&p.object, r)))
            .collect();
        for exp in &self.rejected {
            let check = format!("rejects {}", exp.object);
            match actual.iter().find(|(o, _)| **o == exp.object) {
                Some(_) => out.pass(check, None),
                None => out.fail(
                    check,
                    None,
                    format!(
                        "{}: {}: expected Cilium to reject {} ({}), but verdict accepts it",
                        self.file,
                        self.name,
                        exp.object,
                        exp.reason.as_deref().unwrap_or("no reason given")
                    ),
                ),
            }
        }
        for (o, why) in &actual {
            if !self.rejected.iter().any(|e| e.object == **o) {
                out.fail(
                    format!("accepts {o}"),
                    None,
                    format!(
                        "{}: {}: verdict rejects {o} ({why}), but the test does not expect it to be rejected",
                        self.file, self.name
                    ),
                );
            }
        }
        for f in &self.flows {
            let at = format!("{}:{}: {}", self.file, f.line, self.name);
            let parties = engine
                .party(&f.from)
                .and_then(|a| engine.party(&f.to).map(|b| (a, b)));
            let proto = parse_flow_protocol(&f.protocol);
            let ((from, to), protocol) = match (parties, proto) {
                (Ok(p), Ok(pr)) => (p, pr),
                (Err(e), _) | (_, Err(e)) => {
                    out.fail(
                        format!("{} -> {} {}/{}", f.from, f.to, f.protocol, f.port),
                        Some(f.line),
                        format!("{at}: {e}"),
                    );
                    continue;
                }
            };
            let v = trace(&engine, &from, &to, protocol, f.port);
            let flow = format!("{} -> {} {}/{}", f.from, f.to, protocol, f.port);
            let mut bad = Vec::new();
            match &f.expect {
                Expect::Overall(d) => {
                    if v.decision != *d {
                        bad.push(format!("expected {d}, got {}", v.decision));
                    }
                }
                Expect::Sides { egress, ingress } => {
                    if let Some(d) = egress {
                        if v.egress.decision != *d {
                            bad.push(format!(
                                "egress: expected {d}, got {} ({})",
                                v.egress.decision, v.egress.explanation
                            ));
                        }
                    }
                    if let Some(d) = ingress {
                        if v.ingress.decision != *d {
                            bad.push(format!(
                                "ingress: expected {d}, got {} ({})",
                                v.ingress.decision, v.ingress.explanation
                            ));
                        }
                    }
                }
            }
            if bad.is_empty() {
                out.pass(flow, Some(f.line));
            } else {
                let failure = format!("{at}: {flow}: {}", bad.join("; "));
                out.fail(flow, Some(f.line), failure);
            }
        }
        out
    }
}
