#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Names, labels, host names and file paths holding control characters,
//! newlines, quotes, `|`, backticks, `<!--<script>`, `</script>`, Unicode
//! line separators, bidirectional overrides and very long text: every
//! command's every format stays well-formed, nothing reaches the terminal
//! raw, and distinct workloads stay distinct nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A deployment name without `/` (party names are split at `/`): a newline
/// starting a forged line, an ANSI colour, `|`, backticks, a comma, quotes,
/// `<!--<script>`, U+2028, a right-to-left override, DEL and NEL (C1).
const NAME_YAML: &str = r#"api\nFORGED \x1b[31m|`c`,\"q\"<!--<script>\u2028\u202e\x7f\u0085x"#;
const NAME: &str = "api\nFORGED \u{1b}[31m|`c`,\"q\"<!--<script>\u{2028}\u{202e}\u{7f}\u{85}x";
/// With `/`: for a route, a policy and a label value.
const SLASHED_YAML: &str = r#"r</script><!--<script>\nFORGED|`\r\x1b]0;title\x07"#;
/// The manifests' file name.
const FILE: &str = "evil\nFORGED \u{1b}[2J|`<!--<script>,\"q\".yaml";

/// Hostile strings sit where verdict still reads an object that holds
/// them (object names are reported, and read). A listener name or route
/// hostname holding them makes the API server refuse the whole Gateway or
/// HTTPRoute (docs/validation.md), so those fields hold plain values.
fn manifests() -> String {
    let long = "l".repeat(300);
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: shop}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: "{NAME_YAML}", namespace: shop}}
spec:
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api, team: "{SLASHED_YAML}"}}}}
    spec: {{containers: [{{name: c, image: x, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: a-b, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: ab1}}}}
  template:
    metadata: {{labels: {{app: ab1}}}}
    spec: {{containers: [{{name: c, image: x}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: a.b, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: ab2}}}}
  template:
    metadata: {{labels: {{app: ab2}}}}
    spec: {{containers: [{{name: c, image: x}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {long}, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: long}}}}
  template:
    metadata: {{labels: {{app: long}}}}
    spec: {{containers: [{{name: c, image: x}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: api, namespace: shop}}
spec:
  selector: {{app: api}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: "gw\x1b]0;pwned\x07{NAME_YAML}", namespace: shop}}
spec:
  gatewayClassName: cilium
  listeners: [{{name: http, protocol: HTTP, port: 80}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: "{SLASHED_YAML}", namespace: shop}}
spec:
  parentRefs: [{{name: "gw\x1b]0;pwned\x07{NAME_YAML}"}}]
  hostnames: ["h.example.com"]
  rules:
    - backendRefs: [{{name: api, port: 80}}]
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {{name: "world-to-gateway\nFORGED"}}
spec:
  endpointSelector: {{matchExpressions: [{{key: "reserved:ingress", operator: Exists}}]}}
  ingress: [{{fromEntities: [world]}}]
  egress: [{{toEntities: [cluster]}}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: "{SLASHED_YAML}", namespace: shop}}
spec:
  endpointSelector: {{matchLabels: {{app: api}}}}
  ingress:
    - fromEntities: [ingress]
      toPorts: [{{ports: [{{port: "8080", protocol: TCP}}]}}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: world-to-ab, namespace: shop}}
spec:
  endpointSelector: {{matchExpressions: [{{key: app, operator: In, values: [ab1, ab2, long]}}]}}
  ingress:
    - fromEntities: [world]
      toPorts: [{{ports: [{{port: "9000", protocol: TCP}}]}}]
"#
    )
}

fn setup(name: &str) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("verdict-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let new = root.join("new");
    let old = root.join("old");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::create_dir_all(&old).unwrap();
    let text = manifests();
    std::fs::write(new.join(FILE), &text).unwrap();
    // The old side lacks the policy that opens port 9000.
    let cut = text.find("---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: world-to-ab").unwrap();
    std::fs::write(old.join(FILE), &text[..cut]).unwrap();
    let test = format!(
        "apiVersion: verdict.dev/v1\nkind: PolicyTest\nmetadata: {{name: \"t\\nFORGED\"}}\nspec:\n  files: [\"new/{}\"]\n  flows:\n    - {{from: world, to: \"shop/deployment/{NAME_YAML}\", port: 8080, expect: allowed}}\n",
        FILE.replace('\n', "\\n")
            .replace('\u{1b}', "\\x1b")
            .replace('"', "\\\"")
    );
    std::fs::write(root.join("t.yaml"), test).unwrap();
    (root, new)
}

fn verdict(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(args)
        .output()
        .unwrap()
}

