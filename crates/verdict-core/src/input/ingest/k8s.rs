//! Kubernetes core objects: namespaces, pods and workloads, services.

use crate::decode::{Ctx, Fields};
use crate::policy::Protocol;
use crate::source::{Location, ObjectRef};
use crate::yaml::Node;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Namespace {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

/// A pod, or the pod template of a workload (its pods share the template's
/// labels and so its identity).
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    pub object: ObjectRef,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    /// The ports of `spec.containers`: Cilium's named ports (policy `toPorts`
    /// names and 1.20's named-ports identity label) come from these only.
    pub ports: Vec<ContainerPort>,
    /// The ports of sidecar containers (`initContainers` with
    /// `restartPolicy: Always`): a Service's named `targetPort` is looked up
    /// in these after `ports` (Kubernetes' `FindPort`); Cilium ignores them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sidecar_ports: Vec<ContainerPort>,
    pub host_network: bool,
    pub location: Location,
    /// The controller named by `metadata.ownerReferences` (the entry with
    /// `controller: true`), as (kind, name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller: Option<(String, String)>,
    /// The objects of the input this workload stands for: pods, ReplicaSets
    /// and Jobs represented by their controller (`ingest/owners.rs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub represents: Vec<ObjectRef>,
}

impl Workload {
    /// The container port a Service port's `targetPort` reaches on this
    /// workload, as Kubernetes' endpoints controller resolves it
    /// (`FindPort`): a number as it is; a name against the containers' ports
    /// of the Service port's protocol, first match, then the sidecar
    /// containers'. Ordinary init containers do not count.
    pub fn target_port(&self, target: &TargetPort, protocol: Protocol) -> Option<u16> {
        match target {
            TargetPort::Number(n) => Some(*n),
            TargetPort::Name(name) => self
                .service_ports()
                .find(|cp| cp.protocol == protocol && cp.name.as_deref() == Some(name.as_str()))
                .map(|cp| cp.port),
        }
    }

    /// Every port a Service can reach on this workload: containers, then
    /// sidecar containers.
    pub fn service_ports(&self) -> impl Iterator<Item = &ContainerPort> {
        self.ports.iter().chain(&self.sidecar_ports)
    }

