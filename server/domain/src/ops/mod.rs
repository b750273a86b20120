//! Operations: one method per command handler, named like it; `dispatch` maps names to them.

mod bandwidth;
mod bridge;
pub(crate) mod capture;
mod cc;
mod cc_files;
mod cc_net;
mod cc_process;
pub(crate) mod dnsmasq;
pub(crate) mod files;
mod host;
pub(crate) mod misc;
pub(crate) mod net;
mod ns;
mod plumb;
mod qos;
mod vlans;
pub(crate) mod vm;
mod vm_config;
mod vm_devices;
mod vm_kvm;
pub(crate) mod vm_lifecycle;
mod vnc;

use ferromega_api::{Args, Response};

use crate::engine::Session;
use crate::{ControlPlane, DomainError, DomainResult};

impl ControlPlane {
    /// Runs the operation `name`. Every non-builtin handler of the table has an arm here;
    /// a test checks that none is missing.
    pub(crate) async fn dispatch(
        &self,
        session: &mut Session,
        name: &str,
        args: &Args,
    ) -> DomainResult<Vec<Response>> {
        let ns = session.namespace.clone();
        let one = |r: DomainResult<Response>| r.map(|r| vec![r]);
        match name {
            "help" => one(self.help(args)),
            "history" => one(self.history()),
            "clear_history" => one(self.clear_history()),
            "write" => one(self.write(args)),
            "echo" => one(Ok(self.echo(args))),
            "version" => one(Ok(self.version())),
            "shell" => one(self.shell(args).await),
            "background" => one(self.background(args)),
            "check" => one(self.check().await),
            "debug" => one(self.debug(args)),
            "quit" => one(self.quit(args)),
            "clear_all" => one(self.clear_all(session).await),
            "clear_namespace" => self.clear_namespace_everywhere(session, args).await,
            "mesh_degree" => one(self.mesh_degree(args)),
            "mesh_dial" => one(self.mesh_dial(args).await),
            "mesh_hangup" => one(self.mesh_hangup(args).await),
            "mesh_list" => one(self.mesh_list()),
            "mesh_dot" => one(self.mesh_dot(args)),
            "mesh_status" => one(self.mesh_status()),
            "mesh_timeout" => one(self.mesh_timeout(args)),
            "ns_hosts" => one(self.ns_hosts(&ns)),
            "ns_add_hosts" => one(self.ns_add_hosts(&ns, args)),
            "ns_del_hosts" => one(self.ns_del_hosts(&ns, args)),
            "ns_load" => one(self.ns_load(&ns, args)),
            "ns_queue" => one(self.ns_queue(&ns)),
            "ns_flush" => one(self.ns_flush(&ns)),
            "ns_queueing" => one(self.ns_queueing(&ns, args)),
            "ns_schedules" => one(self.ns_schedules(&ns)),
            "vm_info" => one(self.vm_info(&ns, args)),
            "vm_launch" => one(self.vm_launch(&ns, args).await),
            "vm_start" => one(self.vm_start(&ns, args).await),
            "vm_stop" => one(self.vm_stop(&ns, args).await),
            "vm_kill" => one(self.vm_kill(&ns, args).await),
            "vm_qmp" => one(self.vm_qmp(&ns, args).await),
            "vm_screenshot" => one(self.vm_screenshot(&ns, args).await),
            "vm_cdrom_eject" => one(self.vm_cdrom_eject(&ns, args).await),
            "vm_cdrom_change" => one(self.vm_cdrom_change(&ns, args).await),
            "host" => one(self.host_info(args)),
            "vm_top" => one(self.vm_top(&ns, args).await),
            "vm_hotplug" => one(self.vm_hotplug(&ns)),
            "vm_hotplug_add" => one(self.vm_hotplug_add(&ns, args).await),
            "vm_hotplug_remove" => one(self.vm_hotplug_remove(&ns, args).await),
            "vm_migrate" => one(self.vm_migrate(&ns, args).await),
            "disk_create" => one(self.disk_create(args).await),
            "disk_snapshot" => one(self.disk_snapshot(args).await),
            "disk_info" => one(self.disk_info(args).await),
            "vm_flush" => one(self.vm_flush(&ns).await),
            "vm_tag" => one(self.vm_tag(&ns, args)),
            "clear_vm_tag" => one(self.clear_vm_tag(&ns, args)),
            "vm_config" => one(self.vm_config(&ns)),
            "vm_config_save" => one(self.vm_config_save(&ns, args)),
            "vm_config_restore" => one(self.vm_config_restore(&ns, args)),
            "vm_config_clone" => one(self.vm_config_clone(&ns, args)),
            "clear_vm_config" => one(self.clear_vm_config(&ns, args)),
            "clear_vm_config_tag" => one(self.clear_vm_config_tag(&ns, args)),
            "vlans" => one(self.vlans(&ns)),
            "vlans_range" => one(self.vlans_range(&ns, args)),
            "vlans_add" => one(self.vlans_add(&ns, args)),
            "vlans_blacklist" => one(self.vlans_blacklist(args)),
            "clear_vlans" => one(self.clear_vlans(&ns, args)),
            "file_list" => one(self.file_list(args)),
            "file_get" => one(self.file_get(args).await),
            "file_delete" => one(self.file_delete(args)),
            "file_status" => one(Ok(self.file_status())),
            "vm_net_connect" => one(self.vm_net_connect(&ns, args).await),
            "vm_net_disconnect" => one(self.vm_net_disconnect(&ns, args).await),
            "tap" => one(self.tap_list(&ns)),
            "tap_create" => one(self.tap_create(&ns, args).await),
            "tap_delete" => one(self.tap_delete(&ns, args).await),
            "clear_tap" => one(self.clear_tap(&ns).await),
            "bridge" => one(self.bridge(&ns).await),
            "bridge_trunk" => one(self.bridge_trunk(args, true).await),
            "bridge_notrunk" => one(self.bridge_trunk(args, false).await),
            "bridge_tunnel" => one(self.bridge_tunnel(args).await),
            "bridge_notunnel" => one(self.bridge_notunnel(args).await),
            "qos_add" => one(self.qos_add(&ns, args).await),
            "clear_qos" => one(self.clear_qos(&ns, args).await),
            "capture" => one(self.capture(&ns)),
            "capture_pcap_snaplen" => one(self.capture_pcap_snaplen(&ns, args)),
            "capture_pcap_filter" => one(self.capture_pcap_filter(&ns, args)),
            "capture_netflow_mode" => one(self.capture_netflow_mode(&ns, args)),
            "capture_netflow_gzip" => one(self.capture_netflow_gzip(&ns, args)),
            "capture_pcap_vm" => one(self.capture_pcap_vm(&ns, args).await),
            "capture_pcap_delete_vm" => one(self.capture_pcap_delete_vm(&ns, args).await),
            "capture_pcap_bridge" => one(self.capture_pcap_bridge(&ns, args).await),
            "capture_pcap_delete_bridge" => one(self.capture_pcap_delete_bridge(&ns, args).await),
            "capture_netflow_bridge" => one(self.capture_netflow_bridge(&ns, args).await),
            "capture_netflow_delete_bridge" => {
                one(self.capture_netflow_delete_bridge(&ns, args).await)
            }
            "capture_netflow_timeout" => one(self.capture_netflow_timeout(args).await),
            "clear_capture" => one(self.clear_capture(&ns).await),
            "dnsmasq" => one(self.dnsmasq()),
            "dnsmasq_start" => one(self.dnsmasq_start(args).await),
            "dnsmasq_kill" => one(self.dnsmasq_kill(args).await),
            "dnsmasq_configure" => one(self.dnsmasq_configure(args)),
            "cc" => one(self.cc(&ns)),
            "cc_clients" => one(self.cc_clients(&ns)),
            "cc_exec" => one(self.cc_exec(&ns, args)),
            "cc_background" => one(self.cc_background(&ns, args)),
            "cc_commands" => one(self.cc_commands(&ns)),
            "cc_responses" => one(self.cc_responses(&ns, args)),
            "cc_filter" => one(self.cc_filter(&ns, args)),
            "cc_prefix" => one(self.cc_prefix(&ns, args)),
            "cc_delete" => one(self.cc_delete(&ns, args)),
            "cc_send" => one(self.cc_send(&ns, args).await),
            "cc_recv" => one(self.cc_recv(&ns, args)),
            "cc_process_list" => one(self.cc_process_list(&ns, args)),
            "cc_process_kill" => one(self.cc_process_kill(&ns, args)),
            "cc_process_killall" => one(self.cc_process_killall(&ns, args)),
            "cc_log_level" => one(self.cc_log_level(&ns, args)),
            "cc_listen" => one(self.cc_listen(&ns, args)),
            "cc_tunnel" => one(self.cc_tunnel(&ns, args)),
            "cc_rtunnel" => one(self.cc_rtunnel(&ns, args)),
            "plumb" => one(self.plumb(&ns, args)),
            "clear_plumb" => one(self.clear_plumb(&ns, args)),
            "pipe" => one(self.pipe(&ns, args)),
            "clear_pipe" => one(self.clear_pipe(&ns, args)),
            "clear_cc" => one(self.clear_cc(&ns, args)),
            "vnc" => one(self.vnc(&ns)),
            "vnc_record" => one(self.vnc_record(&ns, args).await),
            "vnc_stop" => one(self.vnc_stop(&ns, args).await),
            "vnc_play" => one(self.vnc_play(&ns, args).await),
            "vnc_pause" => one(self.vnc_pause(&ns, args)),
            "vnc_continue" => one(self.vnc_continue(&ns, args)),
            "vnc_step" => one(self.vnc_step(&ns, args)),
            "vnc_getstep" => one(self.vnc_getstep(&ns, args)),
            "vnc_inject" => one(self.vnc_inject(&ns, args).await),
            "clear_vnc" => one(self.clear_vnc(&ns).await),
            field if field.starts_with("vm_config_") => {
                one(self.vm_config_field(&ns, &field["vm_config_".len()..], args))
            }
            other => Err(DomainError::NotFound(format!("unknown operation: {other}"))),
        }
    }

    /// An empty successful response from this host.
    pub(crate) fn ok(&self) -> Response {
        Response::new(self.host())
    }

    /// A text response from this host.
    pub(crate) fn text(&self, t: impl Into<String>) -> Response {
        Response::text(self.host(), t)
    }

    /// A table from this host.
    pub(crate) fn table(&self, header: &[&str], rows: Vec<Vec<String>>) -> Response {
        Response::table(
            self.host(),
            header.iter().map(|s| s.to_string()).collect(),
            rows,
        )
    }
}