/// What must never reach a terminal raw (independent of the code under
/// test): controls, line separators, bidirectional formatting.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{61c}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Text for a terminal: no raw control character but the line breaks, and
/// no line forged by a newline in a name.
fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    if let Some(c) = text.chars().find(|&c| c != '\n' && unsafe_char(c)) {
        panic!("{what}: raw {c:?} in output:\n{text}");
    }
    for l in text.lines() {
        assert!(
            !l.trim_start().starts_with("FORGED"),
            "{what}: a name started a line of its own: {l:?}\n{text}"
        );
    }
}

fn run(what: &str, args: &[&str]) -> Output {
    let o = verdict(args);
    assert!(
        matches!(o.status.code(), Some(0..=2)),
        "{what}: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    assert_terminal_safe(&format!("{what} (stderr)"), &o.stderr);
    o
}

/// Text output: safe, and the hostile name shown (escaped).
fn text(what: &str, args: &[&str]) -> String {
    let o = run(what, args);
    assert_terminal_safe(what, &o.stdout);
    String::from_utf8(o.stdout).unwrap()
}

/// JSON output: safe for a terminal, parses, and holds the names exactly.
fn json(what: &str, args: &[&str]) -> serde_json::Value {
    let o = run(what, args);
    assert_terminal_safe(what, &o.stdout);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(m) => m.iter().for_each(|(k, x)| {
            out.push(k.clone());
            strings(x, out)
        }),
        _ => {}
    }
}

fn holds(v: &serde_json::Value, needle: &str) -> bool {
    let mut all = Vec::new();
    strings(v, &mut all);
    all.iter().any(|s| s.contains(needle))
}

/// Markdown: every table row has as many cells as its header, and nothing
/// can open code, a comment or HTML.
fn assert_markdown(what: &str, md: &str) {
    let cells = |l: &str| {
        let mut n = 0;
        let mut esc = false;
        for c in l.chars() {
            match (esc, c) {
                (false, '\\') => esc = true,
                (false, '|') => n += 1,
                _ => esc = false,
            }
        }
        n
    };
    let mut width = None;
    for l in md.lines() {
        if l.starts_with('|') {
            let n = cells(l);
            if l.starts_with("| route") || l.starts_with("| from") || l.starts_with("| policy") {
                width = Some(n);
            }
            assert_eq!(
                Some(n),
                width,
                "{what}: row has {n} separators: {l:?}\n{md}"
            );
        } else {
            width = None;
        }
        let mut esc = false;
        for c in l.chars() {
            if !esc && matches!(c, '`' | '<') {
                panic!("{what}: unescaped {c:?} in {l:?}");
            }
            esc = !esc && c == '\\';
        }
    }
}

/// A strict RFC 4180 reader (LF or CRLF line ends): a quote inside an
/// unquoted field, or text after a closing quote, is an error.
fn parse_csv(s: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                    match chars.peek() {
                        Some(',') | Some('\n') | Some('\r') | None => {}
                        Some(x) => return Err(format!("{x:?} after a closing quote")),
                    }
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            '"' => return Err(format!("quote inside an unquoted field {field:?}")),
            ',' => {
                row.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                was_quoted = false;
            }
            '\r' => return Err("bare CR outside quotes".into()),
            _ => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

/// A DOT double-quoted string starting at `s[0] == '"'`: its text and the
/// rest after the closing quote.
fn dot_quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut it = s.char_indices().skip(1);
    while let Some((i, c)) = it.next() {
        match c {
            '\\' => out.push(it.next()?.1),
            '"' => return Some((out, &s[i + 1..])),
            '\n' | '\r' => return None,
            _ => out.push(c),
        }
    }
    None
}

const SHOWN: &str =
    "api\\nFORGED \\u{1b}[31m|`c`,\"q\"<!--<script>\\u{2028}\\u{202e}\\u{7f}\\u{85}x";

#[test]
fn paths_text_json_and_markdown() {
    let (_root, new) = setup("paths");
    let dir = new.to_str().unwrap();
    let backend = format!("shop/deployment/{NAME}");
    let shown = SHOWN;
    let out = text("paths", &["paths", dir]);
    assert!(out.contains(shown), "{out}");
    assert!(
        out.contains("1 path: 1 allowed, 0 denied, 0 not checked"),
        "{out}"
    );
    let v = json("paths json", &["paths", "-o", "json", dir]);
    assert_eq!(
        v["entry_points"][0]["routes"][0]["backends"][0]["paths"][0]["backend"],
        backend.as_str()
    );
    assert!(holds(&v["diagnostics"], FILE), "file paths kept exactly");
    let md = text("paths markdown", &["paths", "-o", "markdown", dir]);
    assert_markdown("paths markdown", &md);
    assert!(md.contains("| :white_check_mark: allowed |"), "{md}");
}

