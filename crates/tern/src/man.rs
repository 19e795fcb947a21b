//! `tern man DIR`: a man page (section 1) for `tern` and for each of its
//! commands, generated from the command-line definitions themselves, so
//! they say what `--help` says and never drift from it.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;

/// Write `tern.1`, `tern-domain.1`, `tern-domain-add.1`... into `dir`
/// (created if needed); returns how many pages.
pub fn write(dir: &Path) -> Result<usize, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut root = Cli::command();
    root.build();
    let mut written = 0;
    page(&root, "tern", dir, &mut written)?;
    println!("{written} man pages written to {}", dir.display());
    Ok(written)
}

/// The page of `cmd` (named `name`), then its subcommands' pages.
fn page(cmd: &clap::Command, name: &str, dir: &Path, written: &mut usize) -> Result<(), String> {
    let titled = cmd.clone().name(name.to_string());
    let mut roff = Vec::new();
    clap_mangen::Man::new(titled)
        .render(&mut roff)
        .map_err(|e| format!("{name}: {e}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, roff).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    *written += 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        page(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
