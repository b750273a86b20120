//! QemuRuntime: the real `Hypervisor` — one QEMU process per VM, supervised, driven over QMP.
//!
//! QEMU's output goes to `<instance>/qemu.log` (never a pipe to the server), and QEMU
//! runs in its own process group, so VMs outlive a server that is killed; a restarted
//! server takes them over with [`VmRuntime::recover`] through `<instance>/qemu.pid` and
//! the QMP socket.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferromega_domain::backends::{BoxFuture, ExitStatus, Hypervisor, Launched, VmRuntime};
use ferromega_domain::vm::registry::Vm;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

use crate::argv::{self, Accel, ArgvInput};
use crate::disk;
use crate::process;
use crate::qmp::Qmp;
use crate::screenshot;

/// A running QEMU the runtime knows: its QMP session, PID and an "exited" flag.
struct Instance {
    qmp: Arc<Qmp>,
    pid: u32,
    exited: watch::Receiver<bool>,
    dir: PathBuf,
}

/// The QEMU runtime of a server.
pub struct QemuRuntime {
    accel: Accel,
    nic_csum_off: bool,
    instances: Mutex<HashMap<u64, Arc<Instance>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The QEMU binary for a VM: `vm config qemu`, else `qemu-system-x86_64` or `kvm` from PATH.
fn binary(vm: &Vm) -> Result<String, String> {
    if !vm.config.qemu.is_empty() {
        return Ok(vm.config.qemu.clone());
    }
    ["qemu-system-x86_64", "kvm"]
        .iter()
        .find(|b| ferromega_host_system::in_path(b))
        .map(|b| b.to_string())
        .ok_or_else(|| "kvm not in PATH (install qemu-system-x86)".to_string())
}

impl QemuRuntime {
    /// A runtime launching guests with `accel`.
    pub fn new(accel: Accel) -> Self {
        QemuRuntime {
            accel,
            nic_csum_off: false,
            instances: Mutex::new(HashMap::new()),
        }
    }

    /// The same runtime with checksum offload off on virtio-net NICs (for hosts whose
    /// switch is Open vSwitch's userspace datapath).
    pub fn with_nic_csum_off(mut self, off: bool) -> Self {
        self.nic_csum_off = off;
        self
    }

    fn instance(&self, vm: &Vm) -> Result<Arc<Instance>, String> {
        lock(&self.instances)
            .get(&vm.id)
            .cloned()
            .ok_or_else(|| format!("vm not running: {}", vm.id))
    }

    /// Registers a connected instance and returns what the domain watches.
    fn register(
        &self,
        vm: &Vm,
        qmp: Qmp,
        pid: u32,
        dir: &Path,
        exit_status: oneshot::Receiver<ExitStatus>,
        exited: watch::Receiver<bool>,
        running: bool,
    ) -> Launched {
        let inst = Arc::new(Instance {
            qmp: Arc::new(qmp),
            pid,
            exited,
            dir: dir.to_path_buf(),
        });
        lock(&self.instances).insert(vm.id, inst);
        Launched {
            pid,
            exited: exit_status,
            running,
        }
    }

