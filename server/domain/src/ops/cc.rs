//! Operations of command and control (`cc …`, `clear cc`), and attaching a launched
//! VM's agent link to its namespace's cc server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferromega_api::{Args, Response};
use ferromega_cc_proto::Command;

use crate::cc::{serve_link, CcServer, Filter, LinkContext, LinkEvent};
use crate::namespace::DEFAULT_NAMESPACE;
use crate::ops::files::files_under;
use crate::vm::registry::{Vm, VmType};
use crate::{lock, ControlPlane, DomainError, DomainResult};

/// Go's `%v` of a string list: `[a b]`.
fn go_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

impl ControlPlane {
    pub(crate) fn cc_server(&self, ns: &str) -> CcServer {
        self.with_ns(ns, |n| n.cc.clone())
    }

    /// `<files>/[<ns>/]miniccc_responses`.
    fn cc_responses_dir(&self, ns: &str) -> PathBuf {
        let mut d = self.files_dir().to_path_buf();
        if ns != DEFAULT_NAMESPACE {
            d.push(ns);
        }
        d.join("miniccc_responses")
    }

    /// What a link of namespace `ns` needs: its cc server, directories, pipes, and
    /// hooks that keep `cc_active` and the VMs' tags up to date and write to pipes.
    pub(crate) fn cc_link_context(&self, ns: &str) -> LinkContext {
        let cp = self.clone();
        let name = ns.to_string();
        let hooks = move |uuid: &str, ev: LinkEvent| {
            if let LinkEvent::PipeWrite { name: pipe, data } = &ev {
                cp.pipe_write(&name, pipe, data);
                return;
            }
            let Some(n) = cp.namespace(&name) else { return };
            let mut changed = Vec::new();
            for v in lock(&n).vms.values_mut() {
                if !v.uuid.eq_ignore_ascii_case(uuid) {
                    continue;
                }
                match &ev {
                    LinkEvent::Active(on) => v.cc_active = *on,
                    LinkEvent::Tags(tags) => {
                        v.tags
                            .extend(tags.iter().map(|(k, t)| (k.clone(), t.clone())));
                        changed.push(v.clone());
                    }
                    LinkEvent::PipeWrite { .. } => {}
                }
            }
            for v in changed {
                cp.persist(&v);
                cp.emit_vm(&v);
            }
        };
        LinkContext {
            server: self.cc_server(ns),
            responses: self.cc_responses_dir(ns),
            files: self.files_dir().to_path_buf(),
            plumber: self.plumber(ns),
            hooks: Arc::new(hooks),
        }
    }

    /// Registers a launched VM with its namespace's cc server and opens its agent link:
    /// a container's agent dials the socket `/cc` in its root, which we listen on; a KVM
    /// guest's port is QEMU's socket `<dir>/cc`, which we dial.
    pub(crate) fn cc_attach(&self, ns: &str, vm: &Vm, dir: &Path) {
        let ctx = self.cc_link_context(ns);
        ctx.server.register(&vm.uuid, vm.tags.clone());
        let cp = self.clone();
        let ns = ns.to_string();
        let id = vm.id;
        let owner = Some(vm.uuid.to_lowercase());
        let alive = move || {
            cp.namespace(&ns)
                .is_some_and(|n| lock(&n).vms.contains_key(&id))
        };
        match vm.vm_type {
            VmType::Container => {
                let root = if vm.config.snapshot {
                    dir.join("fs")
                } else {
                    PathBuf::from(&vm.config.filesystem)
                };
                let path = root.join("cc");
                let _ = std::fs::remove_file(&path);
                let listener = match tokio::net::UnixListener::bind(&path) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!("cc: cannot listen on {}: {e}", path.display());
                        return;
                    }
                };
                tokio::spawn(async move {
                    while alive() {
                        let accepted =
                            tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
                        match accepted {
                            Ok(Ok((stream, _))) => {
                                tokio::spawn(serve_link(ctx.clone(), owner.clone(), stream));
                            }
                            Ok(Err(e)) => {
                                tracing::warn!("cc: accept on {}: {e}", path.display());
                                break;
                            }
                            Err(_) => {}
                        }
                    }
                });
            }
            VmType::Kvm => {
                let path = dir.join("cc");
                tokio::spawn(async move {
                    while alive() {
                        match tokio::net::UnixStream::connect(&path).await {
                            Ok(stream) => serve_link(ctx.clone(), owner.clone(), stream).await,
                            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                });
            }
        }
    }

    pub(crate) fn cc(&self, ns: &str) -> DomainResult<Response> {
        let n = self.cc_server(ns).clients().len();
        Ok(self.table(&["clients"], vec![vec![n.to_string()]]))
    }

    pub(crate) fn cc_clients(&self, ns: &str) -> DomainResult<Response> {
        let rows = self
            .cc_server(ns)
            .clients()
            .into_iter()
            .map(|c| {
                vec![
                    c.uuid.clone(),
                    c.hostname.clone(),
                    c.arch.clone(),
                    c.os.clone(),
                    go_list(&c.ips),
                    go_list(&c.macs),
                ]
            })
            .collect();
        Ok(self.table(&["uuid", "hostname", "arch", "os", "ip", "mac"], rows))
    }

    pub(crate) fn cc_exec(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let cmd = with_pipes(args.list("command"), false)?;
        self.cc_server(ns).add_command(cmd);
        Ok(self.ok())
    }

