//! Operations on the agents' processes and log: `cc process list|kill|killall` and
//! `cc log level`.

use ferromega_api::{Args, Response};
use ferromega_cc_proto::{Command, LOG_LEVELS};

use crate::{lock, ControlPlane, DomainError, DomainResult};

impl ControlPlane {
    pub(crate) fn cc_process_list(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let which = args.string("vm").unwrap_or("all");
        let names: Vec<(String, String)> = match self.namespace(ns) {
            Some(n) => lock(&n)
                .vms
                .values()
                .map(|v| (v.uuid.to_lowercase(), v.name.clone()))
                .collect(),
            None => Vec::new(),
        };
        let name_of = |uuid: &str| {
            names
                .iter()
                .find(|(u, _)| u == uuid)
                .map(|(_, n)| n.clone())
                .unwrap_or_default()
        };
        let mut rows = Vec::new();
        for (uuid, procs) in self.cc_server(ns).processes() {
            let name = name_of(&uuid);
            if which != "all" && which != name && !which.eq_ignore_ascii_case(&uuid) {
                continue;
            }
            for p in procs {
                rows.push(vec![
                    name.clone(),
                    uuid.clone(),
                    p.pid.to_string(),
                    p.argv.join(" "),
                ]);
            }
        }
        Ok(self.table(&["name", "uuid", "pid", "command"], rows))
    }

    pub(crate) fn cc_process_kill(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let what = args.string("pid").unwrap_or_default();
        let pid = if what == "all" {
            -1
        } else {
            what.parse::<u32>()
                .map(i64::from)
                .map_err(|_| DomainError::invalid(format!("invalid pid: {what}")))?
        };
        self.cc_server(ns).add_command(Command {
            kill_pid: Some(pid),
            ..Command::default()
        });
        Ok(self.ok())
    }

    pub(crate) fn cc_process_killall(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let name = args.string("name").unwrap_or_default();
        if name.is_empty() {
            return Err(DomainError::invalid("no process name given"));
        }
        self.cc_server(ns).add_command(Command {
            kill_all: Some(name.to_string()),
            ..Command::default()
        });
        Ok(self.ok())
    }

    pub(crate) fn cc_log_level(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let level = LOG_LEVELS
            .iter()
            .find(|l| args.flag(l))
            .ok_or_else(|| DomainError::invalid("invalid log level"))?;
        self.cc_server(ns).add_command(Command {
            level: Some(level.to_string()),
            ..Command::default()
        });
        Ok(self.ok())
    }
}
