//! Subcommands around verdict rather than about policies: shell
//! completions, the manual page, JSON Schemas. Kept apart from
//! `commands.rs` and flattened into the command list in `main.rs`.

use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Tools {
    /// Shell completion script on standard output
    #[command(after_help = "Examples:
  verdict completions bash > ~/.local/share/bash-completion/completions/verdict
  verdict completions zsh > \"${fpath[1]}/_verdict\"
  verdict completions fish > ~/.config/fish/completions/verdict.fish
  verdict completions powershell >> $PROFILE")]
    Completions {
        /// The shell: bash, zsh, fish, powershell or elvish
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page (roff) on standard output, or one page per subcommand with --out-dir
    #[command(after_help = "Examples:
  verdict man | man -l -
  verdict man --out-dir /usr/local/share/man/man1")]
    Man {
        /// Write verdict.1 and verdict-SUBCOMMAND.1 into this directory instead
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// JSON Schema (draft 2020-12) of PolicyTest files or of .verdict.yaml, for editors
    #[command(after_help = "Examples:
  verdict schema policytest > policytest.schema.json
  verdict schema config > verdict-config.schema.json
Then, first line of a YAML file (yaml-language-server, VS Code YAML):
  # yaml-language-server: $schema=policytest.schema.json")]
    Schema {
        /// Which file format
        #[arg(value_enum)]
        which: crate::schema::Which,
    },
}

pub fn run(t: Tools) -> Result<u8, String> {
    match t {
        Tools::Completions { shell } => {
            let mut cmd = without_hidden();
            let name = cmd.get_bin_name().unwrap_or("verdict").to_string();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, name, &mut buf);
            write_stdout(&buf)
        }
        Tools::Man { out_dir } => {
            let cmd = crate::invocation::command();
            match out_dir {
                Some(dir) => {
                    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                    clap_mangen::generate_to(cmd, &dir)
                        .map_err(|e| format!("{}: {e}", dir.display()))?;
                    eprintln!(
                        "wrote the manual pages into {}",
                        verdict_core::text::escape(&dir.display().to_string())
                    );
                    Ok(0)
                }
                None => {
                    let mut buf = Vec::new();
                    clap_mangen::Man::new(cmd)
                        .render(&mut buf)
                        .map_err(|e| e.to_string())?;
                    write_stdout(&buf)
                }
            }
        }
        Tools::Schema { which } => {
            let v = crate::schema::schema(which);
            let text = serde_json::to_string_pretty(&v).map_err(|e| e.to_string())? + "\n";
            write_stdout(text.as_bytes())
        }
    }
}

/// The command without its hidden subcommands, under the name of this
/// invocation: clap_complete would offer them otherwise (the developers'
/// `bench`).
fn without_hidden() -> clap::Command {
    let cmd = crate::invocation::command();
    let (name, bin_name) = crate::invocation::names(std::env::args_os().next().as_ref());
    let mut out = clap::Command::new(name)
        .bin_name(bin_name)
        .version(crate::invocation::VERSION)
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(a) = cmd.get_about() {
        out = out.about(a.clone());
    }
    out
}

fn write_stdout(bytes: &[u8]) -> Result<u8, String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(format!("writing standard output: {e}")),
    }
}
