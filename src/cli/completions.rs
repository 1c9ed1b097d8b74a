//! `certplane completions SHELL` and `certplane man [DIR]`: shell completion
//! scripts and man pages generated from the clap definitions of
//! [`Cli`](super::Cli), so they list exactly the commands and flags the
//! parser accepts and cannot fall behind it.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Subcommand};
use clap_complete::{Generator, Shell};

use super::ExitStatus;
use super::commands::fail;

/// The commands that describe the command line itself. They read no
/// repository and need no Vault.
#[derive(Debug, Subcommand)]
pub enum Generate {
    /// Print a shell completion script to stdout
    /// (`certplane completions bash > /etc/bash_completion.d/certplane`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write the man pages: certplane.1 and one page per command
    /// (certplane-plan.1, ...).
    Man {
        /// Where to write them (created when missing).
        #[arg(default_value = "man")]
        dir: PathBuf,
    },
}

/// Why a completion script or a man page could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The completion script could not be written to stdout.
    #[error("cannot write the {shell} completion script to stdout")]
    Stdout {
        /// The shell.
        shell: Shell,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A man page (or its directory) could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Runs `completions` or `man`: 0, or 1 when writing failed.
pub fn run(command: Generate) -> ExitStatus {
    let done = match command {
        Generate::Completions { shell } => {
            completion_script(shell, &mut std::io::stdout().lock()).map(|()| Vec::new())
        }
        Generate::Man { dir } => man_pages(&dir),
    };
    match done {
        Ok(written) => {
            for path in written {
                println!("wrote {}", path.display());
            }
            ExitStatus::Clean
        }
        Err(e) => fail(&e),
    }
}

/// The command tree as the generators see it: the binary's name set and
/// the tree built (global flags copied into every command).
fn command_tree() -> clap::Command {
    let mut cmd = super::Cli::command()
        .bin_name("certplane")
        .disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Writes the completion script for `shell` to `out`.
pub fn completion_script(shell: Shell, out: &mut dyn Write) -> Result<(), GenerateError> {
    let cmd = command_tree();
    shell
        .try_generate(&cmd, out)
        .and_then(|()| out.flush())
        .map_err(|source| GenerateError::Stdout { shell, source })
}

/// One man page per command: `certplane.1`, then `certplane-<command>.1`
/// for every visible command (and `certplane-<command>-<sub>.1` below it),
/// as (file name, roff text).
pub fn render_man_pages() -> Result<Vec<(String, Vec<u8>)>, std::io::Error> {
    fn render(cmd: &clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), std::io::Error> {
        let man = clap_mangen::Man::new(cmd.clone())
            .source(format!("certplane {}", env!("CARGO_PKG_VERSION")))
            .manual("certplane manual");
        let mut text = Vec::new();
        man.render(&mut text)?;
        out.push((man.get_filename(), text));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            render(sub, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    render(&command_tree(), &mut out)?;
    Ok(out)
}

/// Writes the man pages into `dir` (created when missing) and returns
/// their paths.
pub fn man_pages(dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GenerateError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    let pages = render_man_pages().map_err(write_err(dir))?;
    let mut written = Vec::with_capacity(pages.len());
    for (name, text) in pages {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(write_err(&path))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    /// Every command a user can type, as `["plan"]`, `["run"]`, ...: from
    /// the clap tree, never a hand-written list.
    fn visible_commands(cmd: &clap::Command, above: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let mut path = above.to_vec();
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            visible_commands(sub, &path, out);
        }
    }

    fn commands() -> Vec<Vec<String>> {
        let mut out = Vec::new();
        visible_commands(&command_tree(), &[], &mut out);
        out
    }

    /// The long flags of `cmd` a user sees (`--vault-addr`, ...).
    fn long_flags(cmd: &clap::Command) -> Vec<String> {
        cmd.get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long())
            .map(|l| format!("--{l}"))
            .collect()
    }

    /// The global flags: those of the top-level command marked global
    /// (`-v`, `--log-format`, the operator's `--vault-*` flags, ...).
    fn global_flags() -> Vec<String> {
        let cmd = command_tree();
        let globals: Vec<String> = cmd
            .get_arguments()
            .filter(|a| a.is_global_set() && !a.is_hide_set())
            .filter_map(|a| a.get_long())
            .map(|l| format!("--{l}"))
            .collect();
        assert!(globals.contains(&"--vault-addr".to_string()), "{globals:?}");
        globals
    }

    /// roff escapes `-` as `\-`; the text a reader sees.
    fn roff_text(roff: &[u8]) -> String {
        String::from_utf8(roff.to_vec())
            .unwrap()
            .replace("\\-", "-")
            .replace("\\fB", "")
            .replace("\\fR", "")
            .replace("\\fI", "")
    }

    #[test]
    fn the_tree_has_the_commands_a_user_types() {
        let names: Vec<String> = commands().into_iter().map(|c| c.join(" ")).collect();
        for must in [
            "validate",
            "plan",
            "apply",
            "run",
            "status",
            "completions",
            "man",
        ] {
            assert!(names.iter().any(|n| n == must), "{must} in {names:?}");
        }
        // The generated `help` command is not one to document.
        assert!(!names.iter().any(|n| n == "help"), "{names:?}");
    }

    #[test]
    fn every_shell_gets_a_script_naming_every_command_and_global_flag() {
        let commands = commands();
        let globals = global_flags();
        assert_eq!(Shell::value_variants().len(), 5);
        for shell in Shell::value_variants() {
            let mut out = Vec::new();
            completion_script(*shell, &mut out).unwrap();
            let script = String::from_utf8(out).unwrap();
            assert!(script.len() > 1000, "{shell}: {script}");
            assert!(script.contains("certplane"), "{shell}");
            for c in &commands {
                let name = c.last().unwrap();
                assert!(script.contains(name.as_str()), "{shell}: no {name}");
            }
            // Each command's own flags (fish and powershell name them
            // without dashes, `-l vault-addr` / `'--vault-addr'`).
            for c in &commands {
                let mut cmd = command_tree();
                for part in c {
                    cmd = cmd.find_subcommand(part).unwrap().clone();
                }
                for flag in long_flags(&cmd) {
                    let bare = flag.trim_start_matches("--");
                    assert!(
                        script.contains(&flag) || script.contains(&format!("-l {bare}")),
                        "{shell}: {} lacks {flag}",
                        c.join(" ")
                    );
                }
            }
            for flag in &globals {
                let bare = flag.trim_start_matches("--");
                assert!(
                    script.contains(flag.as_str()) || script.contains(&format!("-l {bare}")),
                    "{shell}: no {flag}"
                );
            }
        }
    }

    #[test]
    fn bash_completes_the_shells_of_completions_and_the_formats_of_plan() {
        let mut out = Vec::new();
        completion_script(Shell::Bash, &mut out).unwrap();
        let script = String::from_utf8(out).unwrap();
        assert!(script.contains("complete -F _certplane"), "{script}");
        assert!(
            script.contains("bash elvish fish powershell zsh"),
            "{script}"
        );
        assert!(script.contains("human json markdown"), "{script}");
    }

    #[test]
    fn one_man_page_per_command_with_its_flags_and_the_global_ones() {
        let pages = render_man_pages().unwrap();
        let commands = commands();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(pages.len(), commands.len() + 1, "{names:?}");
        assert_eq!(names[0], "certplane.1");
        let root = roff_text(&pages[0].1);
        assert!(root.contains(".TH certplane 1"), "{root}");
        let globals = global_flags();
        for c in &commands {
            let file = format!("certplane-{}.1", c.join("-"));
            let (_, page) = pages
                .iter()
                .find(|(n, _)| *n == file)
                .unwrap_or_else(|| panic!("no {file} in {names:?}"));
            let page = roff_text(page);
            // The top page lists the command; its own page names it and
            // documents each of its flags and every global one.
            if c.len() == 1 {
                assert!(root.contains(&format!("certplane-{}(1)", c[0])), "{root}");
            }
            assert!(page.contains(&format!(".TH certplane-{} 1", c.join("-"))));
            let mut cmd = command_tree();
            for part in c {
                cmd = cmd.find_subcommand(part).unwrap().clone();
            }
            for flag in long_flags(&cmd).iter().chain(&globals) {
                assert!(page.contains(flag.as_str()), "{file} lacks {flag}");
            }
        }
        for flag in &globals {
            assert!(root.contains(flag.as_str()), "certplane.1 lacks {flag}");
        }
        // The environment variables the operator's flags fall back to.
        assert!(root.contains("VAULT_ADDR"), "{root}");
    }

    #[test]
    fn man_writes_the_pages_into_a_new_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("share/man/man1");
        let written = man_pages(&dir).unwrap();
        assert_eq!(written.len(), commands().len() + 1);
        for path in &written {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.contains(".TH "), "{}", path.display());
        }
        assert!(dir.join("certplane-plan.1").is_file());
    }

    #[test]
    fn man_into_a_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let err = man_pages(&file).unwrap_err();
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }
}
