//! Party names as a person reads them, and "did you mean" suggestions.
//!
//! Text views show workloads as the input names them (`shop/deployment/api`,
//! bare pods `shop/pod/api-7d4f9c-abcde`, which the model names
//! `shop/api-7d4f9c-abcde`), reserved
//! identities by their entity name (`world`, `host`) and CIDR identities as
//! CIDRs; `trace --from/--to`, `policy` and `matrix --workload` accept every
//! one of these back. JSON keeps Cilium's names (`reserved:world`,
//! `cidr:10.0.0.0/8`).

use std::collections::BTreeMap;

/// A party's name for text views: `reserved:world` -> `world`,
/// `reserved:ingress` -> `ingress (Cilium's Envoy)` (with `described`),
/// `cidr:10.0.0.0/8` -> `10.0.0.0/8`; workloads unchanged.
pub fn party_text(name: &str, described: bool) -> String {
    if let Some(r) = name.strip_prefix("reserved:") {
        return match (r, described) {
            ("ingress", true) => "ingress (Cilium's Envoy)".to_string(),
            _ => r.to_string(),
        };
    }
    if let Some(c) = name.strip_prefix("cidr:") {
        return c.to_string();
    }
    // A bare pod is `ns/name` in the model (every other workload is
    // `ns/kind/name`): shown as `ns/pod/name`, which is accepted back too.
    match name.split_once('/') {
        Some((ns, pod)) if !pod.contains('/') && !ns.is_empty() => format!("{ns}/pod/{pod}"),
        _ => name.to_string(),
    }
}

/// Identity number -> how text views name it: the workloads carrying it
/// ([`party_text`]: `shop/deployment/api`, `shop/pod/pod-a`; several
/// joined with `, `), reserved identities by their entity name (`world`).
/// Identities of no workload are absent (callers fall back to labels).
pub fn identity_names(engine: &crate::engine::Engine) -> BTreeMap<u32, String> {
    let mut names: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for ep in engine.endpoints.iter().flatten() {
        let (Some(w), Some(id)) = (
            engine.inv.workloads.get(ep.workload),
            engine.identities.get(ep.identity),
        ) else {
            continue;
        };
        names
            .entry(id.id)
            .or_default()
            .push(party_text(&w.display_name(), false));
    }
    let mut out: BTreeMap<u32, String> = names
        .into_iter()
        .map(|(id, mut v)| {
            v.sort();
            v.dedup();
            (id, v.join(", "))
        })
        .collect();
    for id in &engine.identities {
        if let Some(n) = id.reserved_name() {
            out.insert(id.id, n.to_string());
        }
    }
    out
}

/// A party of the matrix or of a connectivity diff as `trace --from/--to`
/// and `policy` accept it back: workloads as `ns/kind/name`, `world`,
/// `ingress`, `host`, CIDRs as `10.0.0.0/8`.
pub fn node_text(name: &str) -> String {
    match name.strip_prefix("cidr ") {
        Some(c) => c.to_string(),
        // Several workloads of one identity: `a, b`.
        None => name
            .split(", ")
            .map(|n| party_text(n, false))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The names among `candidates` closest to `wanted`, best first, ties in
/// name order, at most 3. Closeness ignores case: the normalised
/// Damerau-Levenshtein similarity of the last `/` segments (a typo in the
/// name, or a fragment such as `--workload apj`), or of the whole names
/// (less 0.1), at least 0.6; a candidate containing `wanted` counts as
/// close.
pub fn closest<'c>(wanted: &str, candidates: impl IntoIterator<Item = &'c str>) -> Vec<String> {
    let w = wanted.to_lowercase();
    let last = |s: &str| s.rsplit('/').next().unwrap_or("").to_string();
    let w_last = last(&w);
    let mut scored: Vec<(u64, &str)> = candidates
        .into_iter()
        .filter(|c| !c.is_empty() && *c != wanted)
        .filter_map(|c| {
            let lc = c.to_lowercase();
            let whole = strsim::normalized_damerau_levenshtein(&w, &lc) - 0.1;
            let name = strsim::normalized_damerau_levenshtein(&w_last, &last(&lc));
            let mut s = whole.max(name);
            if !w.is_empty() && lc.contains(&w) {
                s = s.max(0.9);
            }
            // Scaled to an integer: a total order without float compares.
            let key = (s.clamp(0.0, 1.0) * 1_000_000.0) as u64;
            (s >= 0.6).then_some((key, c))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let mut out: Vec<String> = Vec::new();
    for (_, c) in scored {
        if !out.iter().any(|o| o == c) {
            out.push(c.to_string());
        }
        if out.len() == 3 {
            break;
        }
    }
    out
}

/// `; did you mean `a`, `b`?` or nothing.
pub fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = suggestions.iter().map(|s| format!("`{s}`")).collect();
    format!("; did you mean {}?", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_cidr_names_read_plainly() {
        assert_eq!(party_text("reserved:world", true), "world");
        assert_eq!(
            party_text("reserved:ingress", true),
            "ingress (Cilium's Envoy)"
        );
        assert_eq!(party_text("reserved:ingress", false), "ingress");
        assert_eq!(party_text("cidr:10.0.0.0/8", true), "10.0.0.0/8");
        assert_eq!(
            party_text("shop/deployment/api", true),
            "shop/deployment/api"
        );
    }

    #[test]
    fn closest_is_sorted_and_bounded() {
        let c = [
            "shop/deployment/api",
            "shop/deployment/apx",
            "shop/deployment/frontend",
            "other/deployment/api",
            "shop/deployment/ap",
        ];
        // Three equally close names, in name order; `frontend` is not close.
        assert_eq!(
            closest("shop/deployment/apj", c),
            [
                "shop/deployment/ap",
                "shop/deployment/api",
                "shop/deployment/apx"
            ]
        );
        // A fragment (`--workload fronted`) is compared with the last segment.
        assert_eq!(closest("fronted", c), ["shop/deployment/frontend"]);
        assert!(closest("zzzzzz", c).is_empty());
    }
}
