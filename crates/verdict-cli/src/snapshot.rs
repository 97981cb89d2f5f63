//! `verdict snapshot`: the live state as read, one YAML file per kind, so
//! that it can be kept, diffed and attached to a bug report; running any
//! command on the directory gives the verdicts of the live source.

use crate::live::LiveState;
use std::io::Write;
use std::path::Path;
use verdict_core::source::Severity;
use verdict_core::text::escape;

/// Writes each kind's text to `dir/GROUP_VERSION_PLURAL.yaml`. The directory
/// is created, or must be empty: a file left from an earlier snapshot (of a
/// kind now forbidden) would otherwise be read as part of this one. Returns
/// the exit code: 2 when a kind could not be read.
pub fn write(state: &LiveState, dir: &Path, verbose: bool) -> Result<u8, String> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "{}: not empty; snapshot writes into a new or empty directory",
                    dir.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    let mut errors = 0;
    for d in &state.diagnostics {
        if d.severity == Severity::Error {
            errors += 1;
        }
        if d.severity != Severity::Info || verbose {
            eprintln!("{}", escape(&d.to_string()));
        }
    }
    let mut objects = 0;
    for k in &state.kinds {
        let file = dir.join(&k.file_name);
        // create_new: never follows a link or overwrites a file put there.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&file)
            .and_then(|mut f| f.write_all(k.text(|_| false).as_bytes()))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        objects += k.objects.len();
    }
    eprintln!(
        "{}",
        escape(&format!(
            "wrote {} of cluster `{}` to {} ({})",
            verdict_core::text::plural(objects, "object", "objects"),
            state.context,
            dir.display(),
            verdict_core::text::plural(state.kinds.len(), "kind", "kinds"),
        ))
    );
    Ok(if errors > 0 { 2 } else { 0 })
}