#[test]
fn trace_and_policy() {
    let (_root, new) = setup("trace");
    let dir = new.to_str().unwrap();
    let backend = format!("shop/deployment/{NAME}");
    let shown = SHOWN;
    let out = text(
        "trace",
        &[
            "trace", "--from", "ingress", "--to", &backend, "--port", "8080", dir,
        ],
    );
    assert!(out.contains(shown), "{out}");
    let v = json(
        "trace json",
        &[
            "trace", "-o", "json", "--from", "ingress", "--to", &backend, "--port", "8080", dir,
        ],
    );
    assert!(holds(&v, NAME));
    let out = text("policy", &["policy", &backend, dir]);
    assert!(
        out.contains("r</script><!--<script>\\nFORGED|`\\r\\u{1b}]0;title\\u{7}"),
        "{out}"
    );
    json("policy json", &["policy", "-o", "json", &backend, dir]);
}

#[test]
fn matrix_text_json_and_csv() {
    let (_root, new) = setup("matrix");
    let dir = new.to_str().unwrap();
    let out = text("matrix", &["matrix", dir]);
    assert!(
        out.contains("shop/deployment/a-b") && out.contains("shop/deployment/a.b"),
        "{out}"
    );
    let v = json("matrix json", &["matrix", "-o", "json", dir]);
    let cells = v["cells"].as_array().unwrap().len();
    let o = run("matrix csv", &["matrix", "-o", "csv", dir]);
    let csv = String::from_utf8(o.stdout).unwrap();
    let rows = parse_csv(&csv).unwrap_or_else(|e| panic!("CSV: {e}\n{csv}"));
    assert!(rows.len() > cells, "{csv}");
    for r in &rows {
        assert_eq!(r.len(), 9, "{r:?}\n{csv}");
    }
    let names: BTreeSet<&str> = rows
        .iter()
        .skip(1)
        .flat_map(|r| [r[0].as_str(), r[2].as_str()])
        .collect();
    assert!(names.contains("shop/deployment/a-b") && names.contains("shop/deployment/a.b"));
    assert!(names.iter().any(|n| n.contains(&"l".repeat(300))));
}

/// Distinct workloads whose names differ only in punctuation (`a-b`,
/// `a.b`) are distinct nodes; labels are escaped.
#[test]
fn matrix_dot_and_mermaid() {
    let (_root, new) = setup("graph");
    let dir = new.to_str().unwrap();
    let dot = text("matrix dot", &["matrix", "-o", "dot", dir]);
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for l in dot.lines().filter(|l| l.contains("[label=")) {
        let l = l.trim_start();
        let (head, rest) = l.split_once(" [label=").unwrap();
        let (label, after) = dot_quoted(rest).unwrap_or_else(|| panic!("DOT label: {l:?}"));
        assert!(after.ends_with("];"), "{l:?}");
        let ok_id = |s: &str| {
            s.starts_with('n') && s.len() > 1 && s.chars().all(|c| c.is_ascii_alphanumeric())
        };
        if let Some((a, b)) = head.split_once(" -> ") {
            assert!(ok_id(a) && ok_id(b), "{l:?}");
            assert!(
                ids.contains(a) && ids.contains(b),
                "edge to an undeclared node: {l:?}"
            );
        } else {
            assert!(ok_id(head), "{l:?}");
            assert!(ids.insert(head.to_string()), "duplicate node id {head}");
            assert!(
                labels.insert(label.clone(), head.to_string()).is_none(),
                "duplicate label {label}"
            );
        }
    }
    assert_ne!(
        labels.get("shop/deployment/a-b"),
        labels.get("shop/deployment/a.b"),
        "distinct workloads share a node:\n{dot}"
    );
    assert!(
        labels.contains_key("shop/deployment/a-b") && labels.contains_key("shop/deployment/a.b"),
        "{dot}"
    );

    let mermaid = text("matrix mermaid", &["matrix", "-o", "mermaid", dir]);
    let mut mids = BTreeSet::new();
    let mut mlabels = BTreeSet::new();
    for l in mermaid.lines().skip(1) {
        let l = l.trim_start();
        if let Some((id, rest)) = l.split_once("[\"") {
            let label = rest.strip_suffix("\"]").unwrap_or_else(|| panic!("{l:?}"));
            assert!(!label.contains(['"', '<', '>', '`', '|']), "{l:?}");
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{l:?}");
            assert!(mids.insert(id.to_string()), "duplicate id {id}");
            assert!(mlabels.insert(label.to_string()), "duplicate label {label}");
        } else {
            let (a, rest) = l.split_once(" -->|\"").unwrap_or_else(|| panic!("{l:?}"));
            let (_, b) = rest.split_once("\"| ").unwrap_or_else(|| panic!("{l:?}"));
            assert!(mids.contains(a) && mids.contains(b), "{l:?}");
        }
    }
    assert!(mlabels.contains("shop/deployment/a-b") && mlabels.contains("shop/deployment/a.b"));
}

