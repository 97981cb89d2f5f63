#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The HTML report as text: header facts, one graph node per Gateway and per
//! Ingress controller, listeners without routes collapsed, the resolved
//! policy as tables with workload names, the matrix with its filters.
//! (The page in a real browser: crates/verdict-cli/tests/report.rs.)

use verdict_core::engine::Engine;
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::matrix::MatrixOptions;
use verdict_core::matrix_summary::summarise;
use verdict_core::paths::{paths, PathOptions};
use verdict_core::report::{render, ReportFinding, ReportMeta};
use verdict_core::routes::Routing;

const FILES: [(&str, &str); 5] = [
    (
        "examples/shop-gateway/namespaces.yaml",
        include_str!("../../../examples/shop-gateway/namespaces.yaml"),
    ),
    (
        "examples/shop-gateway/workloads.yaml",
        include_str!("../../../examples/shop-gateway/workloads.yaml"),
    ),
    (
        "examples/shop-gateway/gateway.yaml",
        include_str!("../../../examples/shop-gateway/gateway.yaml"),
    ),
    (
        "examples/shop-gateway/policies.yaml",
        include_str!("../../../examples/shop-gateway/policies.yaml"),
    ),
    ("extra.yaml", include_str!("data/report/extra.yaml")),
];

fn meta() -> ReportMeta {
    ReportMeta {
        version: "9.8.7".into(),
        revision: "abc1234".into(),
        inputs: vec![
            "examples/shop-gateway/".into(),
            "in</script><!--x\n.yaml".into(),
        ],
        flows: Vec::new(),
        generated: "2023-11-14T22:13:20Z".into(),
    }
}

fn page(files: &[(&str, &str)], meta: &ReportMeta) -> String {
    let mut inv = Inventory::new(ClusterConfig::default());
    for (name, text) in files {
        inv.load_text(name, text);
    }
    inv.complete_namespaces();
    let routing = Routing::from_inventory(&inv);
    let engine = Engine::new(&inv);
    let p = paths(&engine, &routing, &PathOptions::default());
    let m = summarise(&engine, &MatrixOptions::default());
    let findings = vec![ReportFinding {
        code: "VD000".into(),
        level: "warning".into(),
        location: "x.yaml:1".into(),
        message: "m".into(),
        help: "h".into(),
    }];
    render(&engine, &p, &m, &findings, meta)
}

/// The `<g class="node...">...</g>` element whose tooltip starts with `name`.
fn node<'a>(page: &'a str, name: &str) -> &'a str {
    let at = page
        .find(&format!("tabindex=\"0\"><title>{name}"))
        .unwrap_or_else(|| panic!("no node {name}"));
    let start = page[..at].rfind("<g class=\"node").unwrap();
    let end = at + page[at..].find("</g>").unwrap();
    &page[start..end]
}

/// The panel data of the page (the JSON document the script draws from).
fn panel_data(page: &str) -> serde_json::Value {
    let open = "<script type=\"application/json\" id=\"panel-data\">";
    let at = page.find(open).expect("panel data") + open.len();
    let end = at + page[at..].find("</script>").unwrap();
    serde_json::from_str(&page[at..end]).unwrap()
}

/// The group members' JSON document of a page.
fn group_members(p: &str) -> serde_json::Value {
    let start = p
        .find("<script type=\"application/json\" id=\"group-members\">")
        .unwrap();
    let body = &p[start..];
    let body = &body[body.find('>').unwrap() + 1..body.find("</script>").unwrap()];
    serde_json::from_str(body).unwrap()
}

