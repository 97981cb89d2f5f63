//! Reading input: files, directories (recursively, `.yaml`/`.yml`/`.json`,
//! in sorted order, honouring `.gitignore` and `--exclude`, each file once
//! by its canonical path) and `-` for standard input.

use globset::{Glob, GlobSet, GlobSetBuilder};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::source::{Diagnostic, Location, Severity};

static EXCLUDE: OnceLock<GlobSet> = OnceLock::new();

/// Sets the `--exclude` globs (once, at start-up).
pub fn set_excludes(globs: &[String]) -> Result<(), String> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        b.add(Glob::new(g).map_err(|e| format!("--exclude `{g}`: {e}"))?);
    }
    let set = b.build().map_err(|e| format!("--exclude: {e}"))?;
    let _ = EXCLUDE.set(set);
    Ok(())
}

/// Whether a walked entry is excluded: the glob matches its path as
/// written, its path below the directory given, or its file name.
fn excluded(root: &Path, path: &Path) -> bool {
    let Some(set) = EXCLUDE.get() else {
        return false;
    };
    set.is_match(path)
        || path.strip_prefix(root).is_ok_and(|rel| set.is_match(rel))
        || path.file_name().is_some_and(|n| set.is_match(n))
}

/// The files to read, and the problems met while listing directories.
#[derive(Default)]
pub struct Expanded {
    pub files: Vec<PathBuf>,
    pub diagnostics: Vec<Diagnostic>,
}

fn path_diag(path: &Path, severity: Severity, message: String) -> Diagnostic {
    Diagnostic {
        location: Location {
            file: Arc::from(path.display().to_string().as_str()),
            line: 0,
            col: 0,
        },
        severity,
        object: None,
        message,
    }
}

/// Expands paths into the list of files to read, sorted within each
/// directory; `-` stays as is. A path that does not exist is an error; an
/// entry of a directory that cannot be read is an error diagnostic.
pub fn expand(paths: &[PathBuf]) -> Result<Expanded, String> {
    let mut out = Expanded::default();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.files.push(p.clone());
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out, &mut seen);
        } else {
            add_once(p, &mut out, &mut seen);
        }
    }
    Ok(out)
}

/// Adds a file unless its canonical path was added already (symbolic
/// links, a file given twice).
fn add_once(p: &Path, out: &mut Expanded, seen: &mut BTreeSet<PathBuf>) {
    let canonical = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if seen.insert(canonical.clone()) {
        out.files.push(p.to_path_buf());
    } else {
        out.diagnostics.push(path_diag(
            p,
            Severity::Info,
            format!("same file as {} (read once)", canonical.display()),
        ));
    }
}

fn walk(dir: &Path, out: &mut Expanded, seen: &mut BTreeSet<PathBuf>) {
    let root = dir.to_path_buf();
    let mut wb = ignore::WalkBuilder::new(dir);
    wb.follow_links(true)
        .hidden(true)
        .ignore(false)
        .git_global(false)
        .git_ignore(true)
        .git_exclude(true)
        .require_git(false)
        .parents(true)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |e| e.depth() == 0 || !excluded(&root, e.path()));
    for entry in wb.build() {
        match entry {
            Ok(e) => {
                let is_file = e.file_type().is_some_and(|t| t.is_file());
                if is_file
                    && e.path()
                        .extension()
                        .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
                {
                    add_once(e.path(), out, seen);
                }
            }
            Err(err) => out.diagnostics.push(walk_error(dir, &err)),
        }
    }
}

/// A directory entry that could not be listed or followed.
fn walk_error(dir: &Path, err: &ignore::Error) -> Diagnostic {
    fn inner(err: &ignore::Error) -> Option<Diagnostic> {
        match err {
            ignore::Error::WithPath { path, err } => {
                let message = match err.as_ref() {
                    ignore::Error::Loop { .. } => format!(
                        "symbolic link cycle: {} leads back to a directory being read; not followed again",
                        path.display()
                    ),
                    other => format!("cannot read: {other}; its content is not analysed"),
                };
                let severity = if matches!(err.as_ref(), ignore::Error::Loop { .. }) {
                    Severity::Warning
                } else {
                    Severity::Error
                };
                Some(path_diag(path, severity, message))
            }
            ignore::Error::Loop { child, .. } => Some(path_diag(
                child,
                Severity::Warning,
                format!(
                    "symbolic link cycle: {} leads back to a directory being read; not followed again",
                    child.display()
                ),
            )),
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                inner(err)
            }
            _ => None,
        }
    }
    inner(err).unwrap_or_else(|| {
        path_diag(
            dir,
            Severity::Error,
            format!("cannot read an entry: {err}; its content is not analysed"),
        )
    })
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
    String::from_utf8(bytes).map_err(|e| not_utf8(path, e.as_bytes(), e.utf8_error()))
}

