//! One function per command. Data goes to stdout, diagnostics and logs to
//! stderr.

use std::error::Error as StdError;
use std::fmt::Display;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use super::{Command, ExitStatus, Output};
use crate::diagnostic::Diagnostics;
use crate::pipeline::{self, Applied, Approval, ClusterSide, LockedApply, PlanOptions, Prepared};
use crate::plan::render::{self, Style};
use crate::plan::{Action, Plan};
use crate::vault::Vault;
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
                lock,
            };
            match plan {
                Some(f) => {
                    let got =
                        super::ci::planned_from_file(&f, dir.as_deref(), render, allow_destroy_ca)
                            .await;
                    apply(got, options, how).await
                }
                None => {
                    let dir = dir.unwrap_or_default();
                    let got = planned(&dir, render, options).await.map_err(|s| s.print());
                    apply(got, options, how).await
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
            let locking = match lock.locking(&super::lock::repository_name(&dir)) {
                Ok(l) => l,
                Err(s) => return s,
            };
            super::watch::run(&dir, render.as_deref(), apply, debounce, style, locking).await
        }
        Command::ForceUnlock { dir, lock_mount } => {
            super::lock::force_unlock(&dir, lock_mount.as_deref()).await
        }
        Command::Policy { dir, lock_mount } => super::policy::run(&dir, lock_mount.as_deref()),
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

/// Why a command stopped before it had a plan, not printed yet.
enum Stop {
    /// The repository failed its offline checks.
    Invalid(Diagnostics),
    /// Anything else (Vault, the cluster): one line and maybe a hint.
    Failed {
        /// The error with its causes.
        line: String,
        /// What to do.
        hint: Option<String>,
    },
}

impl Stop {
    fn failed(err: &(dyn StdError + 'static)) -> Stop {
        Stop::Failed {
            line: crate::vault::error_chain(err),
            hint: None,
        }
    }

    /// Prints it on stderr.
    fn print(&self) -> ExitStatus {
        match self {
            Stop::Invalid(d) => eprintln!("{d}"),
            Stop::Failed { line, hint } => {
                eprintln!("error: {line}");
                if let Some(h) = hint {
                    eprintln!("hint: {h}");
                }
            }
        }
        ExitStatus::Error
    }

    /// The problems, for the machine-readable renderings.
    fn problems(&self) -> Vec<super::report::Problem> {
        use super::report::Problem;
        match self {
            Stop::Invalid(d) => {
                d.0.iter()
                    .map(|d| Problem {
                        location: Some(d.location.clone()),
                        message: d.message.clone(),
                        hint: d.hint.clone(),
                    })
                    .collect()
            }
            Stop::Failed { line, hint } => vec![Problem {
                location: None,
                message: line.clone(),
                hint: hint.clone(),
            }],
        }
    }
}

fn fail_msg(msg: impl Display) -> ExitStatus {
    eprintln!("error: {msg}");
    ExitStatus::Error
}

pub(super) fn prepare(dir: &Path) -> Result<Prepared, ExitStatus> {
    prepare_rendering(dir, None)
}

/// [`prepare`], leaving the render directory of `--render` out of the input.
pub(super) fn prepare_rendering(dir: &Path, render: Option<&Path>) -> Result<Prepared, ExitStatus> {
    let options = pipeline::PrepareOptions {
        render,
        ..pipeline::PrepareOptions::default()
    };
    pipeline::prepare_with(dir, options).map_err(|d| {
        eprintln!("{d}");
        ExitStatus::Error
    })
}

async fn validate(dir: &Path, live: bool) -> ExitStatus {
    let live_refs = if live {
        // Load first: an unreadable repository, or one naming another Vault
        // than the operator's, never reaches the network.
        let repo = match pipeline::load_checked(dir, &crate::operator::current()) {
            Ok(r) => r,
            Err(d) => {
                eprintln!("{d}");
                return ExitStatus::Error;
            }
        };
        let vault = match pipeline::connect(&repo).await {
            Ok(v) => v,
            Err(e) => return fail(&e),
        };
        match crate::vault::observe::live_references(&vault).await {
            Ok(l) => Some(l),
            Err(e) => return fail(&e),
        }
    } else {
        None
    };
    match pipeline::prepare_with_live(dir, live_refs.as_ref()) {
        Ok(p) => {
            println!(
                "{}: valid ({} Vault resources, {} cluster objects)",
                dir.display(),
                p.desired.resources.len(),
                p.repo.manifests.len()
            );
            ExitStatus::Clean
        }
        Err(d) => {
            eprintln!("{d}");
            ExitStatus::Error
        }
    }
}

fn print_plan(plan: &Plan, output: Output, style: Style) {
    match output {
        Output::Human => print!("{}", render::human(plan, style)),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::json(plan)).unwrap_or_default()
        ),
        Output::Markdown => print!("{}", crate::plan::markdown::markdown(plan)),
    }
}

