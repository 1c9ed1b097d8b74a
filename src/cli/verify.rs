//! `certplane verify`: every Vault-backed Issuer of the repository, checked
//! the way cert-manager will use it (the driver's verify step), each report
//! printed as it comes.

use std::path::Path;

use super::ExitStatus;
use super::commands::{driver, report};
use crate::pipeline::{Failure, PlanOptions, Step};

/// Runs `verify`; `vault_addr` is `--vault-addr` (Vault is reached there
/// instead of at each Issuer's `server`).
pub async fn run(dir: &Path, vault_addr: Option<&str>) -> ExitStatus {
    let mut driver = driver(None, PlanOptions::default());
    let prepared = match driver.prepare(dir) {
        Ok(p) => p,
        Err(e) => return report(&e),
    };
    let mut print = |r: &crate::verify::IssuerReport| print!("{}", r.render());
    let reports = match driver.verify(&prepared, vault_addr, &mut print).await {
        Ok(r) => r,
        Err(e) => {
            if e.step() == Step::Verify && matches!(e.failure(), Failure::Cluster(_)) {
                eprintln!("verify reads the Issuers' credentials from the cluster:");
            }
            return report(&e);
        }
    };
    if reports.is_empty() {
        println!("{}: no Vault issuers to verify", dir.display());
        return ExitStatus::Clean;
    }
    let failed = reports.iter().filter(|r| !r.ok()).count();
    if failed > 0 {
        eprintln!("error: {failed} issuer(s) failed verification");
        ExitStatus::Error
    } else {
        ExitStatus::Clean
    }
}