/// The panel whose title is `name`, drawn as the page script draws it
/// (script.js `draw`), as markup text: the data's strings, rules and
/// shared bodies put back together.
fn policy_view(page: &str, name: &str) -> String {
    let d = panel_data(page);
    let s = |i: &serde_json::Value| {
        d["s"][i.as_u64().unwrap() as usize]
            .as_str()
            .unwrap()
            .to_string()
    };
    let prose = |t: String| {
        t.split('`')
            .enumerate()
            .map(|(i, x)| {
                if i % 2 == 1 {
                    format!("<code>{x}</code>")
                } else {
                    x.to_string()
                }
            })
            .collect::<String>()
    };
    let rules = |l: &serde_json::Value| {
        let mut out = l[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let r = &d["r"][r.as_u64().unwrap() as usize];
                format!("{} <span class=\"at\">{}</span>", s(&r[0]), s(&r[1]))
            })
            .collect::<Vec<_>>()
            .join("<br>");
        let more = l[1].as_u64().unwrap();
        if more > 0 {
            out.push_str(&format!(
                "<br>and {more} more rules (<code>verdict policy</code> lists them)"
            ));
        }
        out
    };
    let p = d["p"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| s(&p[0]) == name)
        .unwrap_or_else(|| panic!("no policy view for {name}"));
    let mut out = format!("<section class=\"policy-view\"><h3>{name}</h3>");
    if p[1].is_null() {
        return out + "<p>Not an endpoint of the input: no policy of its own.</p>";
    }
    let b = &d["b"][p[1][1].as_u64().unwrap() as usize];
    out.push_str(&format!(
        "<p class=\"ident\">{}</p><ul class=\"modes\">",
        s(&p[1][0])
    ));
    for m in b["modes"].as_array().unwrap() {
        out.push_str(&format!("<li><b>{}</b>: {}", s(&m[0]), s(&m[1])));
        if !m[2][0].as_array().unwrap().is_empty() {
            out.push_str(&format!("; selected by {}", rules(&m[2])));
        }
        out.push_str("</li>");
    }
    out.push_str("</ul>");
    if !b["note"].is_null() {
        out.push_str(&format!("<p>{}</p>", prose(s(&b["note"]))));
    }
    let rows = b["rows"].as_array().unwrap();
    if rows.is_empty() {
        return out + "<p>No entries: no rule names a peer of this endpoint.</p>";
    }
    let peer = if b["note"].is_null() { "peer" } else { "peers" };
    out.push_str(&format!("<table class=\"policy-table\"><thead><tr><th>direction</th><th>{peer}</th><th>protocol/port</th><th>decision</th><th>rule (file:line)</th></tr></thead><tbody>"));
    for r in rows {
        out.push_str(&format!("<tr class=\"{}\">", s(&r[0])));
        for i in 1..5 {
            out.push_str(&format!("<td>{}</td>", s(&r[i])));
        }
        out.push_str(&format!("<td>{}</td></tr>", rules(&r[5])));
    }
    out.push_str("</tbody></table>");
    if !b["tail"].is_null() {
        out.push_str(&format!("<p>{}</p>", prose(s(&b["tail"]))));
    }
    out
}

#[test]
fn header_states_version_revision_time_and_inputs() {
    let p = page(&FILES, &meta());
    assert!(
        p.contains("<dd id=\"meta-version\">9.8.7</dd>"),
        "{p:.2000}"
    );
    assert!(p.contains("<dd id=\"meta-revision\">abc1234</dd>"));
    assert!(p.contains(
        "<dd id=\"meta-time\"><time datetime=\"2023-11-14T22:13:20Z\">2023-11-14T22:13:20Z</time></dd>"
    ));
    assert!(p.contains("<li><code>examples/shop-gateway/</code></li>"));
    // An input path is text: escaped, its newline shown as `\n`.
    assert!(p.contains("<li><code>in&lt;/script&gt;&lt;!--x\\n.yaml</code></li>"));
    assert!(!p.contains("</script><!--") && !p.contains("<!--x"));
    assert!(!p.contains("id=\"meta-flows\""), "no flows given");
    let mut with_flows = meta();
    with_flows.flows = vec!["hubble.json".into()];
    let p = page(&FILES, &with_flows);
    assert!(p.contains("<dd id=\"meta-flows\"><ul><li><code>hubble.json</code></li></ul></dd>"));
}

