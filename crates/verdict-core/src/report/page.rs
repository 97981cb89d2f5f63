//! The page around the report's sections: the header (verdict version, git
//! revision, generation time, inputs), the style sheet (usable from 800 px
//! wide: tables and the graph scroll inside their own box, the page never
//! scrolls sideways) and the page script.

use super::{esc, ReportMeta};
use std::fmt::Write;

/// The page script: policy panel on click, matrix filters, layout facts
/// (`data-*` on `<body>`, read by the browser tests). No external resource.
const SCRIPT: &str = include_str!("script.js");

const STYLE: &str = r#"
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,sans-serif;margin:0 auto;padding:16px 24px;max-width:1400px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 8px} h2{margin-top:32px;font-size:18px} h3{font-size:15px;margin-bottom:6px}
h1,h2,h3,p,li,dd,summary{overflow-wrap:anywhere}
header.meta{border-bottom:1px solid #d4d8e0;padding-bottom:10px}
header.meta dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:2px 12px;margin:0;font-size:13px}
header.meta dt{color:#48526b;font-weight:600} header.meta dd{margin:0} header.meta ul{margin:0;padding:0;list-style:none}
code{font-size:12px;background:#f2f4f8;padding:0 3px;border-radius:3px}
table{display:block;max-width:100%;overflow-x:auto;border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{border:1px solid #d4d8e0;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f2f4f8} tr.denied td{background:#fdecec} tr.allowed td{background:#edf8ee} tr.unchecked td{background:#f1f1f4} tr.error td{background:#fdecec} tr.warning td{background:#fff6e0}
.summary .ok{color:#1c7c2c} .summary .bad{color:#b42318} .summary .unchecked{color:#6b7a99}
.graph{max-width:100%;overflow-x:auto;border:1px solid #d4d8e0;border-radius:8px;padding:8px}
.graph svg{display:block;width:100%;height:auto;min-width:640px;max-width:960px}
svg .node rect{fill:#f5f7fb;stroke:#6b7a99} svg .node text{font-size:12px;fill:#1d2330} svg .node{cursor:pointer}
svg .node.entry rect{fill:#eef3ff} svg .node .name{font-weight:600} svg .node .via{font-size:11px;fill:#48526b}
svg .node .l-ok{fill:#1c7c2c} svg .node .l-denied{fill:#b42318} svg .node .l-unchecked,svg .node .l-idle{fill:#6b7a99}
svg .node.selected rect{fill:#dfe8ff;stroke:#2f5bd3;stroke-width:2} svg .col{font-size:13px;font-weight:600;fill:#48526b}
svg .edge{fill:none;stroke-width:2.5} svg .edge.ok{stroke:#2e9d44} svg .edge.denied{stroke:#d93025;stroke-dasharray:6 4} svg .edge.unchecked{stroke:#8a93a8;stroke-dasharray:2 4}
#policy{border:1px solid #d4d8e0;border-radius:8px;padding:4px 12px;margin-top:12px;background:#fbfcfe}
#policy h3{margin-top:8px} #policy .ident{font-size:12px;color:#48526b;overflow-wrap:anywhere} #policy ul.modes{font-size:13px;padding-left:18px}
.at{color:#48526b;overflow-wrap:anywhere}
.clickable{cursor:pointer;text-decoration:underline dotted}
#matrix-groups summary{cursor:pointer} #matrix-groups .members{margin-top:4px}
.filters{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;font-size:13px;margin:8px 0}
.filters input,.filters select{font:inherit;padding:3px 6px;max-width:100%}
.filters label{display:flex;gap:6px;align-items:center}
@media (max-width:900px){body{padding:12px}}
"#;

/// `<header>`: what produced the page, when, from which inputs.
fn header(meta: &ReportMeta) -> String {
    let mut out = String::from("<header class=\"meta\"><h1>verdict report</h1><dl>");
    let _ = write!(
        out,
        "<dt>verdict</dt><dd id=\"meta-version\">{}</dd><dt>git revision</dt><dd id=\"meta-revision\">{}</dd><dt>generated</dt><dd id=\"meta-time\"><time datetime=\"{t}\">{t}</time></dd>",
        esc(&meta.version),
        esc(&meta.revision),
        t = esc(&meta.generated)
    );
    for (label, id, list) in [
        ("inputs", "meta-inputs", &meta.inputs),
        ("flows", "meta-flows", &meta.flows),
    ] {
        if list.is_empty() && id == "meta-flows" {
            continue;
        }
        let _ = write!(out, "<dt>{label}</dt><dd id=\"{id}\"><ul>");
        for p in list {
            let _ = write!(out, "<li><code>{}</code></li>", esc(p));
        }
        out.push_str("</ul></dd>");
    }
    out.push_str("</dl></header>\n");
    out
}

/// The document up to the body's content, written to `out` ([`close`]
/// ends it).
pub(super) fn open<W: Write>(out: &mut W, meta: &ReportMeta) {
    let title = format!("verdict report: {}", meta.inputs.join(", "));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title>\n<style>{STYLE}</style></head>\n<body data-ready=\"false\" data-errors=\"0\">\n{}",
        esc(&title),
        header(meta)
    );
}

/// The end of the document opened by [`open`].
pub(super) fn close<W: Write>(out: &mut W) {
    let _ = write!(out, "\n<script>\n{SCRIPT}</script>\n</body></html>\n");
}
