//! `certplane policy [DIR]`: the minimal Vault policy applying DIR needs,
//! printed as HCL.

use std::path::Path;

use super::ExitStatus;
use super::commands::prepare;

/// Prints the policy; 0, or 1 when the repository is invalid.
pub fn run(dir: &Path) -> ExitStatus {
    let prepared = match prepare(dir) {
        Ok(p) => p,
        Err(s) => return s,
    };
    let mut policy = crate::policy::policy(&prepared.desired);
    crate::policy::add_deliveries(
        &mut policy,
        prepared
            .repo
            .app_roles()
            .filter(|(_, _, s)| s.deliver_to.is_some())
            .map(|(m, _, s)| format!("auth/{}/role/{}", s.mount, m.name)),
    );
    print!("{}", policy.hcl());
    ExitStatus::Clean
}