#[test]
fn each_gateway_and_ingress_controller_is_one_node() {
    let p = page(&FILES, &meta());
    assert_eq!(p.matches("<g class=\"node entry\"").count(), 3, "{p}");
    let shop = node(&p, "Gateway shop/shop");
    assert!(
        shop.contains("via Cilium Envoy (reserved:ingress)"),
        "{shop}"
    );
    assert!(shop.contains("✓ http HTTP :80: 1 route"), "{shop}");
    let ingress = node(&p, "Ingress controller Cilium");
    assert!(
        ingress.contains("✓ shop/legacy http :80: 1 backend"),
        "{ingress}"
    );
    // The other Gateway: its listener with a route, and the three without
    // routes on one line (their names in its tooltip only).
    let internal = node(&p, "Gateway shop/internal");
    assert!(
        internal.contains("✓ admin HTTP :8081: 1 route"),
        "{internal}"
    );
    assert_eq!(internal.matches("class=\"line ").count(), 2, "{internal}");
    assert!(internal.contains(
        "<title>grpc HTTP :50051; https HTTPS :443; metrics HTTP :9100</title>3 listeners without routes</text>"
    ), "{internal}");
    // Clients and backends: world, the two Deployments.
    assert_eq!(p.matches("<g class=\"node\"").count(), 3);
    assert!(p.contains("<title>reserved:world -> Gateway shop/internal: allowed</title>"));
    assert!(p.contains("<title>Gateway shop/internal -> shop/deployment/api: allowed</title>"));
    assert!(!p.contains("Gateway shop/internal -> shop/deployment/frontend"));
    // The paths section lists the listeners without routes once.
    assert!(p.contains("<h3>Listeners without routes</h3><ul class=\"idle\"><li>Gateway shop/internal: https (HTTPS :443), grpc (HTTP :50051), metrics (HTTP :9100)</li></ul>"), "{p}");
}

#[test]
fn a_denied_hop_is_drawn_red_and_marked_on_its_listener() {
    // Without the policies, nothing is enforced: every path allowed. With
    // only the backends' policies, hop 2 is allowed too; drop the backend
    // policy of the frontend and add a default deny on it instead.
    let deny = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: lock, namespace: shop}\nspec:\n  endpointSelector: {matchLabels: {app: frontend}}\n  ingress: [{}]\n";
    let mut files: Vec<(&str, &str)> = FILES.to_vec();
    files.retain(|(n, _)| !n.ends_with("policies.yaml"));
    files.push(("lock.yaml", deny));
    let p = page(&files, &meta());
    assert!(p.contains("class=\"edge denied\""), "{p}");
    assert!(p.contains("<title>Gateway shop/shop -> shop/deployment/frontend: denied</title>"));
    let shop = node(&p, "Gateway shop/shop");
    assert!(shop.contains("class=\"line l-denied\""), "{shop}");
    assert!(shop.contains("✗ http HTTP :80: 1 route"), "{shop}");
}

#[test]
fn policy_panel_is_a_table_with_workload_names() {
    let p = page(&FILES, &meta());
    let gw = policy_view(&p, "reserved:ingress");
    assert!(gw.contains("<th>direction</th><th>peer</th><th>protocol/port</th><th>decision</th><th>rule (file:line)</th>"), "{gw}");
    assert!(gw.contains("<li><b>egress</b>: enforced, default deny; selected by CiliumClusterwideNetworkPolicy world-to-gateway spec"), "{gw}");
    assert!(gw.contains(
        "<tr class=\"allowed\"><td>egress</td><td>shop/deployment/api</td><td>TCP/8080</td><td>allowed</td><td>CiliumClusterwideNetworkPolicy world-to-gateway spec.egress[0] <span class=\"at\">examples/shop-gateway/policies.yaml:15</span></td></tr>"
    ), "{gw}");
    assert!(gw.contains("<tr class=\"allowed\"><td>ingress</td><td>world</td><td>ANY/*</td><td>allowed</td><td>CiliumClusterwideNetworkPolicy world-to-gateway spec.ingress[0] "), "{gw}");
    let api = policy_view(&p, "shop/deployment/api");
    assert!(api.contains("<td>ingress</td><td>ingress</td><td>TCP/8080</td><td>allowed</td><td>CiliumNetworkPolicy shop/api-from-gateway spec.ingress[0] <span class=\"at\">examples/shop-gateway/policies.yaml:52</span></td>"), "{api}");
    // Peers are named as `verdict policy` and `trace` name them (names.rs).
    assert!(!gw.contains("<td>reserved:"), "{gw}");
    // No identity label text where a workload name exists.
    assert!(!gw.contains("k8s:app="), "{gw}");
    // Elements carry keys, and every key an element carries has its view
    // (the data also holds panels for identities the page shows nowhere:
    // it is formed before the matrix says which it shows).
    let data = panel_data(&p);
    let keys: std::collections::BTreeSet<usize> = p
        .split("data-name=\"p")
        .skip(1)
        .map(|k| k[..k.find('"').unwrap()].parse().unwrap())
        .collect();
    assert!(keys.len() >= 5, "{keys:?}");
    for k in keys {
        assert!(data["p"][k].is_array(), "p{k}");
    }
}