    /// How users name it: `ns/pod` for a pod, `ns/kind/name` for a
    /// workload's pods (`shop/deployment/web`).
    pub fn display_name(&self) -> String {
        if self.object.kind == "Pod" {
            format!("{}/{}", self.namespace, self.object.name)
        } else {
            format!(
                "{}/{}/{}",
                self.namespace,
                self.object.kind.to_ascii_lowercase(),
                self.object.name
            )
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TargetPort {
    Number(u16),
    Name(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    pub target: TargetPort,
    pub protocol: Protocol,
    pub node_port: Option<u16>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub object: ObjectRef,
    pub namespace: String,
    /// `None`: a service without selector (endpoints managed by hand).
    pub selector: Option<BTreeMap<String, String>>,
    pub service_type: String,
    pub external_traffic_policy: String,
    pub ports: Vec<ServicePort>,
    pub location: Location,
}

pub fn namespace(ctx: &mut Ctx, meta: &Fields, name: &str, n: &Node) -> Namespace {
    let mut labels = meta
        .get("labels")
        .map(|l| ctx.string_map(l, "metadata.labels"))
        .unwrap_or_default();
    // The API server sets this label on every namespace.
    labels.insert("kubernetes.io/metadata.name".to_string(), name.to_string());
    Namespace {
        name: name.to_string(),
        labels,
        location: ctx.loc(n),
    }
}

/// What a pod spec contributes: service account, container ports,
/// sidecar container ports, host network.
struct PodSpec {
    service_account: String,
    ports: Vec<ContainerPort>,
    sidecar_ports: Vec<ContainerPort>,
    host_network: bool,
}

fn pod_spec(ctx: &mut Ctx, spec: Option<&Node>, path: &str) -> PodSpec {
    let mut out = PodSpec {
        service_account: "default".to_string(),
        ports: Vec::new(),
        sidecar_ports: Vec::new(),
        host_network: false,
    };
    let Some(f) = spec.and_then(|spec| ctx.fields_loose(spec, path)) else {
        return out;
    };
    if let Some(s) = f
        .get("serviceAccountName")
        .or_else(|| f.get("serviceAccount"))
    {
        if let Some(v) = ctx.string(s, &format!("{path}.serviceAccountName")) {
            if !v.is_empty() {
                out.service_account = v;
            }
        }
    }
    if let Some(h) = f.get("hostNetwork") {
        out.host_network = ctx
            .boolean(h, &format!("{path}.hostNetwork"))
            .unwrap_or(false);
    }
    for list in ["initContainers", "containers"] {
        let Some(cs) = f.get(list) else { continue };
        for (i, c) in ctx
            .seq(cs, &format!("{path}.{list}"))
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let cp = format!("{path}.{list}[{i}]");
            let Some(cf) = ctx.fields_loose(c, &cp) else {
                continue;
            };
            if let Some(nm) = cf.get("name") {
                ctx.string(nm, &format!("{cp}.name"));
            }
            // A sidecar is an init container that keeps running.
            let sidecar = list == "initContainers"
                && cf
                    .get("restartPolicy")
                    .and_then(|r| ctx.string(r, &format!("{cp}.restartPolicy")))
                    .is_some_and(|r| r == "Always");
            let Some(pl) = cf.get("ports") else { continue };
            let mut seen = std::collections::BTreeSet::new();
            for (j, p) in ctx
                .seq(pl, &format!("{cp}.ports"))
                .unwrap_or(&[])
                .iter()
                .enumerate()
            {
                let pp = format!("{cp}.ports[{j}]");
                let Some(pf) = ctx.fields_loose(p, &pp) else {
                    continue;
                };
                let Some(port) = pf
                    .get("containerPort")
                    .and_then(|x| ctx.int(x, &format!("{pp}.containerPort")))
                else {
                    ctx.error(p, format!("`{pp}.containerPort` is required"));
                    continue;
                };
                let port = match u16::try_from(port) {
                    Ok(0) => {
                        ctx.error(
                            p,
                            format!("`{pp}.containerPort` is required (0 is no port)"),
                        );
                        continue;
                    }
                    Ok(port) => port,
                    Err(_) => {
                        ctx.error(p, format!("`{pp}.containerPort` {port} is out of range"));
                        continue;
                    }
                };
                let protocol = match pf
                    .get("protocol")
                    .and_then(|x| ctx.string(x, &format!("{pp}.protocol")))
                {
                    None => Protocol::Tcp,
                    // Case matters: the API server refuses `tcp`.
                    Some(t) => match t.as_str() {
                        "TCP" => Protocol::Tcp,
                        "UDP" => Protocol::Udp,
                        "SCTP" => Protocol::Sctp,
                        _ => {
                            ctx.error(p, format!("`{pp}.protocol` `{t}` is not TCP, UDP or SCTP"));
                            continue;
                        }
                    },
                };
                let name = pf
                    .get("name")
                    .and_then(|x| ctx.string(x, &format!("{pp}.name")))
                    .filter(|n| !n.is_empty());
                if let Some(n) = &name {
                    // The API server's `validateContainerPorts`.
                    if let Some(why) = port_name_problem(n) {
                        ctx.error(
                            p,
                            format!("`{pp}.name` `{n}` is not a valid port name: {why}"),
                        );
                        continue;
                    }
                    if !seen.insert(n.clone()) {
                        ctx.error(p, format!("`{pp}.name` `{n}` is declared twice in {cp}"));
                        continue;
                    }
                }
                let port = ContainerPort {
                    name,
                    port,
                    protocol,
                };
                match list {
                    "containers" => out.ports.push(port),
                    _ if sidecar => out.sidecar_ports.push(port),
                    // An ordinary init container has exited before traffic flows.
                    _ => {}
                }
            }
        }
    }
    out
}

/// Why the API server refuses `name` as a container port name
/// (`IsValidPortName`, k8s.io/apimachinery validation: an IANA service name
/// in lower case), in its words; `None` when it is valid.
fn port_name_problem(name: &str) -> Option<&'static str> {
    if name.len() > 15 {
        Some("must be no more than 15 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    } else if name.contains("--") {
        Some("must not contain consecutive hyphens")
    } else if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        Some("must contain at least one letter (a-z)")
    } else if name.starts_with('-') || name.ends_with('-') {
        Some("must not begin or end with a hyphen")
    } else {
        None
    }
}

/// A pod, or a workload's pod template.
pub fn workload(
    ctx: &mut Ctx,
    kind: &str,
    object: &ObjectRef,
    namespace: &str,
    root: &Fields,
    meta: &Fields,
    n: &Node,
) -> Option<Workload> {
    let (labels, spec, path) = if kind == "Pod" {
        let labels = meta
            .get("labels")
            .map(|l| ctx.string_map(l, "metadata.labels"))
            .unwrap_or_default();
        (labels, root.get("spec"), "spec".to_string())
    } else {
        let spec = root.get("spec");
        let Some(spec) = spec else {
            ctx.error(n, format!("{kind} has no `spec`"));
            return None;
        };
        let sf = ctx.fields_loose(spec, "spec")?;
        let (tmpl, tpath) = if kind == "CronJob" {
            let jt = sf
                .get("jobTemplate")
                .and_then(|j| j.get("spec"))
                .and_then(|s| s.get("template"));
            (jt, "spec.jobTemplate.spec.template")
        } else {
            (sf.get("template"), "spec.template")
        };
        let Some(tmpl) = tmpl else {
            ctx.error(spec, format!("{kind} has no `{tpath}`"));
            return None;
        };
        let tf = ctx.fields_loose(tmpl, tpath)?;
        let meta = tf
            .get("metadata")
            .and_then(|m| ctx.fields_loose(m, &format!("{tpath}.metadata")));
        let labels = match meta.and_then(|m| m.get("labels")) {
            Some(l) => {
                let path = format!("{tpath}.metadata.labels");
                ctx.check_label_syntax(l, &path);
                ctx.string_map(l, &path)
            }
            None => BTreeMap::new(),
        };
        (labels, tf.get("spec"), format!("{tpath}.spec"))
    };
    let PodSpec {
        service_account,
        ports,
        sidecar_ports,
        host_network,
    } = pod_spec(ctx, spec, &path);
    let controller = super::owners::controller(ctx, meta);
    Some(Workload {
        object: object.clone(),
        namespace: namespace.to_string(),
        labels,
        service_account,
        ports,
        sidecar_ports,
        host_network,
        location: ctx.loc(n),
        controller,
        represents: Vec::new(),
    })
}

pub fn service(
    ctx: &mut Ctx,
    object: &ObjectRef,
    namespace: &str,
    root: &Fields,
    n: &Node,
) -> Option<Service> {
    let spec = root.get("spec");
    let sf = match spec {
        Some(s) => ctx.fields_loose(s, "spec")?,
        None => {
            ctx.error(n, "Service has no `spec`".to_string());
            return None;
        }
    };
    let selector = sf
        .get("selector")
        .map(|s| ctx.string_map(s, "spec.selector"))
        .filter(|m| !m.is_empty());
    let service_type = sf
        .get("type")
        .and_then(|t| ctx.string(t, "spec.type"))
        .unwrap_or_else(|| "ClusterIP".into());
    let etp = sf
        .get("externalTrafficPolicy")
        .and_then(|t| ctx.string(t, "spec.externalTrafficPolicy"))
        .unwrap_or_else(|| "Cluster".into());
    let mut ports = Vec::new();
    if let Some(pl) = sf.get("ports") {
        for (i, p) in ctx.seq(pl, "spec.ports").unwrap_or(&[]).iter().enumerate() {
            let pp = format!("spec.ports[{i}]");
            let Some(pf) = ctx.fields_loose(p, &pp) else {
                continue;
            };
            let Some(port) = pf
                .get("port")
                .and_then(|x| ctx.int(x, &format!("{pp}.port")))
            else {
                ctx.error(p, format!("`{pp}.port` is required"));
                continue;
            };
            let Ok(port) = u16::try_from(port) else {
                ctx.error(p, format!("`{pp}.port` {port} is out of range"));
                continue;
            };
            let target = match pf.get("targetPort") {
                None => TargetPort::Number(port),
                Some(t) => match (crate::decode::json_type(t), t.as_str()) {
                    ("integer", Some(v)) => match v.parse::<u16>() {
                        Ok(x) => TargetPort::Number(x),
                        Err(_) => {
                            ctx.error(t, format!("`{pp}.targetPort` {v} is out of range"));
                            continue;
                        }
                    },
                    // int-or-string: a string is a port name, which must
                    // hold a letter (IsValidPortName); "8080" is refused.
                    ("string", Some(v)) if !v.chars().any(|c| c.is_ascii_alphabetic()) => {
                        ctx.error(
                            t,
                            format!("`{pp}.targetPort`: Invalid value: {v:?}: must contain at least one letter (a-z); write a number without quotes"),
                        );
                        continue;
                    }
                    ("string", Some(v)) => TargetPort::Name(v.to_string()),
                    _ => {
                        ctx.error(
                            t,
                            format!("`{pp}.targetPort` must be a number or a port name"),
                        );
                        continue;
                    }
                },
            };
            let protocol = match pf
                .get("protocol")
                .and_then(|x| ctx.string(x, &format!("{pp}.protocol")))
            {
                None => Protocol::Tcp,
                Some(t) => match t.as_str() {
                    "TCP" => Protocol::Tcp,
                    "UDP" => Protocol::Udp,
                    "SCTP" => Protocol::Sctp,
                    _ => {
                        ctx.error(p, format!("`{pp}.protocol` `{t}` is not TCP, UDP or SCTP"));
                        continue;
                    }
                },
            };
            let name = pf
                .get("name")
                .and_then(|x| ctx.string(x, &format!("{pp}.name")));
            let node_port = pf
                .get("nodePort")
                .and_then(|x| ctx.int(x, &format!("{pp}.nodePort")))
                .and_then(|v| u16::try_from(v).ok());
            ports.push(ServicePort {
                name,
                port,
                target,
                protocol,
                node_port,
            });
        }
    }
    Some(Service {
        object: object.clone(),
        namespace: namespace.to_string(),
        selector,
        service_type,
        external_traffic_policy: etp,
        ports,
        location: ctx.loc(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::cnp::ClusterConfig;
    use crate::ingest::Inventory;

    const SIDECARS: &str =
        include_str!("../../../../verdict-cli/tests/data/sidecar-ports/cluster.yaml");

    fn port(name: &str, port: u16) -> ContainerPort {
        ContainerPort {
            name: Some(name.to_string()),
            port,
            protocol: Protocol::Tcp,
        }
    }

    #[test]
    fn container_ports_are_validated_as_the_api_server_does() {
        let mut inv = Inventory::new(ClusterConfig::default());
        inv.load_text(
            "in.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  containers:\n  - name: c\n    ports:\n    - {name: HTTP, containerPort: 80}\n    - {name: web, containerPort: 81}\n    - {name: web, containerPort: 82}\n    - {name: a--b, containerPort: 83}\n    - {name: '8080', containerPort: 84}\n    - {name: ok, containerPort: 0}\n    - {name: ok, containerPort: 85}\n  - name: d\n    ports:\n    - {name: web, containerPort: 86}\n",
        );
        let errors: Vec<String> = inv.diagnostics.iter().map(|d| d.message.clone()).collect();
        assert_eq!(
            errors,
            vec![
                "`spec.containers[0].ports[0].name` `HTTP` is not a valid port name: must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "`spec.containers[0].ports[2].name` `web` is declared twice in spec.containers[0]",
                "`spec.containers[0].ports[3].name` `a--b` is not a valid port name: must not contain consecutive hyphens",
                "`spec.containers[0].ports[4].name` `8080` is not a valid port name: must contain at least one letter (a-z)",
                "`spec.containers[0].ports[5].containerPort` is required (0 is no port)",
            ]
        );
        // Valid ports are kept; a name may repeat in another container.
        let kept: Vec<u16> = inv.workloads[0].ports.iter().map(|p| p.port).collect();
        assert_eq!(kept, vec![81, 85, 86]);
    }

    #[test]
    fn init_container_ports_count_only_for_sidecars_and_only_for_services() {
        let mut inv = Inventory::new(ClusterConfig::default());
        inv.load_text("in.yaml", SIDECARS);
        let api = inv
            .workloads
            .iter()
            .find(|w| w.object.name == "api")
            .expect("api");
        // Cilium's named ports: the containers' only.
        assert_eq!(api.ports, vec![port("http", 8080)]);
        // The sidecar's port is kept for Services; the init container's is not.
        assert_eq!(api.sidecar_ports, vec![port("metrics", 9090)]);
        let svc = inv
            .services
            .iter()
            .find(|s| s.object.name == "api")
            .expect("svc");
        let resolved: Vec<(String, Option<u16>)> = svc
            .ports
            .iter()
            .map(|p| {
                let name = p.name.clone().unwrap_or_default();
                (name, api.target_port(&p.target, p.protocol))
            })
            .collect();
        assert_eq!(
            resolved,
            vec![
                ("http".to_string(), Some(8080)),
                ("metrics".to_string(), Some(9090)),
                ("admin".to_string(), None),
                // Kubernetes matches the protocol too: `http` is TCP.
                ("dns".to_string(), None),
            ]
        );
    }
}
