//! The structural schemas of networking.k8s.io/v1 Ingress and IngressClass
//! (their Go types: decoding refuses wrong types).

use super::object;
use crate::ingest::schema::{int, list, obj, opt, req, string, Ty};

/// A Go `string` of a built-in type: any length.
fn s() -> Ty {
    string(0, usize::MAX)
}

fn ingress_backend() -> Ty {
    obj(vec![
        opt(
            "service",
            obj(vec![
                opt("name", s()),
                opt(
                    "port",
                    obj(vec![
                        opt("name", s()),
                        opt("number", int(i64::from(i32::MIN), i64::from(i32::MAX))),
                    ]),
                ),
            ]),
        ),
        opt(
            "resource",
            obj(vec![
                opt("apiGroup", s()),
                opt("kind", s()),
                opt("name", s()),
            ]),
        ),
    ])
}

pub fn ingress() -> Ty {
    object(
        obj(vec![
            opt("ingressClassName", s()),
            opt("defaultBackend", ingress_backend()),
            opt(
                "tls",
                list(
                    obj(vec![
                        opt("hosts", list(s(), 0, usize::MAX)),
                        opt("secretName", s()),
                    ]),
                    0,
                    usize::MAX,
                ),
            ),
            opt(
                "rules",
                list(
                    obj(vec![
                        opt("host", s()),
                        opt(
                            "http",
                            obj(vec![req(
                                "paths",
                                list(
                                    obj(vec![
                                        opt("path", s()),
                                        opt("pathType", s()),
                                        req("backend", ingress_backend()),
                                    ]),
                                    0,
                                    usize::MAX,
                                ),
                            )]),
                        ),
                    ]),
                    0,
                    usize::MAX,
                ),
            ),
        ]),
        false,
    )
}

pub fn ingress_class() -> Ty {
    object(
        obj(vec![
            opt("controller", s()),
            opt(
                "parameters",
                obj(vec![
                    opt("apiGroup", s()),
                    opt("kind", s()),
                    opt("name", s()),
                    opt("namespace", s()),
                    opt("scope", s()),
                ]),
            ),
        ]),
        false,
    )
}