#[test]
fn matrix_has_filters_and_a_body_of_rows() {
    let p = page(&FILES, &meta());
    for id in ["mf-q", "mf-from", "mf-to", "mf-flags", "mf-count"] {
        assert!(p.contains(&format!("id=\"{id}\"")), "{id}");
    }
    let table = &p[p.find("<table id=\"matrix\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    let rows = table.matches("<tr><td class=\"clickable\"").count();
    assert!(rows >= 4, "{table}");
    assert!(p.contains(&format!("{rows} of {rows} connections shown")));
    assert!(
        table.contains("<td class=\"clickable\" data-name=\"p"),
        "{table}"
    );
}

#[test]
fn page_is_self_contained_deterministic_and_has_one_script() {
    let a = page(&FILES, &meta());
    let b = page(&FILES, &meta());
    assert_eq!(a, b);
    // The page script and the panel data (JSON, not run).
    assert_eq!(a.matches("<script").count(), 2);
    assert_eq!(
        a.matches("<script type=\"application/json\" id=\"panel-data\">")
            .count(),
        1
    );
    assert!(!a.contains("src=") && !a.contains("<link") && !a.contains("url("));
    // The only address on the page is the SVG namespace (not loaded).
    assert_eq!(a.matches("://").count(), 1);
    assert!(a.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(a.contains("<meta name=\"viewport\""));
    assert!(
        a.contains("<h2>Paths</h2>"),
        "the replay section is inserted before it"
    );
}

#[test]
fn large_matrix_is_grouped_and_large_maps_are_summarised() {
    let text = include_str!("data/report-grouped/big.yaml");
    let p = page(&[("big.yaml", text)], &meta());
    let table = &p[p.find("<table id=\"matrix\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    // Two rows: every member of the 40 reaches every member of the 40, and
    // the node reaches them all (allow-localhost).
    assert_eq!(table.matches("<tr><td").count(), 2, "{table}");
    assert!(
        table.contains(
            "<td data-g=\"0\">G1 (40: big/app-0, …)</td><td data-g=\"0\">G1 (40: big/app-0, …)</td><td>TCP/8000-8012</td>"
        ),
        "{table}"
    );
    assert!(
        table.contains(">reserved:host</td><td data-g=\"0\">G1 (40: big/app-0, …)</td>"),
        "{table}"
    );
    assert!(
        p.contains("1640 allowed connections, shown as 2 rows between groups"),
        "{}",
        &p[..p.len().min(4000)]
    );
    assert!(p.contains("2 of 2 rows shown"));
    // The groups table: a row per group, its first members shown, all of
    // them in the members' data (each node once, with its panel number;
    // the group's members as ranges of indices), each with its panel.
    let groups = &p[p.find("<table id=\"matrix-groups\">").unwrap()..];
    let groups = &groups[..groups.find("</table>").unwrap()];
    assert!(
        groups.contains("<tr id=\"group-G1\"><td>G1 (40)</td><td><details data-g=\"0\"><summary>big/app-0, big/app-1, big/app-10, …</summary></details></td></tr>"),
        "{groups}"
    );
    let data = group_members(&p);
    let names: Vec<&str> = data["n"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let mut want: Vec<String> = (0..40).map(|a| format!("big/app-{a}")).collect();
    want.sort();
    assert_eq!(names, want);
    assert_eq!(data["g"][0], "0-39");
    let panels = panel_data(&p);
    for (i, name) in names.iter().enumerate() {
        let k = data["k"][i].as_u64().unwrap() as usize;
        let title = panels["p"][k][0].as_u64().unwrap() as usize;
        assert_eq!(panels["s"][title], *name, "member {name}: panel p{k}");
    }
    // Panels: 40 peers x 13 ports = 520 rows, shown as 13 entries.
    let panel = policy_view(&p, "big/app-0");
    assert!(
        panel.contains("13 entries standing for 520 (peer, port) rows"),
        "{panel}"
    );
    assert_eq!(
        panel.matches("<tr class=\"allowed\">").count(),
        13,
        "{panel}"
    );
    assert!(panel.contains("40 peers: big/pod/app-"), "{panel}");
    // The 40 members' panels read alike below their title and identity:
    // one body, stored once.
    let d = panel_data(&p);
    let members: Vec<&serde_json::Value> = d["p"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| {
            d["s"][x[0].as_u64().unwrap() as usize]
                .as_str()
                .unwrap()
                .starts_with("big/app-")
        })
        .collect();
    assert_eq!(members.len(), 40);
    assert!(members.iter().all(|x| x[1][1] == members[0][1][1]));
    assert!(d["b"].as_array().unwrap().len() < 5, "{}", d["b"]);
    // Linear: the page stays far smaller than a row per pair would make it.
    assert!(p.len() < 400_000, "{} bytes", p.len());
}

/// Four bare pods like the api's (same labels and port) behind its Service.
fn api_replicas() -> String {
    (0..4)
        .map(|i| format!("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: api-extra-{i}\n  namespace: shop\n  labels:\n    app: api\nspec:\n  containers:\n    - name: api\n      image: x\n      ports:\n        - name: http\n          containerPort: 8080\n"))
        .collect()
}

#[test]
fn replicas_with_one_verdict_are_one_paths_row() {
    let extra = api_replicas();
    let mut files: Vec<(&str, &str)> = FILES.to_vec();
    files.push(("replicas.yaml", &extra));
    let p = page(&files, &meta());
    let paths = &p[p.find("<h2>Paths</h2>").unwrap()..p.find("<h2>Lint findings</h2>").unwrap()];
    // The five api backends of the shop Gateway's route (the Deployment
    // and the four pods): one row, the first three named and the count.
    assert!(
        paths.contains("<td>shop/api:80</td><td>5 backends: shop/deployment/api, shop/api-extra-0, shop/api-extra-1, …</td><td>allowed</td>"),
        "{paths}"
    );
    assert!(!paths.contains("<td>shop/api-extra-3</td>"), "{paths}");
    // One panel per identity: the four bare pods (one identity, without
    // the Deployment's pod-template-hash) add one panel, not four.
    let base = page(&FILES, &meta());
    let panels = |p: &str| panel_data(p)["p"].as_array().unwrap().len();
    assert_eq!(panels(&p), panels(&base) + 1);
}

/// A subject selected by seven policies of 15 ports each: 105 entries.
#[test]
fn long_rule_lists_and_entry_tables_are_capped() {
    let mut y = String::from("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: big\n");
    for a in 0..3 {
        y.push_str(&format!("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: app-{a}\n  namespace: big\n  labels:\n    app: app-{a}\n    part: member\nspec:\n  containers:\n    - name: c\n      image: x\n"));
    }
    for n in 0..7 {
        let ports: String = (0..15)
            .map(|i| format!("            - port: \"{}\"\n", 1000 * n + i + 1))
            .collect();
        y.push_str(&format!("---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: pol-{n}\n  namespace: big\nspec:\n  endpointSelector: {{}}\n  ingress:\n    - fromEndpoints:\n        - matchLabels:\n            part: member\n      toPorts:\n        - ports:\n{ports}"));
    }
    let p = page(&[("big.yaml", &y)], &meta());
    let panel = policy_view(&p, "big/app-0");
    // Five of the seven selecting policies named, the other two counted.
    assert!(
        panel.contains("<span class=\"at\">big.yaml:167</span><br>and 2 more rules (<code>verdict policy</code> lists them)</li>"),
        "{panel}"
    );
    assert!(
        panel.contains("105 entries standing for 315 (peer, port) rows"),
        "{panel}"
    );
    assert_eq!(
        panel.matches("<tr class=\"allowed\">").count(),
        40,
        "{panel}"
    );
    assert!(
        panel
            .contains("The first 40 entries of 105 (<code>verdict policy</code> lists every row)."),
        "{panel}"
    );
}
