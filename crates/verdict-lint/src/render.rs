//! Text (with source snippets) and JSON renderings of a lint report.

use crate::{Finding, LintReport};
use std::collections::BTreeMap;
use verdict_core::text::{escape, push_line};

/// The lines of each source file, split once (a report may hold many
/// findings in one large file).
type LineCache<'s> = std::collections::HashMap<&'s str, Vec<&'s str>>;

/// The source lines around a finding, as `NN | text`, with a caret.
fn snippet<'s>(
    f: &Finding,
    sources: &'s BTreeMap<String, String>,
    cache: &mut LineCache<'s>,
) -> String {
    let Some((name, text)) = sources.get_key_value(f.location.file.as_ref()) else {
        return String::new();
    };
    let line = f.location.line as usize;
    if line == 0 {
        return String::new();
    }
    let lines: &Vec<&str> = cache
        .entry(name.as_str())
        .or_insert_with(|| text.lines().collect());
    let first = line.saturating_sub(2).max(1);
    let width = line.to_string().len();
    let mut out = format!("{:width$} |\n", "");
    for n in first..=line.min(lines.len()) {
        let l = lines.get(n - 1).copied().unwrap_or_default();
        push_line(&mut out, &format!("{n:width$} | {l}"));
    }
    // The caret under the column, counted in the line as shown (escapes
    // included).
    let col = (f.location.col as usize).max(1);
    let shown = lines
        .get(line - 1)
        .map(|l| {
            escape(&l.chars().take(col - 1).collect::<String>())
                .chars()
                .count()
        })
        .unwrap_or(col - 1);
    out.push_str(&format!("{:width$} | {}^\n", "", " ".repeat(shown)));
    out
}

impl LintReport {
    pub fn to_text(&self, sources: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut cache = LineCache::new();
        for f in &self.findings {
            push_line(
                &mut out,
                &format!("{}[{}] {}: {}", f.level, f.code, f.name, f.message),
            );
            push_line(
                &mut out,
                &format!(
                    "  --> {}:{}:{}",
                    f.location.file, f.location.line, f.location.col
                ),
            );
            // Already escaped line by line.
            for l in snippet(f, sources, &mut cache).lines() {
                out.push_str(&format!("   {l}\n"));
            }
            if let Some(o) = &f.object {
                push_line(
                    &mut out,
                    &format!(
                        "   = {o}{}",
                        f.path.as_ref().map(|p| format!(" {p}")).unwrap_or_default()
                    ),
                );
            }
            push_line(&mut out, &format!("   = help: {}", f.help));
            out.push('\n');
        }
        for (f, why) in &self.suppressed {
            push_line(
                &mut out,
                &format!("suppressed [{}] at {}: {why}", f.code, f.location),
            );
        }
        for n in &self.notes {
            push_line(&mut out, &format!("note: {n}"));
        }
        let count = |l: crate::Level| self.findings.iter().filter(|f| f.level == l).count();
        use verdict_core::text::plural;
        out.push_str(&format!(
            "{}: {}, {}, {} info ({} suppressed)\n",
            plural(self.findings.len(), "finding", "findings"),
            plural(count(crate::Level::Error), "error", "errors"),
            plural(count(crate::Level::Warning), "warning", "warnings"),
            count(crate::Level::Info),
            self.suppressed.len()
        ));
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "findings": self.findings,
            "suppressed": self.suppressed.iter().map(|(f, why)| serde_json::json!({"finding": f, "reason": why})).collect::<Vec<_>>(),
            "notes": self.notes,
        })
    }
}