#[test]
fn lint_check_and_test() {
    let (root, new) = setup("lint");
    let dir = new.to_str().unwrap();
    text("lint", &["lint", dir]);
    json("lint json", &["lint", "-o", "json", dir]);
    let sarif = json("lint sarif", &["lint", "-o", "sarif", dir]);
    for r in sarif["runs"][0]["results"].as_array().unwrap() {
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        assert!(uri.chars().all(|c| c.is_ascii_graphic()), "{uri}");
    }
    let out = text("check", &["check", dir]);
    assert!(
        out.contains("evil\\nFORGED \\u{1b}[2J|`<!--<script>,\"q\".yaml"),
        "{out}"
    );
    json("check json", &["check", "-o", "json", dir]);
    let t = root.join("t.yaml");
    let out = text("test", &["test", t.to_str().unwrap()]);
    assert!(
        out.contains("FAIL") && out.ends_with("0 passed, 1 failed\n"),
        "{out}"
    );
}

#[test]
fn diff_text_json_and_markdown() {
    let (root, new) = setup("diff");
    let dir = new.to_str().unwrap();
    let old = root.join("old");
    let old = old.to_str().unwrap();
    let out = text("diff", &["diff", old, dir]);
    assert!(out.contains("world-to-ab"), "{out}");
    json("diff json", &["diff", "-o", "json", old, dir]);
    let md = text("diff markdown", &["diff", "-o", "markdown", old, dir]);
    assert_markdown("diff markdown", &md);
    assert!(md.contains("| from | to | ports | because |"), "{md}");
}

#[test]
fn report_in_headless_chromium() {
    let (root, new) = setup("report");
    report_in_browser(&root, new.to_str().unwrap());
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The report's page script finishes with no error, whatever the names,
/// and shows them as text.
fn report_in_browser(root: &Path, dir: &str) {
    let html = root.join("report.html");
    let o = run("report", &["report", "-o", html.to_str().unwrap(), dir]);
    assert_eq!(o.status.code(), Some(2), "invalid names are input errors");
    let page = std::fs::read_to_string(&html).unwrap();
    // The page's own script and its panel data (JSON, where `<` is
    // written `\u003c`): no name opens or closes a script.
    assert_eq!(
        page.matches("<script").count(),
        2,
        "only the page's own script and data"
    );
    assert_eq!(page.matches("</script>").count(), 2);
    assert!(!page.contains("<!--"), "no comment opened by a name");
    let browser = chromium()
        .expect("the report is tested in Debian's chromium: `apt-get install chromium` (.ci/run installs it)");
    let dump = |profile: &str, query: &str| {
        let o = Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-logging=stderr",
                "--v=0",
                &format!("--user-data-dir={}", root.join(profile).display()),
                "--dump-dom",
                &format!("file://{}{query}", html.display()),
            ])
            .output()
            .unwrap();
        let dom = String::from_utf8_lossy(&o.stdout).to_string();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            dom.contains("data-ready=\"true\""),
            "page script did not finish:\n{err}"
        );
        assert!(dom.contains("data-errors=\"0\""), "script errors:\n{err}");
        assert!(!err.contains("Uncaught"), "{err}");
        dom
    };
    let dom = dump("profile", "");
    // The names are text on the page (serialised back as &lt;...).
    assert!(
        dom.contains("r&lt;/script&gt;&lt;!--&lt;script&gt;"),
        "{dom}"
    );
    assert!(dom.contains("api\\nFORGED"), "{dom}");
    // The first node's policy was looked up and shown (its section is no
    // longer hidden), and the matrix filter ran over the names.
    assert!(
        dom.contains("<p id=\"policy-hint\" hidden=\"\">"),
        "no policy shown: {dom}"
    );
    let visible = dom
        .split("<section class=\"policy-view\"")
        .skip(1)
        .filter(|s| !s[..s.find('>').unwrap_or(0)].contains("hidden"))
        .count();
    assert_eq!(visible, 1, "{dom}");
    assert!(dom.contains("connections shown"), "{dom}");
    // The matrix filter matches a name as shown, whatever it holds.
    let shown = |dom: &str| {
        let v = dom.split("data-matrix-shown=\"").nth(1).unwrap_or_default();
        v[..v.find('"').unwrap_or(0)]
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    };
    let all = shown(&dom);
    let hit = dump("profile-q", "?q=%3C!--%3Cscript%3E");
    assert!(
        shown(&hit) > 0 && shown(&hit) < all,
        "{} of {all}",
        shown(&hit)
    );
    let miss = dump("profile-miss", "?q=%3C%2Fscript%3Enothing");
    assert_eq!(shown(&miss), 0);
}
