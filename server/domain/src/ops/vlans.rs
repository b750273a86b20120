//! VLAN alias operations: list, range, add, blacklist, clear.

use ferromega_api::{Args, Response};

use crate::{lock, ControlPlane, DomainError, DomainResult};

impl ControlPlane {
    pub(crate) fn vlans(&self, ns: &str) -> DomainResult<Response> {
        let rows = lock(&self.inner.vlans)
            .aliases(ns)
            .into_iter()
            .map(|(alias, vlan)| vec![alias, vlan.to_string()])
            .collect();
        Ok(self.table(&["alias", "vlan"], rows))
    }

    pub(crate) fn vlans_range(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let mut vlans = lock(&self.inner.vlans);
        match (args.string("min"), args.string("max")) {
            (Some(min), Some(max)) => {
                vlans
                    .set_range(ns, min, max)
                    .map_err(DomainError::invalid)?;
                self.write_vlans_file(&vlans);
                Ok(self.ok())
            }
            _ => {
                let (min, max, next) = vlans.range(ns);
                let row = vec![min.to_string(), max.to_string(), next.to_string()];
                Ok(self.table(&["min", "max", "next"], vec![row]))
            }
        }
    }

    pub(crate) fn vlans_add(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let alias = args.string("alias").unwrap_or_default();
        let vlan = args.string("vlan").unwrap_or_default();
        let mut vlans = lock(&self.inner.vlans);
        vlans
            .add_alias(ns, alias, vlan)
            .map_err(DomainError::invalid)?;
        self.write_vlans_file(&vlans);
        Ok(self.ok())
    }

    pub(crate) fn vlans_blacklist(&self, args: &Args) -> DomainResult<Response> {
        let mut vlans = lock(&self.inner.vlans);
        match args.string("vlan") {
            Some(v) => {
                let vlan: u16 = v
                    .parse()
                    .ok()
                    .filter(|v| *v < 4096)
                    .ok_or_else(|| DomainError::invalid("expected integer VLAN"))?;
                vlans.blacklist(vlan);
                Ok(self.ok())
            }
            None => {
                let rows = vlans
                    .blacklisted()
                    .into_iter()
                    .map(|v| vec![v.to_string()])
                    .collect();
                Ok(self.table(&["vlan"], rows))
            }
        }
    }

    pub(crate) fn clear_vlans(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        match args.string("prefix") {
            Some("all") => self.clear_vlans_all(),
            prefix => {
                let mut vlans = lock(&self.inner.vlans);
                vlans.clear(ns, prefix.unwrap_or_default());
                self.write_vlans_file(&vlans);
            }
        }
        Ok(self.ok())
    }

    /// Resets the allocator entirely (`clear vlans all`, part of `clear all`).
    pub(crate) fn clear_vlans_all(&self) {
        let mut vlans = lock(&self.inner.vlans);
        vlans.clear_all();
        self.write_vlans_file(&vlans);
    }
}