/// Why a file is not read: UTF-16 (a byte order mark) or the line of the
/// first byte that is not UTF-8. Nothing of it is analysed.
fn not_utf8(path: &Path, bytes: &[u8], e: std::str::Utf8Error) -> String {
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return format!(
            "{}: UTF-16 text; verdict reads UTF-8 (convert it: iconv -f UTF-16 -t UTF-8); nothing of this file is analysed",
            path.display()
        );
    }
    let ok = bytes.get(..e.valid_up_to()).unwrap_or_default();
    let line = ok.iter().filter(|b| **b == b'\n').count() + 1;
    format!(
        "{}: not UTF-8 text (invalid byte at line {line}); nothing of this file is analysed",
        path.display()
    )
}

fn display(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

static LIVE: OnceLock<crate::live::LiveState> = OnceLock::new();

/// Sets the live cluster state read at start-up (`--kubeconfig`,
/// `--context`, `--in-cluster`): every inventory then starts from it, and
/// the files given overlay it.
pub fn set_live(state: crate::live::LiveState) {
    let _ = LIVE.set(state);
}

/// Whether a live cluster state was read.
pub fn live() -> bool {
    LIVE.get().is_some()
}

/// Loads every input into an inventory. Unreadable files become error
/// diagnostics; loading goes on.
pub fn inventory(paths: &[PathBuf], cluster: ClusterConfig) -> Result<Inventory, String> {
    load(paths, cluster, None)
}

/// After loading: duplicate objects resolved, missing namespaces added.
pub fn finish(inv: &mut Inventory) {
    inv.remove_duplicates();
    inv.complete_namespaces();
}

/// Adds files (never the live cluster) to an inventory.
pub fn add_files(inv: &mut Inventory, files: Expanded) {
    let Expanded {
        files,
        mut diagnostics,
    } = files;
    inv.diagnostics.append(&mut diagnostics);
    add_texts(inv, read_all(&files), None);
}

/// Loads every input, keeping each file's text (for source snippets).
pub fn inventory_with_sources(
    paths: &[PathBuf],
    cluster: ClusterConfig,
) -> Result<(Inventory, std::collections::BTreeMap<String, String>), String> {
    let mut sources = std::collections::BTreeMap::new();
    let inv = load(paths, cluster, Some(&mut sources))?;
    Ok((inv, sources))
}

/// The live state (when one was read) overlaid with the files of `paths`.
fn load(
    paths: &[PathBuf],
    cluster: ClusterConfig,
    keep: Option<&mut std::collections::BTreeMap<String, String>>,
) -> Result<Inventory, String> {
    let Expanded {
        files,
        mut diagnostics,
    } = expand(paths)?;
    let mut inv = Inventory::new(cluster);
    inv.diagnostics.append(&mut diagnostics);
    let mut texts = read_all(&files);
    if let Some(live) = LIVE.get() {
        let (mut all, mut diags) = crate::live_overlay::overlay(live, &texts);
        inv.diagnostics.append(&mut diags);
        all.append(&mut texts);
        texts = all;
    }
    add_texts(&mut inv, texts, keep);
    finish(&mut inv);
    Ok(inv)
}

/// Each file's display name and text (or why it cannot be read).
fn read_all(files: &[PathBuf]) -> Vec<(String, Result<String, String>)> {
    files.iter().map(|f| (display(f), read(f))).collect()
}

fn add_texts(
    inv: &mut Inventory,
    texts: Vec<(String, Result<String, String>)>,
    mut keep: Option<&mut std::collections::BTreeMap<String, String>>,
) {
    // Read everything first: agent settings (cilium-config, the agent
    // image) shape how policies are read, wherever they are in the input.
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
                    file: Arc::from(name.as_str()),
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
    // Settings read from the input change every verdict: always say so.
    if !inv.cluster.taken_from.is_empty() && !verbose {
        eprintln!(
            "{}",
            verdict_core::text::escape(&format!(
                "note: agent settings taken from the input: {} (command-line options win; -v for details)",
                inv.cluster.taken_from.join(", ")
            ))
        );
    }
    let mut errors = 0;
    for d in &all {
        if d.severity == Severity::Error {
            errors += 1;
        }
        if d.severity != Severity::Info || verbose {
            // One line: names and file paths cannot add lines or escapes.
            eprintln!("{}", verdict_core::text::escape(&d.to_string()));
        }
    }
    errors
}
