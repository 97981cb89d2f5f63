//! The structural schemas of the routing kinds, as the API server checks
//! them: Gateway API CRDs (kubernetes-sigs/gateway-api `apis/v1/*_types.go`
//! kubebuilder markers, `config/crd/standard`), and the Go types of
//! networking.k8s.io/v1 Ingress and IngressClass (whose decoding refuses
//! wrong types; their value rules are in `routing_rules/`). The Gateway API
//! schemas are in `gateway.rs`, Ingress and IngressClass in `ingress.rs`.
//!
//! Where the Gateway API releases differ (limits raised, fields added),
//! the more permissive schema is used so that no object valid for a
//! release Cilium ships is refused; see docs/validation.md.

mod gateway;
mod ingress;

use super::schema::{obj, opt, req, string, Ty};
pub use gateway::PATTERNS;
use gateway::{gateway, gateway_class, grpc_route, http_route, l4_route, reference_grant};
use ingress::{ingress, ingress_class};

/// The fields every object has; `spec` is the kind's.
fn object(spec: Ty, spec_required: bool) -> Ty {
    obj(vec![
        opt("apiVersion", string(0, usize::MAX)),
        opt("kind", string(0, usize::MAX)),
        // Checked when the object is loaded (name, namespace, labels).
        opt("metadata", Ty::AnyMap),
        if spec_required {
            req("spec", spec)
        } else {
            opt("spec", spec)
        },
        opt("status", Ty::AnyMap),
    ])
}

/// The schema of a routing kind.
pub fn of_kind(kind: &str) -> Option<Ty> {
    Some(match kind {
        "Gateway" => gateway(),
        "GatewayClass" => gateway_class(),
        "HTTPRoute" => http_route(),
        "GRPCRoute" => grpc_route(),
        "TLSRoute" => l4_route(true),
        "TCPRoute" | "UDPRoute" => l4_route(false),
        "ReferenceGrant" => reference_grant(),
        "Ingress" => ingress(),
        "IngressClass" => ingress_class(),
        _ => return None,
    })
}