    async fn connect_qmp(dir: &Path, exited: &watch::Receiver<bool>) -> Result<Qmp, String> {
        let path = dir.join("qmp");
        // QEMU creates the socket a few hundred milliseconds after it starts: poll
        // finely so a launch waits no longer than it must (10 s in all).
        for _ in 0..1000 {
            if *exited.borrow() {
                return Err(format!("qemu exited: {}", process::log_tail(dir)));
            }
            if let Ok(stream) = tokio::net::UnixStream::connect(&path).await {
                return Qmp::connect(stream).await.map_err(|e| e.to_string());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err("unable to connect to qmp socket".to_string())
    }

    async fn exec(&self, vm: &Vm, command: &str, args: Option<Value>) -> Result<Value, String> {
        self.instance(vm)?
            .qmp
            .execute(command, args)
            .await
            .map_err(|e| e.to_string())
    }
}

impl VmRuntime for QemuRuntime {
    fn launch<'a>(&'a self, vm: &'a Vm, dir: &'a Path) -> BoxFuture<'a, Result<Launched, String>> {
        Box::pin(async move {
            let input = ArgvInput {
                vm,
                instance_dir: dir,
                accel: self.accel,
                taps: &vm.taps,
                hugepages: None,
                nic_csum_off: self.nic_csum_off,
            };
            let argv = argv::apply_overrides(&argv::build(&input), &vm.config.qemu_override);
            let bin = binary(vm)?;
            for stale in ["qmp", "vnc", "cc", "qemu.pid"] {
                let _ = std::fs::remove_file(dir.join(stale));
            }
            let child = process::spawn(&bin, &argv, dir)?;
            let (status_tx, status_rx) = oneshot::channel();
            let (exited_tx, exited_rx) = watch::channel(false);
            let pid = child.pid;
            process::supervise(child, dir.to_path_buf(), status_tx, exited_tx);
            match Self::connect_qmp(dir, &exited_rx).await {
                Ok(qmp) => Ok(self.register(vm, qmp, pid, dir, status_rx, exited_rx, false)),
                Err(e) => {
                    process::kill(pid);
                    Err(e)
                }
            }
        })
    }

    fn recover<'a>(&'a self, vm: &'a Vm, dir: &'a Path) -> BoxFuture<'a, Result<Launched, String>> {
        Box::pin(async move {
            let pid = process::running_pid(dir)?;
            let (status_tx, status_rx) = oneshot::channel();
            let (exited_tx, exited_rx) = watch::channel(false);
            let qmp = Self::connect_qmp(dir, &exited_rx).await?;
            let status = qmp
                .execute("query-status", None)
                .await
                .map_err(|e| e.to_string())?;
            let running = status.get("status").and_then(Value::as_str) == Some("running");
            let launched = self.register(vm, qmp, pid, dir, status_rx, exited_rx, running);
            process::watch_adopted(pid, status_tx, exited_tx);
            Ok(launched)
        })
    }

    fn resume<'a>(&'a self, vm: &'a Vm) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.exec(vm, "cont", None).await.map(drop) })
    }

    fn pause<'a>(&'a self, vm: &'a Vm) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.exec(vm, "stop", None).await.map(drop) })
    }

    fn destroy<'a>(&'a self, vm: &'a Vm, _dir: &'a Path) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.forget(vm);
            Ok(())
        })
    }

    fn kill<'a>(&'a self, vm: &'a Vm) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let Some(inst) = lock(&self.instances).remove(&vm.id) else {
                return Ok(());
            };
            process::kill(inst.pid);
            let mut exited = inst.exited.clone();
            let waited =
                tokio::time::timeout(Duration::from_secs(10), exited.wait_for(|e| *e)).await;
            match waited {
                Ok(_) => Ok(()),
                Err(_) => Err(format!("qemu {} did not exit after SIGKILL", inst.pid)),
            }
        })
    }
}

impl QemuRuntime {
    /// Nothing outlives a QEMU process but its instance directory, which the domain removes.
    fn forget(&self, vm: &Vm) {
        lock(&self.instances).remove(&vm.id);
    }
}

