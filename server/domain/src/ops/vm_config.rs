//! `vm config` operations: the printout, each field, save/restore/clone, clear.

use ferromega_api::{Args, Response};
use ferromega_command::fields;

use crate::vm::config::{ConfigCtx, VmConfig};
use crate::vm::netspec;
use crate::{lock, ControlPlane, DomainError, DomainResult};

impl ControlPlane {
    pub(crate) fn vm_config(&self, ns: &str) -> DomainResult<Response> {
        let vlans = lock(&self.inner.vlans).clone();
        Ok(self.text(self.with_ns(ns, |n| n.config.display(ns, &vlans))))
    }

    /// `vm config <field> [value]`: print or set one field.
    pub(crate) fn vm_config_field(
        &self,
        ns: &str,
        field: &str,
        args: &Args,
    ) -> DomainResult<Response> {
        let field = fields::FIELDS
            .iter()
            .find(|f| f.name.replace('-', "_") == field)
            .ok_or_else(|| {
                DomainError::NotFound(format!("unknown operation: vm_config_{field}"))
            })?;
        let mut vlans = lock(&self.inner.vlans);
        let before = vlans.file_text();
        let files_dir = self.files_dir().to_path_buf();
        let result = self.with_ns(ns, |n| {
            let mut ctx = ConfigCtx {
                files_dir: &files_dir,
                namespace: ns,
                vlans: &mut vlans,
            };
            n.config.apply(field, args, &mut ctx)
        });
        if vlans.file_text() != before {
            self.write_vlans_file(&vlans);
        }
        match result {
            Ok(Some(text)) if field.name == "qemu-override" => {
                let preview = self.override_preview(ns).unwrap_or_default();
                Ok(self.text(format!("{text}{preview}")))
            }
            Ok(Some(text)) => Ok(self.text(text)),
            Ok(None) => Ok(self.ok()),
            Err(e) => Err(DomainError::invalid(e)),
        }
    }

    pub(crate) fn vm_config_save(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let name = args.string("name").unwrap_or_default().to_string();
        self.with_ns(ns, |n| {
            let config = n.config.clone();
            n.saved.insert(name, config);
        });
        Ok(self.ok())
    }

    pub(crate) fn vm_config_restore(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        self.with_ns(ns, |n| match args.string("name") {
            None if n.saved.is_empty() => Ok(self.text("no vm configs saved")),
            None => Ok(self.text(n.saved.keys().cloned().collect::<Vec<_>>().join("\n"))),
            Some(name) => match n.saved.get(name) {
                Some(c) => {
                    n.config = c.clone();
                    Ok(self.ok())
                }
                None => Err(DomainError::NotFound(format!(
                    "config {name} does not exist"
                ))),
            },
        })
    }

    /// `vm config clone <vm>`: copy a VM's launch config, clearing its UUID and
    /// re-parsing the original netspecs (so static MACs are kept).
    pub(crate) fn vm_config_clone(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let name = args.string("vm").unwrap_or_default();
        let vm = self
            .with_ns(ns, |n| n.find_vm(name).cloned())
            .ok_or_else(|| DomainError::NotFound(format!("vm not found: {name}")))?;
        let mut config: VmConfig = vm.config.clone();
        config.uuid.clear();
        let mut vlans = lock(&self.inner.vlans);
        let mut nics = Vec::new();
        for nic in &vm.config.networks {
            nics.push(netspec::parse(&nic.raw, ns, &mut vlans).map_err(DomainError::invalid)?);
        }
        config.networks = nics;
        self.with_ns(ns, |n| n.config = config);
        Ok(self.ok())
    }

    pub(crate) fn clear_vm_config(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let field = fields::FIELDS.iter().find(|f| args.flag(f.clear_key));
        self.with_ns(ns, |n| match field {
            Some(f) => n.config.clear(f),
            None => n.config = VmConfig::default(),
        });
        Ok(self.ok())
    }

    pub(crate) fn clear_vm_config_tag(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let key = args.string("key").unwrap_or_default();
        self.with_ns(ns, |n| n.config.clear_tag(key));
        Ok(self.ok())
    }
}
