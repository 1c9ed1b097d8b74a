//! One function per command. Data goes to stdout, diagnostics and logs to
//! stderr.

use std::error::Error as StdError;
use std::fmt::Display;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use super::{Command, ExitStatus, Output};
use crate::pipeline::{
    Applied, Approval, Driver, DriverSettings, LockedApply, PlanOptions, Prepared, StepError,
};
use crate::plan::render::{self, Style};
use crate::plan::{Action, Approved, Plan};
use crate::vault::apply::ApplyEvent;

/// Runs one command; `vault_addr` is the `--vault-addr` flag (verify
/// reaches Vault there instead of at each Issuer's `server`).
pub async fn run(command: Command, color: bool, vault_addr: Option<String>) -> ExitStatus {
    let style = Style { color };
    match command {
        Command::Validate { dir, live } => validate(&dir, live).await,
        Command::Plan {
            dir,
            output,
            render,
            allow_destroy_ca,
            out,
        } => {
            let options = PlanOptions { allow_destroy_ca };
            plan(
                &dir,
                render.as_deref(),
                options,
                output,
                style,
                out.as_deref(),
            )
            .await
        }
        Command::Apply {
            dir,
            plan,
            auto_approve,
            output,
            render,
            allow_destroy_ca,
            lock,
        } => {
            let options = PlanOptions { allow_destroy_ca };
            // `apply FILE`: the positional names a saved plan, which names its repository.
            let (dir, plan) = match plan {
                Some(f) => (Some(dir), Some(f)),
                None if dir.is_file() => (None, Some(dir)),
                None => (Some(dir), None),
            };
            let render = render.as_deref();
            let how = ApplyHow {
                auto_approve,
                output,
                style,
            };
            match plan {
                Some(f) => {
                    let got = super::ci::planned_from_file(
                        &f,
                        dir.as_deref(),
                        render,
                        allow_destroy_ca,
                        &lock,
                    )
                    .await;
                    match got {
                        Ok((driver, prepared, plan)) => {
                            apply(driver, Ok((prepared, plan)), how).await
                        }
                        Err(s) => s,
                    }
                }
                None => {
                    let dir = dir.unwrap_or_default();
                    let mut driver = match locked_driver(render, options, &lock, &dir) {
                        Ok(d) => d,
                        Err(s) => return s,
                    };
                    let got = driver.planned(&dir).await.map_err(|e| report(&e));
                    apply(driver, got, how).await
                }
            }
        }
        Command::Watch {
            dir,
            apply,
            debounce,
            render,
            lock,
        } => {
            let driver = match locked_driver(render.as_deref(), PlanOptions::default(), &lock, &dir)
            {
                Ok(d) => d,
                Err(s) => return s,
            };
            super::watch::run(&dir, render.as_deref(), apply, debounce, style, driver).await
        }
        Command::ForceUnlock { dir, lock_mount } => {
            super::lock::force_unlock(&dir, lock_mount.as_deref()).await
        }
        Command::Policy { dir, lock_mount } => super::policy::run(&dir, lock_mount.as_deref()),
        Command::Status { dir, output } => super::status::run(&dir, output, style).await,
        Command::Verify { dir } => super::verify::run(&dir, vault_addr.as_deref()).await,
        Command::Run(args) => super::run::run(*args).await,
        Command::Schemas { out } => schemas(&out),
        Command::Generate(g) => super::completions::run(g),
    }
}

