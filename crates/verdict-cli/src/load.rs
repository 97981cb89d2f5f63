//! Reading input: files, directories (recursively, `.yaml`/`.yml`/`.json`,
//! in sorted order) and `-` for standard input.

use std::io::Read;
use std::path::{Path, PathBuf};
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::source::{Diagnostic, Location, Severity};

/// Expands paths into the list of files to read, sorted within each
/// directory; `-` stays as is.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out).map_err(|e| format!("{}: {e}", p.display()))?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            if e.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            walk(&e, out)?;
        } else if e
            .extension()
            .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        {
            out.push(e);
        }
    }
    Ok(())
}

pub fn read(path: &Path) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("<stdin>: {e}"))?;
        return Ok(s);
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))
}

fn display(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// Loads every input into an inventory. Unreadable files become error
/// diagnostics; loading goes on.
pub fn inventory(paths: &[PathBuf], cluster: ClusterConfig) -> Result<Inventory, String> {
    let files = expand(paths)?;
    let mut inv = Inventory::new(cluster);
    add_files(&mut inv, &files);
    inv.complete_namespaces();
    Ok(inv)
}

pub fn add_files(inv: &mut Inventory, files: &[PathBuf]) {
    add_files_keeping(inv, files, None);
}

/// Loads every input, keeping each file's text (for source snippets).
pub fn inventory_with_sources(
    paths: &[PathBuf],
    cluster: ClusterConfig,
) -> Result<(Inventory, std::collections::BTreeMap<String, String>), String> {
    let files = expand(paths)?;
    let mut inv = Inventory::new(cluster);
    let mut sources = std::collections::BTreeMap::new();
    add_files_keeping(&mut inv, &files, Some(&mut sources));
    inv.complete_namespaces();
    Ok((inv, sources))
}

fn add_files_keeping(
    inv: &mut Inventory,
    files: &[PathBuf],
    mut keep: Option<&mut std::collections::BTreeMap<String, String>>,
) {
    // Read everything first: agent settings (cilium-config, the agent
    // image) shape how policies are read, wherever they are in the input.
    let texts: Vec<(String, Result<String, String>)> =
        files.iter().map(|f| (display(f), read(f))).collect();
    for (name, text) in &texts {
        if let Ok(text) = text {
            if verdict_core::agent_config::may_hold_settings(name, text) {
                let mut diags = verdict_core::agent_config::apply(&mut inv.cluster, name, text);
                inv.diagnostics.append(&mut diags);
            }
        }
    }
    for (name, text) in texts {
        match text {
            Ok(text) => {
                inv.load_text(&name, &text);
                if let Some(k) = keep.as_deref_mut() {
                    k.insert(name, text);
                }
            }
            Err(e) => inv.diagnostics.push(Diagnostic {
                location: Location {
                    file: std::sync::Arc::from(name.as_str()),
                    line: 0,
                    col: 0,
                },
                severity: Severity::Error,
                object: None,
                message: e,
            }),
        }
    }
}

/// Prints diagnostics to standard error (info only when verbose); returns
/// the number of errors.
pub fn report(inv: &Inventory, verbose: bool) -> usize {
    let mut all: Vec<Diagnostic> = inv.diagnostics.clone();
    all.extend(inv.skipped_diagnostics());
    all.sort();
    let mut errors = 0;
    for d in &all {
        if d.severity == Severity::Error {
            errors += 1;
        }
        if d.severity != Severity::Info || verbose {
            eprintln!("{d}");
        }
    }
    errors
}
