//! `certplane policy [DIR]`: the minimal Vault policy applying DIR needs,
//! printed as HCL.

use std::path::Path;

use super::ExitStatus;
use super::commands::{driver, report};

/// Prints the policy (with the paths of the apply lock in `lock_mount`); 0,
/// or 1 when the repository is invalid.
pub fn run(dir: &Path, lock_mount: Option<&str>) -> ExitStatus {
    let lock = match crate::vault::lock::LockSettings::new(lock_mount, Default::default()) {
        Ok(l) => l,
        Err(e) => return super::commands::fail(&e),
    };
    let prepared = match driver(None, Default::default()).prepare(dir) {
        Ok(p) => p,
        Err(e) => return report(&e),
    };
    let mut policy = crate::vault::needs::needs(&prepared.desired);
    crate::vault::needs::add_lock(&mut policy, &prepared.desired, &lock.mount);
    crate::vault::needs::add_deliveries(
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