/// Prints an error with its whole cause chain on one line.
pub(super) fn fail(err: &(dyn StdError + 'static)) -> ExitStatus {
    eprintln!("error: {}", crate::vault::error_chain(err));
    ExitStatus::Error
}

/// Prints why a step failed on stderr: the diagnostics of an invalid
/// repository, else one line and maybe a hint.
pub(super) fn report(e: &StepError) -> ExitStatus {
    match e.diagnostics() {
        Some(d) => eprintln!("{d}"),
        None => {
            eprintln!("error: {}", crate::vault::error_chain(e));
            if let Some(h) = e.hint() {
                eprintln!("hint: {h}");
            }
        }
    }
    ExitStatus::Error
}

/// The problems of a failed step, for the machine-readable renderings.
fn problems(e: &StepError) -> Vec<super::report::Problem> {
    use super::report::Problem;
    match e.diagnostics() {
        Some(d) => {
            d.0.iter()
                .map(|d| Problem {
                    location: Some(d.location.clone()),
                    message: d.message.clone(),
                    hint: d.hint.clone(),
                })
                .collect()
        }
        None => vec![Problem {
            location: None,
            message: crate::vault::error_chain(e),
            hint: e.hint().map(str::to_string),
        }],
    }
}

fn fail_msg(msg: impl Display) -> ExitStatus {
    eprintln!("error: {msg}");
    ExitStatus::Error
}

/// A driver for one command.
pub(super) fn driver(render: Option<&Path>, options: PlanOptions) -> Driver {
    Driver::new(DriverSettings {
        render: render.map(Path::to_path_buf),
        plan: options,
        ..DriverSettings::default()
    })
}

/// A driver for a command that applies the repository in `dir` under the
/// apply lock of `lock`; a bad lock mount is printed and refused.
pub(super) fn locked_driver(
    render: Option<&Path>,
    options: PlanOptions,
    lock: &super::lock::LockArgs,
    dir: &Path,
) -> Result<Driver, ExitStatus> {
    let locking = lock.locking(&super::lock::repository_name(dir))?;
    Ok(Driver::new(DriverSettings {
        render: render.map(Path::to_path_buf),
        plan: options,
        locking: Some(locking),
        ..DriverSettings::default()
    }))
}

async fn validate(dir: &Path, live: bool) -> ExitStatus {
    let mut driver = driver(None, PlanOptions::default());
    let prepared = if live {
        driver.prepare_live(dir).await
    } else {
        driver.prepare(dir)
    };
    match prepared {
        Ok(p) => {
            println!(
                "{}: valid ({} Vault resources, {} cluster objects)",
                dir.display(),
                p.desired.resources.len(),
                p.repo.manifests.len()
            );
            ExitStatus::Clean
        }
        Err(e) => report(&e),
    }
}

/// Prints the plan for people as it is rendered (a plan of 10,000 creates
/// is not first held as one string).
pub(crate) fn print_human(plan: &Plan, style: Style) {
    struct Stdout<W>(W);
    impl<W: std::io::Write> std::fmt::Write for Stdout<W> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.write_all(s.as_bytes()).map_err(|_| std::fmt::Error)
        }
    }
    let mut out = Stdout(std::io::BufWriter::new(std::io::stdout().lock()));
    render::human_to(&mut out, plan, style);
    let _ = std::io::Write::flush(&mut out.0);
}

fn print_plan(plan: &Plan, output: Output, style: Style) {
    match output {
        Output::Human => print_human(plan, style),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::json(plan)).unwrap_or_default()
        ),
        Output::Markdown => print!("{}", crate::plan::markdown::markdown(plan)),
    }
}

async fn plan(
    dir: &Path,
    render: Option<&Path>,
    options: PlanOptions,
    output: Output,
    style: Style,
    out: Option<&Path>,
) -> ExitStatus {
    let mut driver = driver(render, options);
    let (prepared, plan) = match driver.planned(dir).await {
        Ok(p) => p,
        Err(e) => {
            // A PR job reads stdout: it gets the errors in the format it asked for.
            match output {
                Output::Human => {}
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&super::report::json(&problems(&e)))
                        .unwrap_or_default()
                ),
                Output::Markdown => print!("{}", super::report::markdown(&problems(&e))),
            }
            return report(&e);
        }
    };
    print_plan(&plan, output, style);
    if let Some(out) = out
        && let Err(s) = super::ci::write_plan(out, dir, render, options, &prepared, &plan)
    {
        return s;
    }
    let status = if !plan.errored.is_empty() {
        ExitStatus::Error
    } else if plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Clean
    };
    // `plan` is a one-shot command: the process exits right after, which
    // frees the repository and the plan at once rather than one allocation
    // at a time.
    std::mem::forget((prepared, plan));
    status
}

/// Asks on the terminal, as Terraform does. Only `yes` proceeds.
fn confirm() -> bool {
    print!(
        "\nDo you want to perform these actions?\n  certplane will perform the actions described above.\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
    );
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    answer.trim() == "yes"
}