    pub(crate) fn cc_background(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let cmd = with_pipes(args.list("command"), true)?;
        self.cc_server(ns).add_command(cmd);
        Ok(self.ok())
    }

    pub(crate) fn cc_commands(&self, ns: &str) -> DomainResult<Response> {
        let rows = self
            .cc_server(ns)
            .commands()
            .into_iter()
            .map(|c| {
                let sent: Vec<String> = c.cmd.send.iter().map(|f| f.name.clone()).collect();
                vec![
                    c.id.to_string(),
                    c.prefix.clone(),
                    go_list(&c.cmd.argv),
                    c.checked_in.len().to_string(),
                    c.cmd.background.to_string(),
                    go_list(&sent),
                    go_list(&c.cmd.recv),
                    c.cmd.level.clone().unwrap_or_default(),
                    c.filter.map(|f| f.to_string()).unwrap_or_default(),
                ]
            })
            .collect();
        let header = [
            "id",
            "prefix",
            "command",
            "responses",
            "background",
            "sent",
            "received",
            "level",
            "filter",
        ];
        Ok(self.table(&header, rows))
    }

    pub(crate) fn cc_responses(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let what = args.string("id").unwrap_or_default();
        let raw = args.flag("raw");
        let base = self.cc_responses_dir(ns);
        let mut files = Vec::new();
        if what == "all" {
            files_under(&base, &mut files);
        } else if what.parse::<u64>().is_ok() {
            let d = base.join(what);
            if !d.is_dir() {
                return Err(DomainError::NotFound(format!("no responses for {what}")));
            }
            files_under(&d, &mut files);
        } else {
            for id in self.cc_server(ns).ids_with_prefix(what) {
                files_under(&base.join(id.to_string()), &mut files);
            }
        }
        // Responses still being written (`.stdout.part`) are not shown yet.
        files.retain(|f| !f.to_string_lossy().ends_with(".part"));
        let mut out = String::new();
        for f in files {
            let data = std::fs::read_to_string(&f).unwrap_or_default();
            if raw {
                out.push_str(&data);
            } else {
                let rel = f.strip_prefix(&base).unwrap_or(&f);
                out.push_str(&format!("{}:\n{data}\n", rel.display()));
            }
        }
        Ok(self.text(out.trim_end().to_string()))
    }

    pub(crate) fn cc_filter(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let server = self.cc_server(ns);
        let words = args.list("filter");
        if words.is_empty() {
            let header = ["uuid", "hostname", "arch", "os", "ip", "mac", "tags"];
            return Ok(match server.filter() {
                Some(f) => self.table(&header, vec![f.row()]),
                None => self.ok(),
            });
        }
        let f = Filter::parse(words).map_err(DomainError::invalid)?;
        server.set_filter(Some(f));
        Ok(self.ok())
    }

    pub(crate) fn cc_prefix(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let server = self.cc_server(ns);
        match args.string("prefix") {
            Some(p) => {
                server.set_prefix(p);
                Ok(self.ok())
            }
            None => Ok(self.text(server.prefix())),
        }
    }

    pub(crate) fn cc_delete(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let what = args.string("id").unwrap_or_default();
        let server = self.cc_server(ns);
        if args.flag("command") {
            server.delete_commands(what);
            return Ok(self.ok());
        }
        let base = self.cc_responses_dir(ns);
        let ids: Vec<String> = if what == "all" {
            vec![String::new()]
        } else if what.parse::<u64>().is_ok() {
            vec![what.to_string()]
        } else {
            server
                .ids_with_prefix(what)
                .iter()
                .map(u64::to_string)
                .collect()
        };
        for id in ids {
            let _ = std::fs::remove_dir_all(base.join(id));
        }
        Ok(self.ok())
    }

    pub(crate) fn clear_cc(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let server = self.cc_server(ns);
        let parts = ["commands", "filter", "prefix", "responses"];
        let all = !parts.iter().any(|p| args.flag(p));
        if all || args.flag("commands") {
            server.clear_commands();
        }
        if all || args.flag("filter") {
            server.set_filter(None);
        }
        if all || args.flag("prefix") {
            server.set_prefix("");
        }
        if all || args.flag("responses") {
            let _ = std::fs::remove_dir_all(self.cc_responses_dir(ns));
        }
        Ok(self.ok())
    }
}

/// A command for `argv`, whose leading `stdin=`, `stdout=` and `stderr=` words (up to
/// three) bind its standard streams to pipes.
fn with_pipes(argv: &[String], background: bool) -> DomainResult<Command> {
    let mut cmd = Command {
        background,
        ..Command::default()
    };
    let mut rest = argv;
    while let Some((first, tail)) = rest.split_first() {
        let Some((k, v)) = first.split_once('=') else {
            break;
        };
        let slot = match k {
            "stdin" => &mut cmd.stdin,
            "stdout" => &mut cmd.stdout,
            "stderr" => &mut cmd.stderr,
            _ => break,
        };
        if v.is_empty() || slot.is_some() {
            return Err(DomainError::invalid(format!(
                "invalid pipe binding: {first}"
            )));
        }
        *slot = Some(v.to_string());
        rest = tail;
    }
    if rest.is_empty() {
        return Err(DomainError::invalid("no command given"));
    }
    cmd.argv = rest.to_vec();
    Ok(cmd)
}
