//! The value rules of the routing kinds beyond their structural schema:
//! the CEL rules (`x-kubernetes-validations`) of the Gateway API CRDs and
//! the Go validation of networking.k8s.io/v1 Ingress and IngressClass
//! (kubernetes/kubernetes `pkg/apis/networking/validation/validation.go`).
//! They run after the schema check and only look at well-typed values (a
//! wrong type is already reported there). Messages are the API server's.
//! Gateway API rules are in `gateway.rs`, Ingress and IngressClass rules in
//! `ingress.rs`; the helpers both read values with are here.

mod gateway;
mod ingress;

use super::schema::json_str;
use crate::decode::Ctx;
use crate::yaml::{Node, Value};
use gateway::{gateway, route};
use ingress::{ingress, ingress_class};

fn items(n: Option<&Node>) -> &[Node] {
    n.and_then(Node::as_seq).unwrap_or(&[])
}

fn text<'n>(n: &'n Node, key: &str) -> Option<&'n str> {
    n.get(key).and_then(json_str)
}

fn has(n: &Node, key: &str) -> bool {
    n.get(key).is_some_and(|v| !v.is_null())
}

fn cel(ctx: &mut Ctx, n: &Node, path: &str, message: &str) {
    ctx.error(n, format!("`{path}`: Invalid value: \"object\": {message}"));
}

/// The checks of `kind` (its schema already checked).
pub fn check(ctx: &mut Ctx, kind: &str, root: &Node) {
    let Some(spec) = root
        .get("spec")
        .filter(|s| matches!(s.value, Value::Map(_)))
    else {
        return;
    };
    match kind {
        "Gateway" => gateway(ctx, spec),
        "HTTPRoute" | "GRPCRoute" | "TLSRoute" | "TCPRoute" | "UDPRoute" => route(ctx, kind, spec),
        "Ingress" => ingress(ctx, root, spec),
        "IngressClass" => ingress_class(ctx, spec),
        _ => {}
    }
}