/// Everything up to a plan: prepare, connect to both targets, plan.
async fn planned(
    dir: &Path,
    render: Option<&Path>,
    options: PlanOptions,
) -> Result<(Prepared, Option<Vault>, ClusterSide, Plan), Stop> {
    let prepare = pipeline::PrepareOptions {
        render,
        ..pipeline::PrepareOptions::default()
    };
    let prepared = pipeline::prepare_with(dir, prepare).map_err(Stop::Invalid)?;
    let vault = pipeline::connect_if_needed(&prepared)
        .await
        .map_err(|e| Stop::failed(&e))?;
    let side = pipeline::cluster_side(&prepared.repo, render)
        .await
        .map_err(|e| Stop::Failed {
            line: crate::vault::error_chain(&e),
            hint: Some(
                "to write the cluster manifests for Flux/Argo instead, run with --render DIR"
                    .into(),
            ),
        })?;
    let plan = pipeline::plan_with(vault.as_ref(), &side, &prepared, options)
        .await
        .map_err(|e| Stop::failed(&e))?;
    Ok((prepared, vault, side, plan))
}

async fn plan(
    dir: &Path,
    render: Option<&Path>,
    options: PlanOptions,
    output: Output,
    style: Style,
    out: Option<&Path>,
) -> ExitStatus {
    let (prepared, _, _, plan) = match planned(dir, render, options).await {
        Ok(p) => p,
        Err(stop) => {
            // A PR job reads stdout: it gets the errors in the format it asked for.
            match output {
                Output::Human => {}
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&super::report::json(&stop.problems()))
                        .unwrap_or_default()
                ),
                Output::Markdown => print!("{}", super::report::markdown(&stop.problems())),
            }
            return stop.print();
        }
    };
    print_plan(&plan, output, style);
    if let Some(out) = out
        && let Err(s) = super::ci::write_plan(out, dir, render, options, &prepared, &plan)
    {
        return s;
    }
    if !plan.errored.is_empty() {
        ExitStatus::Error
    } else if plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Clean
    }
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
    lock: super::lock::LockArgs,
}

/// Shows the plan, asks, then applies it under the apply lock: the plan is
/// made again under the lock and applied only if it is the one shown.
async fn apply(
    planned: Result<(Prepared, Option<Vault>, ClusterSide, Plan), ExitStatus>,
    options: PlanOptions,
    how: ApplyHow,
) -> ExitStatus {
    let ApplyHow {
        auto_approve,
        output,
        style,
        lock,
    } = how;
    let (prepared, vault, side, plan) = match planned {
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
    let locking = match lock.locking(&super::lock::repository_name(&prepared.repo.root)) {
        Ok(l) => l,
        Err(s) => return s,
    };
    // From here on SIGTERM/SIGINT stop the apply between two changes, and
    // the lock is released instead of being left to expire.
    let signals = match super::lock::StopOnSignal::install() {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let stop = || signals.reason();
    let human = output == Output::Human;
    let mut on_event = |event: ApplyEvent| {
        if human {
            print_event(&event, style);
        }
    };
    let Some(vault) = vault else {
        // No Vault objects: no CA to guard, no lock to take; the cluster half
        // is server-side applied (idempotent).
        let none = pipeline::apply_with(
            None,
            &side,
            &prepared,
            &plan,
            crate::vault::ApplyOptions::default(),
            &mut on_event,
        )
        .await;
        return match none {
            Ok(done) => {
                if human {
                    println!("\n{}", report_line(&done));
                }
                ExitStatus::Clean
            }
            Err(e) => fail(&e),
        };
    };
    let got = pipeline::apply_locked(
        &vault,
        &side,
        &prepared,
        options,
        Approval::Exactly(&plan),
        &locking,
        &stop,
        &mut on_event,
    )
    .await;
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
        Err(e) => fail(&e),
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
    let report = &done.vault;
    let count = |a: Action| {
        report.applied.iter().filter(|x| x.action == a).count()
            + done.cluster.iter().filter(|x| x.1 == a).count()
    };
    let mut line = format!(
        "Apply complete! {} created, {} updated, {} replaced, {} deleted.",
        count(Action::Create),
        count(Action::Update),
        count(Action::Replace),
        count(Action::Delete)
    );
    for w in &report.waiting {
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
    for (name, schema) in crate::model::schema::all() {
        let path = out.join(&name);
        if let Err(e) = std::fs::write(&path, crate::model::schema::render(&schema)) {
            return fail(&e);
        }
        println!("wrote {}", path.display());
    }
    ExitStatus::Clean
}