/// How `apply` runs: what the user chose on the command line.
struct ApplyHow {
    auto_approve: bool,
    output: Output,
    style: Style,
}

/// Shows the plan, asks, then applies it under the apply lock: the plan is
/// made again under the lock and applied only if it is the one shown.
async fn apply(
    mut driver: Driver,
    planned: Result<(Prepared, Plan), ExitStatus>,
    how: ApplyHow,
) -> ExitStatus {
    let ApplyHow {
        auto_approve,
        output,
        style,
    } = how;
    let (prepared, plan) = match planned {
        Ok(p) => p,
        Err(s) => return s,
    };
    print_plan(&plan, output, style);
    if !plan.errored.is_empty() {
        return fail_msg("the plan has errors; nothing was applied");
    }
    if !plan.has_changes() {
        return ExitStatus::Clean;
    }
    if !auto_approve {
        if !std::io::stdin().is_terminal() {
            return fail_msg(
                "apply needs confirmation but stdin is not a terminal; \
                 run with --auto-approve to apply without asking",
            );
        }
        if !confirm() {
            eprintln!("Apply cancelled.");
            return ExitStatus::Error;
        }
    }
    // From here on SIGTERM/SIGINT stop the apply between two changes, and
    // the lock is released instead of being left to expire.
    let signals = match super::lock::StopOnSignal::install() {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let stop = || signals.reason();
    let human = output == Output::Human;
    // What was shown is kept only as what it writes: the plan made again
    // under the apply lock is checked against it, and the two plans are
    // never held at once.
    let approved = Approved::of(&plan);
    drop(plan);
    // `[n/m]` on stderr while it applies, on a terminal only.
    let mut progress = super::progress::Progress::stderr(approved.len(), human);
    let mut on_event = |event: ApplyEvent| {
        if human {
            progress.clear();
            print_event(&event, style);
            let _ = std::io::Write::flush(&mut std::io::stdout());
            progress.after(&event);
        }
    };
    let got = driver
        .apply(
            &prepared,
            Approval::Exactly(&approved),
            &stop,
            &mut on_event,
        )
        .await;
    progress.clear();
    match got {
        Ok(LockedApply::Applied { done, .. }) => {
            if human {
                println!("\n{}", report_line(&done));
            }
            ExitStatus::Clean
        }
        Ok(LockedApply::NothingToDo) => {
            if human {
                println!(
                    "\nNothing to apply: the live state already matches (another certplane applied these changes first)."
                );
            }
            ExitStatus::Clean
        }
        Err(e) => report(&e),
    }
}

pub(super) fn print_event(event: &ApplyEvent, style: Style) {
    match event {
        ApplyEvent::Started { addr, action } => {
            println!("{addr}: {}...", action.progressive());
        }
        ApplyEvent::Done { addr, action } => {
            println!(
                "{}",
                style.paint("32", &format!("{addr}: {}", action.past()))
            );
        }
        ApplyEvent::Note { addr, text } => {
            println!("{addr}:");
            for l in text.lines() {
                println!("    {l}");
            }
        }
    }
}

pub(super) fn report_line(done: &Applied) -> String {
    let mut line = format!(
        "Apply complete! {} created, {} updated, {} replaced, {} deleted.",
        done.count(Action::Create),
        done.count(Action::Update),
        done.count(Action::Replace),
        done.count(Action::Delete)
    );
    for w in &done.waiting {
        line.push_str(&format!(
            "\n{} waits for a manual signature: sign {} and commit the certificate to {}, then apply again.",
            w.addr,
            w.csr_file.display(),
            w.certificate_file.display()
        ));
    }
    line
}

fn schemas(out: &Path) -> ExitStatus {
    if let Err(e) = std::fs::create_dir_all(out) {
        return fail(&e);
    }
    for (name, schema) in super::schema_files() {
        let path = out.join(&name);
        if let Err(e) = std::fs::write(&path, crate::model::schema::render(&schema)) {
            return fail(&e);
        }
        println!("wrote {}", path.display());
    }
    ExitStatus::Clean
}
