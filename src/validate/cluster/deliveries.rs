//! Secrets certplane writes itself (an AppRole's delivered secret ID, an
//! exported intermediate key) must not also be declared in the repository:
//! two owners would overwrite each other.

use super::Checker;

impl<'a> Checker<'a> {
    /// `AppRole.deliverTo.secret` must not be a Secret the repository
    /// declares (certplane writes it; two owners would fight).
    pub(super) fn deliveries(&self) {
        let repo = self.repo;
        for (meta, origin, s) in repo.app_roles() {
            let Some(d) = &s.deliver_to else {
                continue;
            };
            let to = &d.secret;
            if let Some((o, _)) = self.secret(&to.namespace, &to.name) {
                let at = o.origin().at("metadata.name");
                self.push(
                    origin,
                    "spec.deliverTo.secret.name",
                    format!(
                        "AppRole {}: deliverTo Secret {}/{} is also declared at {at}",
                        meta.name, to.namespace, to.name
                    ),
                    "certplane writes the delivered Secret itself: remove the declared Secret, or deliver to another name",
                );
            }
        }
        for (meta, origin, m) in repo.pki_mounts() {
            let Some(crate::model::CaSpec::Intermediate(i)) = &m.ca else {
                continue;
            };
            let Some(to) = &i.deliver_key_to else {
                continue;
            };
            let to = &to.secret;
            if let Some((o, _)) = self.secret(&to.namespace, &to.name) {
                let at = o.origin().at("metadata.name");
                self.push(
                    origin,
                    "spec.ca.intermediate.deliverKeyTo.secret.name",
                    format!(
                        "PkiMount {}: deliverKeyTo Secret {}/{} is also declared at {at}",
                        meta.name, to.namespace, to.name
                    ),
                    "certplane writes the key's Secret itself: remove the declared Secret, or deliver to another name",
                );
            }
        }
    }
}
