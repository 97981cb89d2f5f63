//! The structural schemas of the Gateway API kinds (kubernetes-sigs/gateway-api
//! `apis/v1/*_types.go` kubebuilder markers, `config/crd/standard`).

use super::object;
use crate::ingest::schema::{int, list, obj, one_of, opt, pattern, req, string, Pattern, Ty};

static DNS_SUBDOMAIN: Pattern =
    Pattern::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$");
static GROUP: Pattern =
    Pattern::new(r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$");
static KIND: Pattern = Pattern::new(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$");
static NAMESPACE: Pattern = Pattern::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$");
static HOSTNAME: Pattern =
    Pattern::new(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$");
static HEADER_NAME: Pattern = Pattern::new(r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$");
static DURATION: Pattern = Pattern::new(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$");
static CONTROLLER: Pattern = Pattern::new(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$",
);
static PROTOCOL: Pattern = Pattern::new(
    r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]+$",
);

/// Every pattern, for the test that they compile.
pub static PATTERNS: [&Pattern; 10] = [
    &DNS_SUBDOMAIN,
    &GROUP,
    &KIND,
    &NAMESPACE,
    &HOSTNAME,
    &HEADER_NAME,
    &DURATION,
    &CONTROLLER,
    &PROTOCOL,
    &PRECISE_HOSTNAME,
];
static PRECISE_HOSTNAME: Pattern =
    Pattern::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$");

fn group() -> Ty {
    pattern(0, 253, &GROUP)
}
fn kind() -> Ty {
    pattern(1, 63, &KIND)
}
fn object_name() -> Ty {
    string(1, 253)
}
fn namespace() -> Ty {
    pattern(1, 63, &NAMESPACE)
}
fn section_name() -> Ty {
    pattern(1, 253, &DNS_SUBDOMAIN)
}
fn port() -> Ty {
    int(1, 65535)
}
fn hostname() -> Ty {
    pattern(1, 253, &HOSTNAME)
}
fn precise_hostname() -> Ty {
    pattern(1, 253, &PRECISE_HOSTNAME)
}
fn header_name() -> Ty {
    pattern(1, 256, &HEADER_NAME)
}
fn duration() -> Ty {
    pattern(0, usize::MAX, &DURATION)
}
fn string_map(max: usize) -> Ty {
    Ty::StrMap { max }
}

fn label_selector() -> Ty {
    obj(vec![
        opt("matchLabels", string_map(usize::MAX)),
        opt(
            "matchExpressions",
            list(
                obj(vec![
                    req("key", string(0, usize::MAX)),
                    req(
                        "operator",
                        one_of(&["In", "NotIn", "Exists", "DoesNotExist"]),
                    ),
                    opt("values", list(string(0, usize::MAX), 0, usize::MAX)),
                ]),
                0,
                usize::MAX,
            ),
        ),
    ])
}

fn parent_ref() -> Ty {
    obj(vec![
        opt("group", group()),
        opt("kind", kind()),
        opt("namespace", namespace()),
        req("name", object_name()),
        opt("sectionName", section_name()),
        opt("port", port()),
    ])
}

fn backend_object_ref(extra: Vec<crate::ingest::schema::Field>) -> Ty {
    let mut fields = vec![
        opt("group", group()),
        opt("kind", kind()),
        req("name", object_name()),
        opt("namespace", namespace()),
        opt("port", port()),
    ];
    fields.extend(extra);
    obj(fields)
}

fn backend_ref() -> Ty {
    backend_object_ref(vec![opt("weight", int(0, 1_000_000))])
}

fn header_modifier() -> Ty {
    let header = || {
        obj(vec![
            req("name", header_name()),
            req("value", string(1, 4096)),
        ])
    };
    obj(vec![
        opt("set", list(header(), 0, 16)),
        opt("add", list(header(), 0, 16)),
        opt("remove", list(string(0, usize::MAX), 0, 16)),
    ])
}

fn path_modifier() -> Ty {
    obj(vec![
        req("type", one_of(&["ReplaceFullPath", "ReplacePrefixMatch"])),
        opt("replaceFullPath", string(0, 1024)),
        opt("replacePrefixMatch", string(0, 1024)),
    ])
}

fn local_object_ref() -> Ty {
    obj(vec![
        req("group", group()),
        req("kind", kind()),
        req("name", object_name()),
    ])
}

fn request_mirror() -> Ty {
    obj(vec![
        req("backendRef", backend_object_ref(Vec::new())),
        opt("percent", int(0, 100)),
        opt(
            "fraction",
            obj(vec![
                req("numerator", int(0, i64::from(i32::MAX))),
                opt("denominator", int(1, i64::from(i32::MAX))),
            ]),
        ),
    ])
}

/// HTTPRouteFilter; `grpc` limits the types to GRPCRouteFilter's.
fn filter(grpc: bool) -> Ty {
    let mut fields = vec![
        req(
            "type",
            if grpc {
                one_of(&[
                    "ResponseHeaderModifier",
                    "RequestHeaderModifier",
                    "RequestMirror",
                    "ExtensionRef",
                ])
            } else {
                one_of(&[
                    "RequestHeaderModifier",
                    "ResponseHeaderModifier",
                    "RequestMirror",
                    "RequestRedirect",
                    "URLRewrite",
                    "ExtensionRef",
                    "CORS",
                    "ExternalAuth",
                ])
            },
        ),
        opt("requestHeaderModifier", header_modifier()),
        opt("responseHeaderModifier", header_modifier()),
        opt("requestMirror", request_mirror()),
        opt("extensionRef", local_object_ref()),
    ];
    if !grpc {
        fields.push(opt(
            "requestRedirect",
            obj(vec![
                opt("scheme", one_of(&["http", "https"])),
                opt("hostname", precise_hostname()),
                opt("path", path_modifier()),
                opt("port", port()),
                opt("statusCode", int(301, 308)),
            ]),
        ));
        fields.push(opt(
            "urlRewrite",
            obj(vec![
                opt("hostname", precise_hostname()),
                opt("path", path_modifier()),
            ]),
        ));
        // Experimental filters whose content takes no part in reachability.
        fields.push(opt("cors", Ty::AnyMap));
        fields.push(opt("externalAuth", Ty::AnyMap));
    }
    obj(fields)
}

fn header_match(max_value: usize) -> Ty {
    obj(vec![
        opt("type", one_of(&["Exact", "RegularExpression"])),
        req("name", header_name()),
        req("value", string(1, max_value)),
    ])
}

fn route_common(
    mut fields: Vec<crate::ingest::schema::Field>,
) -> Vec<crate::ingest::schema::Field> {
    fields.insert(0, opt("parentRefs", list(parent_ref(), 0, 32)));
    fields.push(opt("useDefaultGateways", one_of(&["All", "None"])));
    fields
}

/// A rule of HTTPRoute or GRPCRoute: its `matches` items, its filters
/// (`grpc` limits them to GRPCRouteFilter's) and the fields only one of the
/// two kinds has.
fn filtered_rule(match_item: Ty, grpc: bool, extra: Vec<crate::ingest::schema::Field>) -> Ty {
    let mut fields = vec![
        opt("name", section_name()),
        opt("matches", list(match_item, 0, 64)),
        opt("filters", list(filter(grpc), 0, 16)),
        opt(
            "backendRefs",
            list(
                backend_object_ref(vec![
                    opt("weight", int(0, 1_000_000)),
                    opt("filters", list(filter(grpc), 0, 16)),
                ]),
                0,
                16,
            ),
        ),
    ];
    fields.extend(extra);
    fields.push(opt("sessionPersistence", Ty::AnyMap));
    obj(fields)
}

/// A route kind with `hostnames` and up to 16 rules.
fn hostname_route(rule: Ty) -> Ty {
    object(
        obj(route_common(vec![
            opt("hostnames", list(hostname(), 0, 16)),
            opt("rules", list(rule, 0, 16)),
        ])),
        true,
    )
}

pub fn http_route() -> Ty {
    let matches = obj(vec![
        opt(
            "path",
            obj(vec![
                opt(
                    "type",
                    one_of(&["Exact", "PathPrefix", "RegularExpression"]),
                ),
                opt("value", string(0, 1024)),
            ]),
        ),
        opt("headers", list(header_match(4096), 0, 16)),
        opt("queryParams", list(header_match(1024), 0, 16)),
        opt(
            "method",
            one_of(&[
                "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
            ]),
        ),
    ]);
    hostname_route(filtered_rule(
        matches,
        false,
        vec![
            opt(
                "timeouts",
                obj(vec![
                    opt("request", duration()),
                    opt("backendRequest", duration()),
                ]),
            ),
            opt(
                "retry",
                obj(vec![
                    opt("codes", list(int(400, 599), 0, usize::MAX)),
                    opt("attempts", int(i64::MIN, i64::MAX)),
                    opt("backoff", duration()),
                ]),
            ),
        ],
    ))
}

pub fn grpc_route() -> Ty {
    let matches = obj(vec![
        opt(
            "method",
            obj(vec![
                opt("type", one_of(&["Exact", "RegularExpression"])),
                opt("service", string(0, 1024)),
                opt("method", string(0, 1024)),
            ]),
        ),
        opt("headers", list(header_match(4096), 0, 16)),
    ]);
    hostname_route(filtered_rule(matches, true, Vec::new()))
}

/// TLSRoute, TCPRoute, UDPRoute: rules of backendRefs only.
pub fn l4_route(with_hostnames: bool) -> Ty {
    let rule = obj(vec![
        opt("name", section_name()),
        req("backendRefs", list(backend_ref(), 1, 16)),
    ]);
    let mut fields = vec![req("rules", list(rule, 1, 16))];
    if with_hostnames {
        fields.insert(0, opt("hostnames", list(hostname(), 0, 16)));
    }
    object(obj(route_common(fields)), true)
}

pub fn gateway() -> Ty {
    let listener = obj(vec![
        req("name", section_name()),
        opt("hostname", hostname()),
        req("port", port()),
        req("protocol", pattern(1, 255, &PROTOCOL)),
        opt(
            "tls",
            obj(vec![
                opt("mode", one_of(&["Terminate", "Passthrough"])),
                opt(
                    "certificateRefs",
                    list(
                        obj(vec![
                            opt("group", group()),
                            opt("kind", kind()),
                            req("name", object_name()),
                            opt("namespace", namespace()),
                        ]),
                        0,
                        64,
                    ),
                ),
                opt("frontendValidation", Ty::AnyMap),
                opt("options", string_map(16)),
            ]),
        ),
        opt(
            "allowedRoutes",
            obj(vec![
                opt(
                    "namespaces",
                    obj(vec![
                        opt("from", one_of(&["All", "Selector", "Same"])),
                        opt("selector", label_selector()),
                    ]),
                ),
                opt(
                    "kinds",
                    list(obj(vec![opt("group", group()), req("kind", kind())]), 0, 8),
                ),
            ]),
        ),
    ]);
    object(
        obj(vec![
            req("gatewayClassName", object_name()),
            req("listeners", list(listener, 1, 64)),
            opt(
                "addresses",
                list(
                    obj(vec![
                        opt("type", string(1, 253)),
                        req("value", string(1, 253)),
                    ]),
                    0,
                    16,
                ),
            ),
            opt(
                "infrastructure",
                obj(vec![
                    opt("labels", string_map(8)),
                    opt("annotations", string_map(8)),
                    opt("parametersRef", local_object_ref()),
                ]),
            ),
            // Fields of later releases whose content takes no part in
            // reachability.
            opt("backendTLS", Ty::AnyMap),
            opt("allowedListeners", Ty::AnyMap),
            opt("tls", Ty::AnyMap),
            opt("defaultScope", string(0, usize::MAX)),
        ]),
        true,
    )
}

pub fn gateway_class() -> Ty {
    object(
        obj(vec![
            req("controllerName", pattern(1, 253, &CONTROLLER)),
            opt(
                "parametersRef",
                obj(vec![
                    req("group", group()),
                    req("kind", kind()),
                    req("name", string(1, 253)),
                    opt("namespace", namespace()),
                ]),
            ),
            opt("description", string(0, 64)),
        ]),
        true,
    )
}

pub fn reference_grant() -> Ty {
    object(
        obj(vec![
            req(
                "from",
                list(
                    obj(vec![
                        req("group", group()),
                        req("kind", kind()),
                        req("namespace", namespace()),
                    ]),
                    1,
                    16,
                ),
            ),
            req(
                "to",
                list(
                    obj(vec![
                        req("group", group()),
                        req("kind", kind()),
                        opt("name", object_name()),
                    ]),
                    1,
                    16,
                ),
            ),
        ]),
        true,
    )
}