impl Hypervisor for QemuRuntime {
    fn qmp<'a>(&'a self, vm: &'a Vm, request: &'a str) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let req: Value = serde_json::from_str(request).map_err(|e| e.to_string())?;
            let reply = self
                .instance(vm)?
                .qmp
                .raw(&req)
                .await
                .map_err(|e| e.to_string())?;
            if reply.get("return").is_none() {
                return Err("received nil status".to_string());
            }
            Ok(format!("{reply}\n"))
        })
    }

    fn screenshot<'a>(
        &'a self,
        vm: &'a Vm,
        max: Option<u32>,
    ) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let inst = self.instance(vm)?;
            let ppm = inst
                .dir
                .join(format!("screendump-{}.ppm", std::process::id()));
            let file = ppm.to_string_lossy().into_owned();
            let r = inst
                .qmp
                .execute("screendump", Some(json!({ "filename": file })))
                .await;
            r.map_err(|e| e.to_string())?;
            let bytes = tokio::fs::read(&ppm).await.map_err(|e| e.to_string());
            let _ = tokio::fs::remove_file(&ppm).await;
            screenshot::ppm_to_png(&bytes?, max).map_err(|e| e.to_string())
        })
    }

    fn cdrom_change<'a>(&'a self, vm: &'a Vm, path: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let args = json!({ "id": argv::CDROM_ID, "filename": path, "format": "raw" });
            self.exec(vm, "blockdev-change-medium", Some(args))
                .await
                .map(drop)
        })
    }

    fn cdrom_eject<'a>(&'a self, vm: &'a Vm) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let args = json!({ "id": argv::CDROM_ID, "force": true });
            self.exec(vm, "eject", Some(args)).await.map(drop)
        })
    }

    fn preview_argv(&self, vm: &Vm) -> (Vec<String>, Vec<String>) {
        argv::preview(vm, self.accel)
    }

    fn hotplug_add<'a>(
        &'a self,
        vm: &'a Vm,
        id: u32,
        file: &'a str,
        usb2: bool,
        serial: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let inst = self.instance(vm)?;
            let name = format!("hotplug{id}");
            let file = file.replace(',', ",,");
            let out = inst
                .qmp
                .hmp(&format!("drive_add 0 id={name},if=none,file={file}"))
                .await;
            let out = out.map_err(|e| e.to_string())?;
            if !out.trim().is_empty() && !out.contains("OK") {
                return Err(out.trim().to_string());
            }
            let mut dev = json!({
                "driver": "usb-storage",
                "id": name,
                "drive": name,
                "bus": if usb2 { "ehci.0" } else { "usb-bus.0" },
            });
            if let Some(s) = serial {
                dev["serial"] = json!(s);
            }
            if let Err(e) = inst.qmp.execute("device_add", Some(dev)).await {
                let _ = inst.qmp.hmp(&format!("drive_del {name}")).await;
                return Err(e.to_string());
            }
            Ok(())
        })
    }

    fn hotplug_remove<'a>(&'a self, vm: &'a Vm, id: u32) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let inst = self.instance(vm)?;
            let name = format!("hotplug{id}");
            inst.qmp
                .execute("device_del", Some(json!({ "id": name })))
                .await
                .map_err(|e| e.to_string())?;
            // The drive goes with its device; drive_del only reports that it is gone.
            let _ = inst.qmp.hmp(&format!("drive_del {name}")).await;
            Ok(())
        })
    }

    fn migrate<'a>(&'a self, vm: &'a Vm, file: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let uri = format!("exec:cat > {}", argv::shell_word(file));
            self.exec(vm, "migrate", Some(json!({ "uri": uri })))
                .await
                .map(drop)
        })
    }

    fn migrate_status<'a>(
        &'a self,
        vm: &'a Vm,
    ) -> BoxFuture<'a, Result<Option<(String, f64)>, String>> {
        Box::pin(async move {
            let r = self.exec(vm, "query-migrate", None).await?;
            let Some(status) = r.get("status").and_then(Value::as_str) else {
                return Ok(None);
            };
            let pct = match status {
                "completed" => 100.0,
                _ => {
                    let done = r
                        .pointer("/ram/transferred")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0);
                    let total = r
                        .pointer("/ram/total")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0);
                    if total > 0.0 {
                        done / total * 100.0
                    } else {
                        0.0
                    }
                }
            };
            Ok(Some((status.to_string(), pct)))
        })
    }

    fn disk_create<'a>(
        &'a self,
        format: &'a str,
        path: &'a Path,
        size: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            disk::create(format, path, size)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn disk_snapshot<'a>(
        &'a self,
        src: &'a Path,
        dst: &'a Path,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { disk::snapshot(src, dst).await.map_err(|e| e.to_string()) })
    }

    fn disk_info<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<[String; 4], String>> {
        Box::pin(async move {
            let i = disk::info(path).await.map_err(|e| e.to_string())?;
            Ok([
                i.format,
                i.virtual_size.to_string(),
                i.disk_size.to_string(),
                i.backing_file.unwrap_or_default(),
            ])
        })
    }
}
